//===- OuterParallelLoops.cpp - Parallel outer dim, sequential inner ------===//

#include "kiln/Dialect/Kiln/Transforms/Passes.h"

#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/PatternMatch.h"
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
    scf::buildLoopNest(
        rewriter, op.getLoc(), op.getLowerBound(), op.getUpperBound(),
        op.getStep(), [&](OpBuilder &b, Location, ValueRange ivs) {
          IRMapping mapping;
          mapping.map(op.getInductionVars(), ivs);
          for (Operation &nested : op.getBody()->without_terminator())
            b.clone(nested, mapping);
        });
    rewriter.eraseOp(op);
    return success();
  }
};

struct KilnOuterParallelLoopsPass
    : kiln::impl::KilnOuterParallelLoopsBase<KilnOuterParallelLoopsPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<SplitParallelLoop, SequentializeNestedParallel>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
