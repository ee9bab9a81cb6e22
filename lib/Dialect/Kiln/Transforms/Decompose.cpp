//===- Decompose.cpp - Composite kiln ops into core ops -------------------===//
//
// mean, norm, mse_loss, cross_entropy and equal expressed with elementwise
// ops,
// plain reductions and log_softmax (which the lowering handles directly,
// in two kernels). Each replacement keeps the original
// op's location, so diagnostics and runtime errors still point at the user's
// op.
//
//===----------------------------------------------------------------------===//

#include "kiln/Dialect/Kiln/IR/KilnOps.h"
#include "kiln/Dialect/Kiln/Transforms/Passes.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#include <cmath>
#include <limits>

namespace kiln {
#define GEN_PASS_DEF_KILNDECOMPOSE
#include "kiln/Dialect/Kiln/Transforms/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;

namespace {

/// A rank-0 tensor constant of `elementType`.
Value scalar(OpBuilder &b, Location loc, Type elementType, double value) {
  auto type = RankedTensorType::get({}, elementType);
  return FullOp::create(b, loc, type, b.getF64FloatAttr(value));
}

/// mean(x) = sum(x) / count. The mean of no elements is NaN, as in PyTorch:
/// written as a constant, with the bits PyTorch's 0/0 has on x86 (the
/// sign bit set), rather than left to 0/0 -- which is -NaN where it runs
/// and +NaN where it is constant-folded (APFloat), so the result's bits
/// would depend on whether the fusion pass had folded the empty sum.
struct DecomposeMean : OpRewritePattern<MeanOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(MeanOp op,
                                PatternRewriter &rewriter) const override {
    auto type = cast<RankedTensorType>(op.getInput().getType());
    Location loc = op.getLoc();
    int64_t count =
        getReducedCount(type, getReducedDimsMask(type, op.getDims()));
    if (count == 0) {
      rewriter.replaceOpWithNewOp<FullOp>(
          op, op.getType(),
          rewriter.getF64FloatAttr(
              std::copysign(std::numeric_limits<double>::quiet_NaN(), -1.0)));
      return success();
    }
    Value sum = SumOp::create(rewriter, loc, op.getInput(), op.getDimsAttr(),
                              op.getKeepdimAttr());
    Value divisor = scalar(rewriter, loc, type.getElementType(),
                           static_cast<double>(count));
    rewriter.replaceOpWithNewOp<DivOp>(op, sum, divisor);
    return success();
  }
};

/// norm_p(x): sqrt(sum(x*x)) for p = 2, sum(|x|) for p = 1, amax(|x|) for
/// p = inf, (sum |x|^p)^(1/p) otherwise.
struct DecomposeNorm : OpRewritePattern<NormOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(NormOp op,
                                PatternRewriter &rewriter) const override {
    auto type = cast<RankedTensorType>(op.getInput().getType());
    Type elementType = type.getElementType();
    Location loc = op.getLoc();
    double p = op.getP().convertToDouble();
    Value x = op.getInput();
    auto dims = op.getDimsAttr();
    auto keepdim = op.getKeepdimAttr();
    if (p == 2.0) {
      Value squares = MulOp::create(rewriter, loc, x, x);
      Value sum = SumOp::create(rewriter, loc, squares, dims, keepdim);
      rewriter.replaceOpWithNewOp<SqrtOp>(op, sum);
      return success();
    }
    Value magnitude = AbsOp::create(rewriter, loc, x);
    if (p == 1.0) {
      rewriter.replaceOpWithNewOp<SumOp>(op, magnitude, dims, keepdim);
      return success();
    }
    if (std::isinf(p)) {
      if (getReducedCount(type, getReducedDimsMask(type, op.getDims())) == 0) {
        // The largest magnitude of nothing: 0, like PyTorch.
        rewriter.replaceOpWithNewOp<FullOp>(op, op.getType(),
                                            rewriter.getF64FloatAttr(0.0));
        return success();
      }
      rewriter.replaceOpWithNewOp<AmaxOp>(op, magnitude, dims, keepdim);
      return success();
    }
    Value powered = PowOp::create(rewriter, loc, magnitude,
                                  scalar(rewriter, loc, elementType, p));
    Value sum = SumOp::create(rewriter, loc, powered, dims, keepdim);
    rewriter.replaceOpWithNewOp<PowOp>(
        op, sum, scalar(rewriter, loc, elementType, 1.0 / p));
    return success();
  }
};

/// Applies a loss `reduction` to per-element losses.
Value reduceLoss(PatternRewriter &rewriter, Location loc, Value losses,
                 StringRef reduction) {
  if (reduction == "none")
    return losses;
  if (reduction == "sum")
    return SumOp::create(rewriter, loc, losses, DenseI64ArrayAttr(),
                         rewriter.getBoolAttr(false));
  return MeanOp::create(rewriter, loc, losses, DenseI64ArrayAttr(),
                        rewriter.getBoolAttr(false));
}

/// mse_loss = reduce((input - target)^2).
struct DecomposeMseLoss : OpRewritePattern<MseLossOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(MseLossOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Value diff = SubOp::create(rewriter, loc, op.getInput(), op.getTarget());
    Value squares = MulOp::create(rewriter, loc, diff, diff);
    rewriter.replaceOp(op,
                       reduceLoss(rewriter, loc, squares, op.getReduction()));
    return success();
  }
};

/// cross_entropy = reduce(-log_softmax(logits) at the target), the
/// log-probability computed at the target only: with m the row maximum and
/// s the row sum of exp(x - m), (x[target] - m) - log(s) -- log_softmax's
/// own arithmetic, in its order. Two passes over the logits (the maximum;
/// exp(x - m) fused into the sum) and no [N, C] result: log_softmax wrote
/// all of it for a gather to read one element per row (4096x1000 f32 at 2
/// threads: 1.46 -> 0.84 ms).
struct DecomposeCrossEntropy : OpRewritePattern<CrossEntropyOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(CrossEntropyOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Value logits = op.getLogits();
    auto logitsType = cast<RankedTensorType>(logits.getType());
    auto targetType = cast<RankedTensorType>(op.getTarget().getType());
    int64_t classDim = logitsType.getRank() - 1;
    SmallVector<int64_t> rowShape(logitsType.getShape());
    rowShape.back() = 1;
    auto rowType = RankedTensorType::get(rowShape, logitsType.getElementType());
    DenseI64ArrayAttr classDims = rewriter.getDenseI64ArrayAttr({classDim});
    BoolAttr keep = rewriter.getBoolAttr(true);
    Value rowMax =
        AmaxOp::create(rewriter, loc, rowType, logits, classDims, keep);
    Value shifted = SubOp::create(rewriter, loc, logits, rowMax);
    Value rowSum =
        SumOp::create(rewriter, loc, rowType,
                      ExpOp::create(rewriter, loc, shifted), classDims, keep);
    Value logSum = LogOp::create(rewriter, loc, rowSum);
    // Gather along the class dim with the target as a [N, 1] (or [1])
    // index, then drop that dim.
    SmallVector<int64_t> indexShape(targetType.getShape());
    indexShape.push_back(1);
    Value index = ReshapeOp::create(
        rewriter, loc,
        RankedTensorType::get(indexShape, targetType.getElementType()),
        op.getTarget());
    // The gather's runtime index check reports the cross_entropy op.
    Location gatherLoc =
        NameLoc::get(rewriter.getStringAttr(op->getName().getStringRef()), loc);
    Value picked = GatherOp::create(rewriter, gatherLoc, logits, index,
                                    rewriter.getI64IntegerAttr(-1));
    Value logProb = SubOp::create(
        rewriter, loc, SubOp::create(rewriter, loc, picked, rowMax), logSum);
    Value flat =
        ReshapeOp::create(rewriter, loc,
                          RankedTensorType::get(targetType.getShape(),
                                                logitsType.getElementType()),
                          logProb);
    Value losses = NegOp::create(rewriter, loc, flat);
    rewriter.replaceOp(op,
                       reduceLoss(rewriter, loc, losses, op.getReduction()));
    return success();
  }
};

/// equal(a, b) = (sum(cast<f32>(a != b)) == 0): true when every pair
/// compares equal (-0 == +0, NaN differs from everything), as
/// `torch.equal`; operands of different shapes are never equal. The count
/// is a sum the fusion pass reads the comparison into -- one pass over both
/// operands, vectorized and split across the threads like every sum --
/// where a loop of its own had walked them element by element (16M f32:
/// 140 ms). Rounding cannot bring a sum of zeros and ones back to zero, so
/// the test is exact at any size.
struct DecomposeEqual : OpRewritePattern<EqualOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(EqualOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    auto lhsType = cast<RankedTensorType>(op.getLhs().getType());
    auto rhsType = cast<RankedTensorType>(op.getRhs().getType());
    if (lhsType.getShape() != rhsType.getShape()) {
      rewriter.replaceOpWithNewOp<FullOp>(op, op.getType(),
                                          rewriter.getF64FloatAttr(0.0));
      return success();
    }
    Value differ = NeOp::create(rewriter, loc, op.getLhs(), op.getRhs());
    Type f32 = rewriter.getF32Type();
    Value count = CastOp::create(
        rewriter, loc, RankedTensorType::get(lhsType.getShape(), f32), differ);
    Value total = SumOp::create(rewriter, loc, count, DenseI64ArrayAttr(),
                                rewriter.getBoolAttr(false));
    rewriter.replaceOpWithNewOp<EqOp>(op, total,
                                      scalar(rewriter, loc, f32, 0.0));
    return success();
  }
};

struct KilnDecomposePass : kiln::impl::KilnDecomposeBase<KilnDecomposePass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populateDecomposePatterns(patterns);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace

void kiln::populateDecomposePatterns(RewritePatternSet &patterns) {
  patterns.add<DecomposeMean, DecomposeNorm, DecomposeMseLoss,
               DecomposeCrossEntropy, DecomposeEqual>(patterns.getContext());
}
