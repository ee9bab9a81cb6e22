//===- OutlineKernels.cpp - One function per distinct kernel --------------===//
//
// Moves each kernel at the top level of a function body into a private
// function, and lets identical kernels share one: later passes,
// the OpenMP translation and LLVM then work on small functions, each
// distinct kernel once.
//
//===----------------------------------------------------------------------===//

#include "kiln/Dialect/Kiln/Transforms/Passes.h"
#include "kiln/Support/Buffers.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Transforms/RegionUtils.h"
#include "llvm/ADT/SetVector.h"

#include <numeric>

namespace kiln {
#define GEN_PASS_DEF_KILNOUTLINEKERNELS
#include "kiln/Dialect/Kiln/Transforms/Passes.h.inc"
} // namespace kiln

using namespace mlir;

namespace {

/// The allocation a buffer is a view of: a memref.alloc/alloca, a global
/// (memref.get_global), or an argument of a function that nothing in the
/// module calls (an entry point: the runtime passes distinct buffers, and
/// only the out-parameters are written). Null when unknown (a
/// loop-carried value, a call's result, ...).
const void *bufferRoot(Value value,
                       const llvm::DenseSet<StringAttr> &calledFunctions) {
  value = kiln::viewedBuffer(value);
  if (auto argument = dyn_cast<BlockArgument>(value)) {
    auto function = dyn_cast<func::FuncOp>(argument.getOwner()->getParentOp());
    if (!function || argument.getOwner() != &function.getBody().front() ||
        calledFunctions.contains(function.getSymNameAttr()))
      return nullptr;
    return argument.getAsOpaquePointer();
  }
  Operation *def = value.getDefiningOp();
  if (isa<memref::AllocOp, memref::AllocaOp>(def))
    return def;
  if (auto global = dyn_cast<memref::GetGlobalOp>(def))
    return global.getNameAttr().getAsOpaquePointer();
  return nullptr;
}

/// The buffer group of each of `arguments`: arguments that are views of
/// the same allocation (bufferRoot) share a group, numbered in order of
/// first appearance from 0; -1 for a value that is not a memref or whose
/// allocation is unknown. Different groups are different allocations:
/// kiln-alias-scopes tells LLVM their loads and stores do not overlap.
SmallVector<int64_t>
bufferGroups(ArrayRef<Value> arguments,
             const llvm::DenseSet<StringAttr> &calledFunctions) {
  SmallVector<const void *> roots;
  SmallVector<int64_t> groups;
  for (Value argument : arguments) {
    const void *root = isa<MemRefType>(argument.getType())
                           ? bufferRoot(argument, calledFunctions)
                           : nullptr;
    if (!root) {
      groups.push_back(-1);
      continue;
    }
    auto *found = llvm::find(roots, root);
    groups.push_back(found - roots.begin());
    if (found == roots.end())
      roots.push_back(root);
  }
  return groups;
}

/// The groups that hold at two calls of one kernel: arguments share a
/// group if they do at either call (merged transitively); unknown if
/// unknown at either.
SmallVector<int64_t> commonGroups(ArrayRef<int64_t> a, ArrayRef<int64_t> b) {
  size_t n = a.size();
  SmallVector<size_t> parent(n);
  std::iota(parent.begin(), parent.end(), 0);
  auto find = [&](size_t i) {
    while (parent[i] != i)
      i = parent[i] = parent[parent[i]];
    return i;
  };
  for (ArrayRef<int64_t> groups : {a, b})
    for (size_t i = 0; i < n; ++i)
      for (size_t j = 0; j < i; ++j)
        if (groups[i] >= 0 && groups[i] == groups[j])
          parent[find(i)] = find(j);
  SmallVector<int64_t> common(n, -1);
  SmallVector<size_t> representatives;
  for (size_t i = 0; i < n; ++i) {
    if (a[i] < 0 || b[i] < 0)
      continue;
    auto *found = llvm::find(representatives, find(i));
    common[i] = found - representatives.begin();
    if (found == representatives.end())
      representatives.push_back(find(i));
  }
  return common;
}

} // namespace

/// The hash KernelTable files `kernel` under: its type and, in walk
/// order, each nested op's name, attributes, properties and result types
/// (operands left to the comparison), so that equivalent kernels hash
/// alike.
static size_t structuralHash(func::FuncOp kernel) {
  llvm::hash_code hash = hash_value(kernel.getFunctionType());
  kernel.getBody().walk([&](Operation *op) {
    hash =
        llvm::hash_combine(hash, OperationEquivalence::computeHash(
                                     op, OperationEquivalence::ignoreHashValue,
                                     OperationEquivalence::ignoreHashValue,
                                     OperationEquivalence::IgnoreLocations));
  });
  return hash;
}

std::pair<func::FuncOp, bool> kiln::shareIdenticalKernel(func::FuncOp kernel,
                                                         KernelTable &kernels,
                                                         SymbolTable &symbols) {
  SmallVector<func::FuncOp, 1> &candidates = kernels[structuralHash(kernel)];
  for (func::FuncOp candidate : candidates)
    if (candidate.getFunctionType() == kernel.getFunctionType() &&
        OperationEquivalence::isRegionEquivalentTo(
            &candidate.getBody(), &kernel.getBody(),
            OperationEquivalence::IgnoreLocations)) {
      kernel.erase();
      return {candidate, true};
    }
  candidates.push_back(kernel);
  symbols.insert(kernel); // kiln_kernel, kiln_kernel_0, ...
  return {kernel, false};
}

namespace {

/// Loops and linalg ops, and straight-line vector code (a few partial sums
/// combined in registers after their kernel, once canonicalization unrolled
/// the loop): an entry left with vectors would be compiled as a kernel, at
/// -O3, with every kernel inlined into it (CpuCompiler.cpp compiles an
/// entry of calls unoptimized, and SplitCodegen.cpp compiles its kernels
/// apart).
bool isKernel(Operation *op) {
  if (isa<linalg::LinalgOp, scf::ForallOp, scf::ParallelOp, scf::ForOp>(op))
    return true;
  auto isVector = llvm::IsaPred<VectorType>;
  return !op->hasTrait<OpTrait::ConstantLike>() &&
         (llvm::any_of(op->getResultTypes(), isVector) ||
          llvm::any_of(op->getOperandTypes(), isVector));
}

struct KilnOutlineKernelsPass
    : kiln::impl::KilnOutlineKernelsBase<KilnOutlineKernelsPass> {
  /// Functions something calls (their arguments may be any buffers),
  /// collected per run.
  llvm::DenseSet<StringAttr> calledFunctions;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    SymbolTable symbols(module);
    kiln::KernelTable kernels;
    calledFunctions.clear();
    module.walk([&](func::CallOp call) {
      calledFunctions.insert(call.getCalleeAttr().getAttr());
    });
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
                     kiln::KernelTable &kernels) {
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

    bool shared;
    std::tie(kernel, shared) =
        kiln::shareIdenticalKernel(kernel, kernels, symbols);
    SmallVector<int64_t> groups = bufferGroups(arguments, calledFunctions);
    if (shared) {
      // Shared by several calls: what holds at every one of them.
      groups = commonGroups(
          kernel->getAttrOfType<DenseI64ArrayAttr>(kiln::kBufferGroupsAttr)
              .asArrayRef(),
          groups);
    }
    kernel->setAttr(kiln::kBufferGroupsAttr,
                    OpBuilder(kernel).getDenseI64ArrayAttr(groups));
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
