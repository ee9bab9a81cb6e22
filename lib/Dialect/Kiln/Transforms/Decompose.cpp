//===- Decompose.cpp - Composite kiln ops into core ops -------------------===//
//
// mean, norm, mse_loss, cross_entropy, equal and thin matmuls expressed
// with elementwise ops, plain reductions and log_softmax (which the
// lowering handles directly, in two kernels). Each replacement keeps the
// original op's location, so diagnostics and runtime errors still point at
// the user's op.
//
//===----------------------------------------------------------------------===//

#include "kiln/Conversion/ReductionPlan.h"
#include "kiln/Dialect/Kiln/IR/KilnOps.h"
#include "kiln/Dialect/Kiln/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/IR/Remarks.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"
#include "llvm/Support/FormatVariadic.h"

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

/// Reports (category `kiln-decompose`) how `op` was rewritten; `what` is
/// only called when remarks are on.
void remarkDecomposed(Operation *op, llvm::function_ref<std::string()> what) {
  if (!op->getContext()->getRemarkEngine())
    return;
  auto function = op->getParentOfType<func::FuncOp>();
  if (auto r = remark::passed(
          op->getLoc(),
          remark::RemarkOpts::name("Decomposed")
              .category("kiln-decompose")
              .function(function ? function.getSymName() : StringRef())))
    r << remark::add("{0}", what());
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
/// threads: 1.46 -> 0.84 ms). On the CPU, rows of a few classes that the
/// softmax lowering takes a row per lane (laneRowsWidth of ReductionPlan.h)
/// are the log_softmax and the gather from it instead: the same arithmetic
/// in the same order (the row's sum in class order either way), so the
/// same bits, in one kernel of vector code where the maximum and the sum
/// were two that LLVM vectorized across 16 rows, each row's classes
/// unrolled and loaded one at a time (4096x10 f32 at 1 thread: 46 -> 26
/// us, 4 kernels instead of 5).
struct DecomposeCrossEntropy : OpRewritePattern<CrossEntropyOp> {
  DecomposeCrossEntropy(MLIRContext *ctx, bool cpu)
      : OpRewritePattern(ctx), cpu(cpu) {}
  LogicalResult matchAndRewrite(CrossEntropyOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Value logits = op.getLogits();
    auto logitsType = cast<RankedTensorType>(logits.getType());
    auto targetType = cast<RankedTensorType>(op.getTarget().getType());
    int64_t classDim = logitsType.getRank() - 1;
    int64_t classes = logitsType.getDimSize(classDim);
    bool laneRows =
        cpu && kiln::conversion::laneRowsWidth(
                   logitsType.getNumElements() / std::max<int64_t>(classes, 1),
                   classes, logitsType.getElementTypeBitWidth());
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
    Value logProb;
    if (laneRows) {
      Value logSoftmax = LogSoftmaxOp::create(
          rewriter, loc, logits, rewriter.getI64IntegerAttr(classDim));
      logProb = GatherOp::create(rewriter, gatherLoc, logSoftmax, index,
                                 rewriter.getI64IntegerAttr(-1));
    } else {
      SmallVector<int64_t> rowShape(logitsType.getShape());
      rowShape.back() = 1;
      auto rowType =
          RankedTensorType::get(rowShape, logitsType.getElementType());
      DenseI64ArrayAttr classDims = rewriter.getDenseI64ArrayAttr({classDim});
      BoolAttr keep = rewriter.getBoolAttr(true);
      Value rowMax =
          AmaxOp::create(rewriter, loc, rowType, logits, classDims, keep);
      Value shifted = SubOp::create(rewriter, loc, logits, rowMax);
      Value rowSum =
          SumOp::create(rewriter, loc, rowType,
                        ExpOp::create(rewriter, loc, shifted), classDims, keep);
      Value logSum = LogOp::create(rewriter, loc, rowSum);
      Value picked = GatherOp::create(rewriter, gatherLoc, logits, index,
                                      rewriter.getI64IntegerAttr(-1));
      logProb = SubOp::create(
          rewriter, loc, SubOp::create(rewriter, loc, picked, rowMax), logSum);
    }
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

private:
  bool cpu;
};

/// Whether kiln-fuse-elementwise would compute `value` where a consumer
/// reads it (an elementwise op, a splat constant) rather than read it
/// from memory.
bool computedInPlace(Value value) {
  Operation *def = value.getDefiningOp();
  return def &&
         (def->hasTrait<kiln::OpTrait::Elementwise>() || isSplatConstant(def));
}

/// equal(a, b) = (sum(cast<f32>(a != b)) == 0): true when every pair
/// compares equal (-0 == +0, NaN differs from everything), as
/// `torch.equal`; operands of different shapes are never equal. The count
/// is a sum the fusion pass reads the comparison into -- one pass over both
/// operands, vectorized and split across the threads like every sum --
/// where a loop of its own had walked them element by element (16M f32:
/// 140 ms). Rounding cannot bring a sum of zeros and ones back to zero, so
/// the test is exact at any size. On the CPU an equal of two operands in
/// memory stays (`keepStored`): its lowering calls the runtime's
/// comparison, which also stops at the first difference (16M f32 that
/// differ at the start: microseconds, where the sum reads all 128 MB); the
/// sum stays the better kernel when the comparison reads a chain in place.
struct DecomposeEqual : OpRewritePattern<EqualOp> {
  DecomposeEqual(MLIRContext *ctx, bool keepStored)
      : OpRewritePattern(ctx), keepStored(keepStored) {}
  LogicalResult matchAndRewrite(EqualOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    auto lhsType = cast<RankedTensorType>(op.getLhs().getType());
    auto rhsType = cast<RankedTensorType>(op.getRhs().getType());
    if (lhsType.getShape() != rhsType.getShape())
      return rewriter.notifyMatchFailure(op, "different shapes: folded");
    if (keepStored && !computedInPlace(op.getLhs()) &&
        !computedInPlace(op.getRhs()))
      return rewriter.notifyMatchFailure(
          op, "both operands in memory: the runtime's comparison");
    remarkDecomposed(op, [&] {
      return llvm::formatv(
                 "kiln.equal of {0}: computed as sum(cast<f32>(a != b)) == 0, "
                 "the comparison read by the sum's kernel (one pass over both "
                 "operands, split across the threads when long)",
                 lhsType)
          .str();
    });
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

private:
  bool keepStored;
};

/// Rows a vector of sums holds in the CPU's matrix-vector kernel (16 f32,
/// 8 f64; lowering/Matmul.cpp): with fewer rows it would leave lanes
/// empty, its sums in one thread.
int64_t matrixVectorLanes(Type elementType) {
  return elementType.isF32() ? 16 : 8;
}

/// A matmul with one result dim of size 1 in its matrix product (a dot
/// product, fewer matrix rows than a vector of sums holds times a vector,
/// a vector times a matrix of few columns) is a sum over k of products:
/// `sum(a * b)`, the operands seen so that k lines up and broadcasting
/// gives the rest. The sum's kernel reads the products in place (fused),
/// in the lane order of every float sum, split into segments across the
/// threads when the lines are long; the matmul kernels would sum each
/// element in k order on one thread, one add waiting on the one before
/// (a dot product of 16M f32: 10.3 ms at any thread count). The lane
/// order, not k order, for these shapes: a dot product's bits are those
/// of sum(a * b).
struct DecomposeThinMatmul : OpRewritePattern<MatmulOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(MatmulOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Value lhs = op.getLhs(), rhs = op.getRhs();
    auto lhsType = cast<RankedTensorType>(lhs.getType());
    auto rhsType = cast<RankedTensorType>(rhs.getType());
    RankedTensorType resultType = op.getType();
    Type elementType = resultType.getElementType();
    int64_t lhsRank = lhsType.getRank(), rhsRank = rhsType.getRank();
    // The matrix product's sizes: n rows (1 for a vector lhs), m columns
    // (1 for a vector rhs), k.
    int64_t n = lhsRank == 1 ? 1 : lhsType.getDimSize(lhsRank - 2);
    int64_t m = rhsRank == 1 ? 1 : rhsType.getDimSize(rhsRank - 1);
    int64_t k = lhsType.getDimSize(lhsRank - 1);
    int64_t lanes = matrixVectorLanes(elementType);
    bool floatElements = isa<FloatType>(elementType);
    auto seenAs = [&](Value value, RankedTensorType type,
                      ArrayRef<int64_t> trailing) -> Value {
      // A matrix's batch dims, then `trailing` for its last two (all of
      // a vector's one).
      SmallVector<int64_t> shape;
      if (type.getRank() > 2)
        shape.assign(type.getShape().drop_back(2).begin(),
                     type.getShape().drop_back(2).end());
      shape.append(trailing.begin(), trailing.end());
      if (ArrayRef<int64_t>(shape) == type.getShape())
        return value;
      return ReshapeOp::create(
          rewriter, loc, RankedTensorType::get(shape, type.getElementType()),
          value);
    };
    Value products;
    int64_t reduced;
    if (m == 1) {
      // Each result element: row i of lhs times the vector. The matrix
      // vector kernel takes a float vector rhs ([K] or [K, 1]) with whole
      // vectors of rows.
      if (lhsRank >= 2 && n >= lanes && floatElements && rhsRank <= 2)
        return failure();
      // rhs [..., K, 1] seen as [..., 1, K] (the same elements in order),
      // a vector lhs as one row [1, K]: products [..., n, K], summed over
      // the last dim (kept when the result has its column dim).
      Value row = rhsRank == 1 ? rhs : seenAs(rhs, rhsType, {1, k});
      Value rows =
          lhsRank == 1 && rhsRank > 1 ? seenAs(lhs, lhsType, {1, k}) : lhs;
      products = MulOp::create(rewriter, loc, rows, row);
      reduced = cast<RankedTensorType>(products.getType()).getRank() - 1;
    } else if (n == 1 && m < lanes) {
      // A vector (or one row) times a matrix of few columns: lhs seen as
      // a column [..., K, 1], products [..., K, M] summed over dim -2.
      Value column = seenAs(lhs, lhsType, {k, 1});
      products = MulOp::create(rewriter, loc, column, rhs);
      reduced = cast<RankedTensorType>(products.getType()).getRank() - 2;
    } else {
      return failure();
    }
    remarkDecomposed(op, [&] {
      return llvm::formatv(
                 "kiln.matmul {0} x {1}: a thin product ({2} row(s) x {3} "
                 "column(s), k = {4}) computed as sum(a * b) over k: the "
                 "products read by the sum's kernel, in the lane order of a "
                 "sum (not k order), split across the threads when long",
                 lhsType, rhsType, n, m, k)
          .str();
    });
    auto productsType = cast<RankedTensorType>(products.getType());
    // Kept (size 1) when the result has the reduced dim's place: a matrix
    // lhs with a matrix rhs.
    bool keep = productsType.getRank() == resultType.getRank();
    rewriter.replaceOpWithNewOp<SumOp>(op, resultType, products,
                                       rewriter.getDenseI64ArrayAttr({reduced}),
                                       rewriter.getBoolAttr(keep));
    return success();
  }
};

struct KilnDecomposePass : kiln::impl::KilnDecomposeBase<KilnDecomposePass> {
  using KilnDecomposeBase::KilnDecomposeBase;
  void runOnOperation() override {
    if (target != "cpu" && target != "cuda") {
      getOperation()->emitError("unknown target '")
          << target << "' (expected cpu or cuda)";
      return signalPassFailure();
    }
    RewritePatternSet patterns(&getContext());
    populateDecomposePatterns(patterns, target == "cpu");
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace

void kiln::populateDecomposePatterns(RewritePatternSet &patterns, bool cpu) {
  patterns
      .add<DecomposeMean, DecomposeNorm, DecomposeMseLoss, DecomposeThinMatmul>(
          patterns.getContext());
  patterns.add<DecomposeCrossEntropy>(patterns.getContext(), cpu);
  patterns.add<DecomposeEqual>(patterns.getContext(), /*keepStored=*/cpu);
}
