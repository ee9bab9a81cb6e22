//===- ExportEntryPoints.cpp - C interfaces for public functions ----------===//

#include "kiln/Dialect/Kiln/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"

namespace kiln {
#define GEN_PASS_DEF_KILNEXPORTENTRYPOINTS
#include "kiln/Dialect/Kiln/Transforms/Passes.h.inc"
} // namespace kiln

using namespace mlir;

namespace {
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
  }
};
} // namespace
