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
        for (Operation &op : llvm::make_early_inc_range(block))
          if (isKernel(&op))
            outline(&op, symbols, kernels);
  }

  void outline(Operation *op, SymbolTable &symbols,
               llvm::StringMap<func::FuncOp> &kernels) {
    // What the kernel uses from outside: constants are cloned in, the
    // rest become arguments.
    llvm::SetVector<Value> used(op->operand_begin(), op->operand_end());
    getUsedValuesDefinedAbove(op->getRegions(), used);
    SmallVector<Value> arguments;
    SmallVector<Operation *> constants;
    for (Value value : used) {
      Operation *def = value.getDefiningOp();
      if (def && def->hasTrait<OpTrait::ConstantLike>() &&
          def->getNumOperands() == 0 && def->getNumRegions() == 0)
        constants.push_back(def);
      else
        arguments.push_back(value);
    }
    OpBuilder detached(op->getContext());
    auto kernel = func::FuncOp::create(
        detached, op->getLoc(), "kiln_kernel",
        detached.getFunctionType(ValueRange(arguments).getTypes(),
                                 op->getResultTypes()));
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
    Operation *copy = b.clone(*op, mapping);
    func::ReturnOp::create(b, op->getLoc(), copy->getResults());

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
    OpBuilder at(op);
    auto call = func::CallOp::create(at, op->getLoc(), kernel, arguments);
    op->replaceAllUsesWith(call.getResults());
    op->erase();
  }
};
} // namespace
