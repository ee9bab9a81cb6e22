//===- LowerRuntimeCalls.cpp - Internal kiln ops to runtime calls ---------===//

#include "kiln/Dialect/Kiln/IR/KilnOps.h"
#include "kiln/Dialect/Kiln/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"

namespace kiln {
#define GEN_PASS_DEF_KILNLOWERRUNTIMECALLS
#include "kiln/Dialect/Kiln/Transforms/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;

namespace {
struct KilnLowerRuntimeCallsPass
    : kiln::impl::KilnLowerRuntimeCallsBase<KilnLowerRuntimeCallsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<ReportIndexErrorOp> reports;
    module.walk([&](ReportIndexErrorOp op) { reports.push_back(op); });
    if (reports.empty())
      return;
    OpBuilder b(module.getBodyRegion());
    Type i64 = b.getI64Type();
    StringRef name = "kiln_rt_index_error";
    auto callee = module.lookupSymbol<func::FuncOp>(name);
    if (!callee) {
      callee = func::FuncOp::create(b, module.getLoc(), name,
                                    b.getFunctionType({i64, i64, i64}, {}));
      callee.setPrivate();
      callee->setAttr("llvm.emit_c_interface", b.getUnitAttr());
    }
    for (ReportIndexErrorOp op : reports) {
      b.setInsertionPoint(op);
      Value site =
          arith::ConstantIntOp::create(b, op.getLoc(), op.getSite(), 64);
      func::CallOp::create(b, op.getLoc(), callee,
                           ValueRange{site, op.getIndex(), op.getSize()});
      op.erase();
    }
  }
};
} // namespace
