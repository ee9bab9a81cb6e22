//===- ReturnedViews.cpp - Returned views of allocations, made in place ---===//
//
// buffer-results-to-out-params{hoist-static-allocs} gives a returned
// memref.alloc the caller's output buffer and copies anything else into
// it. A result returned through a reshape is a view of an allocation: this
// pass allocates at the returned shape and lets the kernels write through
// the inverse view, so the returned value is the allocation itself.
//
//===----------------------------------------------------------------------===//

#include "kiln/Dialect/Kiln/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

namespace kiln {
#define GEN_PASS_DEF_KILNRETURNEDVIEWS
#include "kiln/Dialect/Kiln/Transforms/Passes.h.inc"
} // namespace kiln

using namespace mlir;

namespace {
/// Whether `type` is a memref of static shape laid out contiguously in
/// row-major order from its start.
bool isPlainStatic(Type type) {
  auto memref = dyn_cast<MemRefType>(type);
  return memref && memref.hasStaticShape() && memref.getLayout().isIdentity();
}

/// The allocation `value` views (through one reshaping view), if it and the
/// view are plain static memrefs.
memref::AllocOp viewedAllocation(Value value) {
  Operation *view = value.getDefiningOp();
  if (!view || !isPlainStatic(value.getType()) ||
      !isa<memref::ExpandShapeOp, memref::CollapseShapeOp, memref::ReshapeOp>(
          view))
    return nullptr;
  auto alloc = view->getOperand(0).getDefiningOp<memref::AllocOp>();
  if (!alloc || !isPlainStatic(alloc.getType()) ||
      !alloc.getDynamicSizes().empty() || !alloc.getSymbolOperands().empty())
    return nullptr;
  return alloc;
}

/// `value` (a plain static memref) seen as a plain static memref of `type`,
/// with as many elements: collapsed to one dim, then expanded.
Value viewAs(OpBuilder &b, Location loc, Value value, MemRefType type) {
  auto from = cast<MemRefType>(value.getType());
  if (from == type)
    return value;
  int64_t count = from.getNumElements();
  auto flatType = MemRefType::get({count}, from.getElementType());
  auto all = [](int64_t rank) {
    SmallVector<ReassociationIndices> groups;
    if (rank > 0)
      groups.push_back(llvm::to_vector(llvm::seq<int64_t>(0, rank)));
    return groups;
  };
  Value flat = value;
  if (from.getRank() != 1)
    flat = from.getRank() == 0
               ? Value(memref::ExpandShapeOp::create(b, loc, flatType, value,
                                                     all(0)))
               : Value(memref::CollapseShapeOp::create(b, loc, value,
                                                       all(from.getRank())));
  if (type.getRank() == 1)
    return flat;
  if (type.getRank() == 0)
    return memref::CollapseShapeOp::create(b, loc, type, flat, all(0));
  return memref::ExpandShapeOp::create(b, loc, type, flat, all(type.getRank()));
}

struct KilnReturnedViewsPass
    : kiln::impl::KilnReturnedViewsBase<KilnReturnedViewsPass> {
  void runOnOperation() override {
    getOperation()->walk([](func::ReturnOp ret) {
      // Allocations returned more than once (directly or through views)
      // keep their copies: one caller's buffer cannot be two results.
      llvm::SmallDenseMap<Operation *, int> returned;
      for (Value operand : ret.getOperands()) {
        if (memref::AllocOp alloc = viewedAllocation(operand))
          ++returned[alloc];
        else if (Operation *def = operand.getDefiningOp())
          ++returned[def];
      }
      for (OpOperand &operand : ret->getOpOperands()) {
        memref::AllocOp alloc = viewedAllocation(operand.get());
        if (!alloc || returned[alloc] != 1)
          continue;
        auto type = cast<MemRefType>(operand.get().getType());
        OpBuilder b(alloc);
        Location loc = alloc.getLoc();
        auto replacement =
            memref::AllocOp::create(b, loc, type, alloc.getAlignmentAttr());
        alloc.replaceAllUsesWith(viewAs(b, loc, replacement, alloc.getType()));
        alloc.erase();
        Operation *view = operand.get().getDefiningOp();
        operand.set(replacement);
        if (view->use_empty())
          view->erase();
      }
    });
  }
};
} // namespace
