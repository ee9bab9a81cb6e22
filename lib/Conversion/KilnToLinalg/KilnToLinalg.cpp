//===- KilnToLinalg.cpp - Lower kiln ops to linalg/tensor/scf -------------===//
//
// Every (decomposed) kiln op on tensors becomes linalg/tensor/arith/math/scf
// IR, ready for one-shot bufferization. See Passes.td for the overview.
// This file holds the pass, the elementwise, creation and shape ops'
// patterns; the kernels are in the other files of this directory
// (Lowering.h lists what they share).
//
//===----------------------------------------------------------------------===//

#include "Lowering.h"

#include "kiln/Conversion/ReductionPlan.h"
#include "kiln/Conversion/VectorTranspose.h"
#include "kiln/Dialect/Kiln/IR/KilnIndexMath.h"
#include "kiln/Runtime/SelectionPlan.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/DialectConversion.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/raw_ostream.h"

#include <limits>
#include <numeric>

namespace kiln {
#define GEN_PASS_DEF_CONVERTKILNTOLINALG
#include "kiln/Conversion/Passes.h.inc"
} // namespace kiln

namespace kiln::lowering {

namespace {

//===----------------------------------------------------------------------===//
// Elementwise ops (any op with ScalarOpInterface)
//===----------------------------------------------------------------------===//

struct LowerElementwise : OpInterfaceRewritePattern<ScalarOpInterface> {
  using OpInterfaceRewritePattern::OpInterfaceRewritePattern;
  LogicalResult matchAndRewrite(ScalarOpInterface op,
                                PatternRewriter &rewriter) const override {
    Location loc = op->getLoc();
    auto resultType = cast<RankedTensorType>(op->getResult(0).getType());
    MLIRContext *ctx = rewriter.getContext();
    SmallVector<AffineMap> maps;
    for (Value operand : op->getOperands())
      maps.push_back(broadcastMap(tensorType(operand), resultType, ctx));
    maps.push_back(
        AffineMap::getMultiDimIdentityMap(resultType.getRank(), ctx));
    Value init = emptyTensor(rewriter, loc, resultType);
    auto generic = linalg::GenericOp::create(
        rewriter, loc, TypeRange{resultType}, op->getOperands(),
        ValueRange{init}, maps, parallelIterators(resultType.getRank()),
        [&](OpBuilder &b, Location l, ValueRange args) {
          Value result = op.buildScalar(b, l, args.drop_back(),
                                        resultType.getElementType());
          linalg::YieldOp::create(b, l, result);
        });
    rewriter.replaceOp(op, generic.getResults());
    return success();
  }
};

//===----------------------------------------------------------------------===//
// Creation ops
//===----------------------------------------------------------------------===//

struct LowerConstant : OpRewritePattern<ConstantOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(ConstantOp op,
                                PatternRewriter &rewriter) const override {
    rewriter.replaceOpWithNewOp<arith::ConstantOp>(op, op.getValue());
    return success();
  }
};

/// full / zeros_like / ones_like: a splat constant.
template <typename OpTy> struct LowerSplat : OpRewritePattern<OpTy> {
  using OpRewritePattern<OpTy>::OpRewritePattern;
  LogicalResult matchAndRewrite(OpTy op,
                                PatternRewriter &rewriter) const override {
    auto folded = dyn_cast_if_present<DenseElementsAttr>(
        op.fold(typename OpTy::FoldAdaptor({}, op))
            .template dyn_cast<Attribute>());
    if (!folded)
      return rewriter.notifyMatchFailure(op, "does not fold to a splat");
    rewriter.replaceOpWithNewOp<arith::ConstantOp>(op, folded);
    return success();
  }
};

struct LowerArange : OpRewritePattern<ArangeOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(ArangeOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    RankedTensorType type = op.getType();
    Type elementType = type.getElementType();
    double start = op.getStart().convertToDouble();
    double step = op.getStep().convertToDouble();
    Value init =
        tensor::EmptyOp::create(rewriter, loc, type.getShape(), elementType);
    auto generic = linalg::GenericOp::create(
        rewriter, loc, TypeRange{type}, ValueRange{}, ValueRange{init},
        SmallVector<AffineMap>{
            AffineMap::getMultiDimIdentityMap(1, rewriter.getContext())},
        parallelIterators(1), [&](OpBuilder &b, Location l, ValueRange) {
          Value i = arith::IndexCastOp::create(
              b, l, b.getI64Type(), linalg::IndexOp::create(b, l, 0));
          Value value;
          if (isa<FloatType>(elementType)) {
            // start + i * step in double, then rounded once (PyTorch).
            Value fi = arith::SIToFPOp::create(b, l, b.getF64Type(), i);
            Value v = arith::AddFOp::create(
                b, l, arith::ConstantOp::create(b, l, b.getF64FloatAttr(start)),
                arith::MulFOp::create(
                    b, l, fi,
                    arith::ConstantOp::create(b, l, b.getF64FloatAttr(step))));
            value = elementType.isF64()
                        ? v
                        : Value(arith::TruncFOp::create(b, l, elementType, v));
          } else {
            value = arith::AddIOp::create(
                b, l, i64Constant(b, l, static_cast<int64_t>(start)),
                arith::MulIOp::create(
                    b, l, i, i64Constant(b, l, static_cast<int64_t>(step))));
          }
          linalg::YieldOp::create(b, l, value);
        });
    rewriter.replaceOp(op, generic.getResults());
    return success();
  }
};

//===----------------------------------------------------------------------===//
// Shape ops
//===----------------------------------------------------------------------===//

struct LowerReshape : OpRewritePattern<ReshapeOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(ReshapeOp op,
                                PatternRewriter &rewriter) const override {
    rewriter.replaceOp(
        op, reshapeTo(rewriter, op.getLoc(), op.getInput(), op.getType()));
    return success();
  }
};

struct LowerPermute : OpRewritePattern<PermuteOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(PermuteOp op,
                                PatternRewriter &rewriter) const override {
    RankedTensorType type = op.getType();
    SmallVector<int64_t> perm;
    for (int64_t d : op.getDims())
      perm.push_back(*normalizeDim(d, type.getRank()));
    Value init = emptyTensor(rewriter, op.getLoc(), type);
    auto transpose = linalg::TransposeOp::create(rewriter, op.getLoc(),
                                                 op.getInput(), init, perm);
    rewriter.replaceOp(op, transpose.getResults());
    return success();
  }
};

//===----------------------------------------------------------------------===//
// The pass
//===----------------------------------------------------------------------===//

struct ConvertKilnToLinalgPass
    : kiln::impl::ConvertKilnToLinalgBase<ConvertKilnToLinalgPass> {
  using ConvertKilnToLinalgBase::ConvertKilnToLinalgBase;
  void runOnOperation() override {
    ModuleOp module = getOperation();
    MLIRContext *ctx = &getContext();
    if (target != "cpu" && target != "cuda") {
      module.emitError("unknown target '")
          << target << "' (expected cpu or cuda)";
      return signalPassFailure();
    }
    if (target == "cuda")
      module->setAttr(kTargetAttrName, StringAttr::get(ctx, target));
    if (!isSupportedVectorBits(vectorBits)) {
      // On the location alone: the option, not the module, is at fault.
      mlir::emitError(module.getLoc(), "unsupported vector-bits ")
          << int64_t(vectorBits) << " (expected 128, 256 or 512)";
      return signalPassFailure();
    }
    // The patterns read the register width from the module (the default,
    // 512, leaves no attribute).
    if (vectorBits != 512)
      module->setAttr(kVectorBitsAttrName,
                      IntegerAttr::get(IntegerType::get(ctx, 64), vectorBits));
    ErrorSites sites = ErrorSites::load(module);

    // Fused groups first, each into its kernel(s); the conversion below
    // then handles the ops outside them.
    SmallVector<FusedOp> fusedOps;
    module.walk([&](FusedOp op) { fusedOps.push_back(op); });
    for (FusedOp op : fusedOps) {
      IRRewriter rewriter(op);
      // A row group's rows over one dim (kiln-fuse-elementwise collapses
      // the ones it makes; this does the same for the others).
      FailureOr<FusedOp> collapsed = op.collapseRowDims(rewriter);
      if (failed(collapsed)) {
        op.emitOpError("is a row group over the last ")
            << op.getRowDims()
            << " dims whose region uses a value both per row and along "
               "the rows, which has no lowering; write those ops unfused";
        return signalPassFailure();
      }
      op = *collapsed;
      FailureOr<SmallVector<Value>> results = lowerFused(rewriter, op, sites);
      if (failed(results))
        return signalPassFailure();
      rewriter.replaceOp(op, *results);
    }

    RewritePatternSet patterns(ctx);
    patterns.add<LowerElementwise, LowerConstant, LowerSplat<FullOp>,
                 LowerSplat<ZerosLikeOp>, LowerSplat<OnesLikeOp>, LowerArange,
                 LowerReshape, LowerPermute>(ctx);
    populateReductionPatterns(patterns);
    populateSoftmaxPatterns(patterns);
    populateMatmulPatterns(patterns);
    populateRuntimeKernelPatterns(patterns);
    // The GPU always sorts scatters (its alternative is one thread).
    populateIndexingPatterns(patterns, sites,
                             sortedScatters || this->target == "cuda");

    ConversionTarget target(*ctx);
    target.addIllegalDialect<KilnDialect>();
    target.addLegalOp<ReportIndexErrorOp>();
    target.addLegalDialect<
        arith::ArithDialect, bufferization::BufferizationDialect,
        func::FuncDialect, linalg::LinalgDialect, math::MathDialect,
        memref::MemRefDialect, scf::SCFDialect, tensor::TensorDialect,
        vector::VectorDialect>();
    if (failed(applyPartialConversion(module, target, std::move(patterns))))
      return signalPassFailure();

    // Kernels of the entry points (public functions; the JIT makes every
    // function but the entry private): loop nests (linalg ops, outermost
    // loops) and runtime kernel calls, reported by kiln-run --stats.
    int64_t kernels = 0;
    module.walk([&](func::FuncOp func) {
      if (!func.isPublic())
        return;
      for (Operation &op : func.getBody().getOps()) {
        if (isa<linalg::LinalgOp, scf::ForOp, scf::ForallOp>(op))
          ++kernels;
        else if (auto call = dyn_cast<func::CallOp>(op))
          kernels += call.getCallee().starts_with("kiln_rt_");
      }
    });
    module->setAttr(kKernelCountAttrName,
                    IntegerAttr::get(IntegerType::get(ctx, 64), kernels));

    // Sites numbered in program order: the runtime keeps the least
    // (site, index) a run reports, which is then the earliest check that
    // failed, whichever thread reported first.
    llvm::DenseMap<int64_t, int64_t> renumbered;
    ErrorSites ordered;
    module.walk<WalkOrder::PreOrder>([&](ReportIndexErrorOp op) {
      auto [it, inserted] =
          renumbered.try_emplace(op.getSite(), ordered.sites.size());
      if (inserted)
        ordered.sites.push_back(sites.sites[op.getSite()]);
      op.setSite(it->second);
    });
    ordered.save(module);

    // Stored tensors read at delinearized positions: read collapsed
    // (readDelinearizedAsCollapsed; the CPU's vectorizer).
    if (this->target == "cpu") {
      SmallVector<tensor::ExtractOp> extracts;
      module.walk([&](tensor::ExtractOp op) { extracts.push_back(op); });
      IRRewriter rewriter(ctx);
      for (tensor::ExtractOp op : extracts) {
        rewriter.setInsertionPoint(op);
        (void)readDelinearizedAsCollapsed(op, rewriter);
      }
    }
  }
};

} // namespace

} // namespace kiln::lowering
