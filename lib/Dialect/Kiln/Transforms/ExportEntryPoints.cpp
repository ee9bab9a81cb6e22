//===- ExportEntryPoints.cpp - C interfaces for public functions ----------===//

#include "kiln/Dialect/Kiln/Transforms/Passes.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/DenseSet.h"

namespace kiln {
#define GEN_PASS_DEF_KILNEXPORTENTRYPOINTS
#include "kiln/Dialect/Kiln/Transforms/Passes.h.inc"
} // namespace kiln

using namespace mlir;

namespace {
/// Replaces each repeated operand of `ret` with a copy of it.
void copyRepeatedResults(func::ReturnOp ret) {
  llvm::SmallDenseSet<Value> seen;
  OpBuilder builder(ret);
  for (OpOperand &operand : ret->getOpOperands()) {
    Value value = operand.get();
    auto type = dyn_cast<RankedTensorType>(value.getType());
    if (seen.insert(value).second || !type)
      continue;
    operand.set(bufferization::AllocTensorOp::create(
        builder, ret.getLoc(), type, ValueRange(), /*copy=*/value));
  }
}

struct KilnExportEntryPointsPass
    : kiln::impl::KilnExportEntryPointsBase<KilnExportEntryPointsPass> {
  void runOnOperation() override {
    UnitAttr unit = UnitAttr::get(&getContext());
    BoolAttr readOnly = BoolAttr::get(&getContext(), false);
    for (auto func : getOperation().getOps<func::FuncOp>())
      if (func.isPublic() && !func.isExternal()) {
        func->setAttr("llvm.emit_c_interface", unit);
        // Callers own the argument buffers: an op that updates a tensor in
        // place (scatter_add into an argument) must work on a copy.
        for (unsigned i = 0, e = func.getNumArguments(); i < e; ++i)
          func.setArgAttr(i, "bufferization.writable", readOnly);
      }
    getOperation().walk(copyRepeatedResults);
  }
};
} // namespace
