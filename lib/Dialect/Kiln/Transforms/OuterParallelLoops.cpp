//===- OuterParallelLoops.cpp - Parallel outer dim, sequential inner ------===//

#include "kiln/Dialect/Kiln/Transforms/Passes.h"

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Interfaces/CallInterfaces.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace kiln {
#define GEN_PASS_DEF_KILNOUTERPARALLELLOOPS
#include "kiln/Dialect/Kiln/Transforms/Passes.h.inc"
} // namespace kiln

using namespace mlir;

namespace {

/// scf.parallel (i0, i1, ...) { body }  ->
/// scf.parallel (i0) { scf.for i1 { ... { body } } }
struct SplitParallelLoop : OpRewritePattern<scf::ParallelOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(scf::ParallelOp op,
                                PatternRewriter &rewriter) const override {
    if (op.getNumLoops() < 2)
      return rewriter.notifyMatchFailure(op, "already one-dimensional");
    if (!op.getInitVals().empty())
      return rewriter.notifyMatchFailure(op, "has reductions");
    Location loc = op.getLoc();
    auto outer = scf::ParallelOp::create(
        rewriter, loc, op.getLowerBound().take_front(),
        op.getUpperBound().take_front(), op.getStep().take_front(),
        [&](OpBuilder &b, Location l, ValueRange outerIvs) {
          scf::buildLoopNest(
              b, l, op.getLowerBound().drop_front(),
              op.getUpperBound().drop_front(), op.getStep().drop_front(),
              [&](OpBuilder &ib, Location, ValueRange innerIvs) {
                IRMapping mapping;
                SmallVector<Value> ivs = op.getInductionVars();
                mapping.map(ivs.front(), outerIvs.front());
                for (auto [from, to] :
                     llvm::zip_equal(ArrayRef(ivs).drop_front(), innerIvs))
                  mapping.map(from, to);
                for (Operation &nested : op.getBody()->without_terminator())
                  ib.clone(nested, mapping);
              });
        });
    rewriter.replaceOp(op, outer.getResults());
    return success();
  }
};

/// Replaces `op` (no reductions) by the same iterations as scf.for loops.
void sequentialize(scf::ParallelOp op, PatternRewriter &rewriter) {
  scf::buildLoopNest(
      rewriter, op.getLoc(), op.getLowerBound(), op.getUpperBound(),
      op.getStep(), [&](OpBuilder &b, Location, ValueRange ivs) {
        IRMapping mapping;
        mapping.map(op.getInductionVars(), ivs);
        for (Operation &nested : op.getBody()->without_terminator())
          b.clone(nested, mapping);
      });
  rewriter.eraseOp(op);
}

/// An scf.parallel inside another one (e.g. the columns loop of a matmul
/// nested in its reduction loop) runs sequentially in the enclosing
/// thread: nested parallel regions would only add fork overhead.
struct SequentializeNestedParallel : OpRewritePattern<scf::ParallelOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(scf::ParallelOp op,
                                PatternRewriter &rewriter) const override {
    if (!op->getParentOfType<scf::ParallelOp>())
      return rewriter.notifyMatchFailure(op, "outermost parallel loop");
    if (!op.getInitVals().empty())
      return rewriter.notifyMatchFailure(op, "has reductions");
    sequentialize(op, rewriter);
    return success();
  }
};

/// Work counts saturate here (far above any threshold).
constexpr uint64_t kWorkCap = uint64_t(1) << 62;

uint64_t saturatingMul(uint64_t a, uint64_t b) {
  return a && b > kWorkCap / a ? kWorkCap : std::min(a * b, kWorkCap);
}
uint64_t saturatingAdd(uint64_t a, uint64_t b) {
  return std::min(a + b, kWorkCap);
}

/// Iterations of a loop dim with constant bounds and a positive constant
/// step, or nullopt.
std::optional<uint64_t> constantTrips(Value lower, Value upper, Value step) {
  std::optional<int64_t> lb = getConstantIntValue(lower);
  std::optional<int64_t> ub = getConstantIntValue(upper);
  std::optional<int64_t> st = getConstantIntValue(step);
  if (!lb || !ub || !st || *st <= 0)
    return std::nullopt;
  if (*ub <= *lb)
    return uint64_t(0);
  return (uint64_t(*ub) - uint64_t(*lb) + uint64_t(*st) - 1) / uint64_t(*st);
}

/// Lanes of a vector type; 1 for anything else.
uint64_t lanesOf(Type type) {
  if (auto vector = dyn_cast<VectorType>(type))
    return std::max<int64_t>(vector.getNumElements(), 1);
  return 1;
}

std::optional<uint64_t> workOf(Block &block);

/// The operations one execution of `op` performs (see the pass
/// description), or nullopt when that is not known statically.
std::optional<uint64_t> workOf(Operation *op) {
  // A stack allocation in a worksharing loop is freed per iteration (its
  // body is an alloca scope); in a sequential loop it would pile up. A
  // linalg op left (none after convert-linalg-to-parallel-loops) runs its
  // body per element of its loops, which this count does not follow.
  if (isa<CallOpInterface, scf::WhileOp, memref::AllocaOp, linalg::LinalgOp>(
          op))
    return std::nullopt;
  if (auto copy = dyn_cast<memref::CopyOp>(op)) {
    auto type = dyn_cast<MemRefType>(copy.getSource().getType());
    if (!type || !type.hasStaticShape())
      return std::nullopt;
    return std::max<uint64_t>(type.getNumElements(), 1);
  }
  uint64_t trips = 1;
  if (auto loop = dyn_cast<scf::ForOp>(op)) {
    std::optional<uint64_t> n = constantTrips(
        loop.getLowerBound(), loop.getUpperBound(), loop.getStep());
    if (!n)
      return std::nullopt;
    trips = *n;
  } else if (auto loop = dyn_cast<scf::ParallelOp>(op)) {
    for (auto [lb, ub, st] : llvm::zip_equal(
             loop.getLowerBound(), loop.getUpperBound(), loop.getStep())) {
      std::optional<uint64_t> n = constantTrips(lb, ub, st);
      if (!n)
        return std::nullopt;
      trips = saturatingMul(trips, *n);
    }
  } else if (op->getNumRegions() == 0) {
    // One operation per lane of its widest vector operand or result.
    uint64_t lanes = 1;
    for (Type type : op->getOperandTypes())
      lanes = std::max(lanes, lanesOf(type));
    for (Type type : op->getResultTypes())
      lanes = std::max(lanes, lanesOf(type));
    return lanes;
  }
  // Loops run their body `trips` times; other region ops (scf.if, scopes)
  // are counted as if every region ran.
  uint64_t body = 1;
  for (Region &region : op->getRegions())
    for (Block &block : region) {
      std::optional<uint64_t> work = workOf(block);
      if (!work)
        return std::nullopt;
      body = saturatingAdd(body, *work);
    }
  return saturatingMul(trips, body);
}

std::optional<uint64_t> workOf(Block &block) {
  uint64_t total = 0;
  for (Operation &op : block) {
    std::optional<uint64_t> work = workOf(&op);
    if (!work)
      return std::nullopt;
    total = saturatingAdd(total, *work);
  }
  return total;
}

/// An outermost scf.parallel with less known work than `minWork` runs its
/// iterations in order on the calling thread.
struct SequentializeSmallParallel : OpRewritePattern<scf::ParallelOp> {
  SequentializeSmallParallel(MLIRContext *context, uint64_t minWork)
      : OpRewritePattern(context), minWork(minWork) {}
  LogicalResult matchAndRewrite(scf::ParallelOp op,
                                PatternRewriter &rewriter) const override {
    if (op->getParentOfType<scf::ParallelOp>())
      return rewriter.notifyMatchFailure(op, "nested parallel loop");
    if (!op.getInitVals().empty())
      return rewriter.notifyMatchFailure(op, "has reductions");
    std::optional<uint64_t> work = workOf(op);
    if (!work || *work >= minWork)
      return rewriter.notifyMatchFailure(op, "unknown or enough work");
    sequentialize(op, rewriter);
    return success();
  }
  uint64_t minWork;
};

struct KilnOuterParallelLoopsPass
    : kiln::impl::KilnOuterParallelLoopsBase<KilnOuterParallelLoopsPass> {
  using KilnOuterParallelLoopsBase::KilnOuterParallelLoopsBase;
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<SplitParallelLoop, SequentializeNestedParallel>(&getContext());
    if (minParallelWork > 0)
      patterns.add<SequentializeSmallParallel>(&getContext(), minParallelWork);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
