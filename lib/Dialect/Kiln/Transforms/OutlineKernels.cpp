//===- OutlineKernels.cpp - One function per distinct kernel --------------===//
//
// Moves each kernel at the top level of a function body into a private
// function, and lets kernels that print the same share one: later passes,
// the OpenMP translation and LLVM then work on small functions, each
// distinct kernel once.
//
//===----------------------------------------------------------------------===//

#include "kiln/Dialect/Kiln/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Transforms/RegionUtils.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/ADT/StringMap.h"

namespace kiln {
#define GEN_PASS_DEF_KILNOUTLINEKERNELS
#include "kiln/Dialect/Kiln/Transforms/Passes.h.inc"
} // namespace kiln

using namespace mlir;

namespace {

bool isKernel(Operation *op) {
  return isa<linalg::LinalgOp, scf::ForallOp, scf::ParallelOp, scf::ForOp>(op);
}

struct KilnOutlineKernelsPass
    : kiln::impl::KilnOutlineKernelsBase<KilnOutlineKernelsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SymbolTable symbols(module);
    // Kernel text (generic form, no locations, placeholder name) -> its
    // function.
    llvm::StringMap<func::FuncOp> kernels;
    SmallVector<func::FuncOp> functions(module.getOps<func::FuncOp>());
    for (func::FuncOp function : functions)
      for (Block &block : function.getBody())
        for (Operation *op = &block.front(); op;)
          op = (isKernel(op) ? outline(op, symbols, kernels) : op)
                   ->getNextNode();
  }

  /// The ops outlined with kernel `op`: itself, and when its results
  /// include vectors (a register block's accumulators, stored after the
  /// loop), every op up to the last one before the terminator that uses
  /// what the range computes, so that no vector crosses the call (outline()
  /// checks that none does).
  static SmallVector<Operation *> kernelRange(Operation *op) {
    SmallVector<Operation *> range{op};
    if (llvm::none_of(op->getResultTypes(), llvm::IsaPred<VectorType>))
      return range;
    llvm::DenseSet<Value> defined(op->result_begin(), op->result_end());
    auto usesDefined = [&](Operation *user) {
      bool found = false;
      user->walk([&](Operation *nested) {
        for (Value operand : nested->getOperands())
          found |= defined.contains(operand);
      });
      return found;
    };
    SmallVector<Operation *> pending;
    for (Operation *next = op->getNextNode();
         next && !next->hasTrait<OpTrait::IsTerminator>();
         next = next->getNextNode()) {
      pending.push_back(next);
      if (!usesDefined(next))
        continue;
      for (Operation *member : pending) {
        range.push_back(member);
        defined.insert(member->result_begin(), member->result_end());
      }
      pending.clear();
    }
    return range;
  }

  /// Outlines the kernel `op` (and the ops kernelRange adds); returns the
  /// call that replaces them, or `op` when it stays: when a vector would be
  /// passed to or returned from the kernel (the entry and the kernel may be
  /// compiled for different vector register widths, which changes how a vector
  /// is passed), e.g. one that reaches the terminator.
  Operation *outline(Operation *op, SymbolTable &symbols,
                     llvm::StringMap<func::FuncOp> &kernels) {
    SmallVector<Operation *> range = kernelRange(op);
    llvm::SmallPtrSet<Operation *, 8> inRange(range.begin(), range.end());
    auto inside = [&](Operation *user) {
      Operation *ancestor = op->getBlock()->findAncestorOpInBlock(*user);
      return ancestor && inRange.contains(ancestor);
    };
    // What the range uses from outside: constants are cloned in, the
    // rest become arguments; what later ops use from it, results.
    llvm::SetVector<Value> used;
    for (Operation *member : range) {
      for (Value operand : member->getOperands())
        if (!operand.getDefiningOp() ||
            !inRange.contains(operand.getDefiningOp()))
          used.insert(operand);
      getUsedValuesDefinedAbove(member->getRegions(), used);
    }
    SmallVector<Value> arguments;
    SmallVector<Operation *> constants;
    for (Value value : used) {
      Operation *def = value.getDefiningOp();
      if (def && inRange.contains(def))
        continue;
      if (def && def->hasTrait<OpTrait::ConstantLike>() &&
          def->getNumOperands() == 0 && def->getNumRegions() == 0)
        constants.push_back(def);
      else
        arguments.push_back(value);
    }
    SmallVector<Value> results;
    for (Operation *member : range)
      for (Value result : member->getResults())
        if (llvm::any_of(result.getUsers(),
                         [&](Operation *user) { return !inside(user); }))
          results.push_back(result);
    auto isVector = llvm::IsaPred<VectorType>;
    if (llvm::any_of(ValueRange(results).getTypes(), isVector) ||
        llvm::any_of(ValueRange(arguments).getTypes(), isVector))
      return op;

    OpBuilder detached(op->getContext());
    auto kernel = func::FuncOp::create(
        detached, op->getLoc(), "kiln_kernel",
        detached.getFunctionType(ValueRange(arguments).getTypes(),
                                 ValueRange(results).getTypes()));
    kernel.setPrivate();
    // Internal to the compiled graph's object (graphs share a JIT).
    kernel->setAttr(
        "llvm.linkage",
        LLVM::LinkageAttr::get(op->getContext(), LLVM::Linkage::Internal));
    Block *entry = kernel.addEntryBlock();
    OpBuilder b = OpBuilder::atBlockBegin(entry);
    IRMapping mapping;
    mapping.map(arguments, entry->getArguments());
    for (Operation *constant : constants)
      b.clone(*constant, mapping);
    for (Operation *member : range)
      b.clone(*member, mapping);
    SmallVector<Value> returned;
    for (Value result : results)
      returned.push_back(mapping.lookup(result));
    func::ReturnOp::create(b, op->getLoc(), returned);

    std::string text;
    llvm::raw_string_ostream os(text);
    kernel->print(os, OpPrintingFlags().printGenericOpForm().useLocalScope());
    auto [it, inserted] = kernels.try_emplace(text, kernel);
    if (inserted) {
      symbols.insert(kernel); // named kiln_kernel, kiln_kernel_0, ...
    } else {
      kernel.erase();
      kernel = it->second;
    }
    // Every argument is defined before `op`: the range is contiguous.
    OpBuilder at(op);
    auto call = func::CallOp::create(at, op->getLoc(), kernel, arguments);
    for (auto [result, value] : llvm::zip(results, call.getResults()))
      result.replaceAllUsesWith(value);
    for (Operation *member : llvm::reverse(range))
      member->erase();
    return call;
  }
};
} // namespace
