//===- CheckUpstreamShapes.cpp - Runtime checks of upstream shape claims --===//
//
// Upstream ops of IR files that take a dynamic size to agree with another
// size get that agreement checked at run time, before canonicalize folds
// the claim into the IR; ops that address memory in ways no check covers
// are errors (see Passes.td).
//
//===----------------------------------------------------------------------===//

#include "../ErrorSites.h"
#include "kiln/Conversion/Passes.h"
#include "kiln/Dialect/Kiln/IR/KilnOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinTypes.h"
#include "llvm/ADT/TypeSwitch.h"

namespace kiln {
#define GEN_PASS_DEF_KILNCHECKUPSTREAMSHAPES
#include "kiln/Conversion/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using kiln::conversion::ErrorSites;
using kiln::conversion::reportIf;

namespace {

/// One size an op takes for granted: `actual` (an index value read at run
/// time) must equal `expected`, or (`atLeast`) be at least it. `what`
/// names the size in the message, `{index}` standing for its value.
struct Claim {
  Value actual;
  Value expected;
  bool atLeast;
  std::string what;
};

/// The size of dim `dim` of the tensor or memref `value`.
Value dimOf(OpBuilder &b, Location loc, Value value, int64_t dim) {
  auto type = cast<ShapedType>(value.getType());
  if (!type.isDynamicDim(dim))
    return arith::ConstantIndexOp::create(b, loc, type.getDimSize(dim));
  if (isa<MemRefType>(type))
    return memref::DimOp::create(b, loc, value, dim);
  return tensor::DimOp::create(b, loc, value, dim);
}

bool hasDynamicDim(Value value) {
  auto type = dyn_cast<ShapedType>(value.getType());
  return type && type.hasRank() && !type.hasStaticShape();
}

/// Whether a cast from `from` to `to` (both ranked) makes a dynamic dim
/// static.
bool refinesDynamicDim(ShapedType from, ShapedType to) {
  for (int64_t d = 0; d < from.getRank(); ++d)
    if (from.isDynamicDim(d) && !to.isDynamicDim(d))
      return true;
  return false;
}

/// The dynamic sizes of `type`, read from the dims of `value` (of its
/// rank).
SmallVector<Value> dynamicSizes(OpBuilder &b, Location loc,
                                RankedTensorType type, Value value) {
  SmallVector<Value> sizes;
  for (int64_t d = 0; d < type.getRank(); ++d)
    if (type.isDynamicDim(d))
      sizes.push_back(dimOf(b, loc, value, d));
  return sizes;
}

/// The number of positions a static slice reaches along a dim: its last
/// position + 1, or its offset when it takes none.
int64_t sliceExtent(int64_t offset, int64_t size, int64_t stride) {
  return size == 0 ? offset : offset + (size - 1) * stride + 1;
}

struct KilnCheckUpstreamShapesPass
    : kiln::impl::KilnCheckUpstreamShapesBase<KilnCheckUpstreamShapesPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    bool failed = false;
    SmallVector<Operation *> claiming;
    // One error per unsupported op, outermost first: the ops inside a
    // rejected one (the body of an `llvm.func`, as `kiln-compile
    // --emit=mlir` prints them) go unreported, a line each before.
    module.walk<WalkOrder::PreOrder>([&](Operation *op) {
      if (isa_and_nonnull<kiln::KilnDialect>(op->getDialect()))
        return WalkResult::advance();
      if (const char *why = unsupported(op)) {
        op->emitOpError() << why;
        failed = true;
        return WalkResult::skip();
      }
      if (takesSizesForGranted(op))
        claiming.push_back(op);
      return WalkResult::advance();
    });
    if (failed)
      return signalPassFailure();
    if (claiming.empty())
      return;
    ErrorSites sites = ErrorSites::load(module);
    for (Operation *op : claiming)
      if (::mlir::failed(check(op, sites)))
        return signalPassFailure();
    sites.save(module);
  }

  /// Why `op` is rejected at compile time, or null.
  static const char *unsupported(Operation *op) {
    if (isa_and_nonnull<LLVM::LLVMDialect>(op->getDialect()))
      return "is not supported by Kiln in IR files: the llvm dialect's "
             "raw pointers are outside Kiln's runtime checks";
    if (auto cast = dyn_cast<memref::CastOp>(op)) {
      auto from = dyn_cast<MemRefType>(cast.getSource().getType());
      auto to = dyn_cast<MemRefType>(cast.getType());
      if (!from || !to)
        return "on unranked memrefs is not supported by Kiln";
      return refinesDynamicDim(from, to)
                 ? "to a static size of a dynamic dim is not supported by "
                   "Kiln: the size is not checked at run time (cast the "
                   "tensor, tensor.cast is checked)"
                 : nullptr;
    }
    if (auto subview = dyn_cast<memref::SubViewOp>(op))
      return hasDynamicDim(subview.getSource())
                 ? "of a buffer with dynamic sizes is not supported by "
                   "Kiln: its bounds are not checked at run time (slice "
                   "the tensor, tensor.extract_slice is checked)"
                 : nullptr;
    if (auto insert = dyn_cast<tensor::ParallelInsertSliceOp>(op))
      return hasDynamicDim(insert.getDest())
                 ? "into a destination with dynamic sizes is not supported "
                   "by Kiln: its bounds are not checked at run time (an "
                   "scf.forall terminator cannot be guarded)"
                 : nullptr;
    if (auto reinterpret = dyn_cast<memref::ReinterpretCastOp>(op))
      return reinterpretsWithin(reinterpret)
                 ? nullptr
                 : "is supported by Kiln only on a buffer of static shape "
                   "and identity layout, with static offset, sizes and "
                   "strides that stay within it";
    if (auto view = dyn_cast<memref::ViewOp>(op))
      return viewsWithin(view) ? nullptr
                               : "is supported by Kiln only with a constant "
                                 "shift and a static shape that stay "
                                 "within its static buffer";
    return nullptr;
  }

  /// Whether a static reinterpret_cast of a static identity-layout buffer
  /// reaches only positions inside it.
  static bool reinterpretsWithin(memref::ReinterpretCastOp op) {
    auto source = dyn_cast<MemRefType>(op.getSource().getType());
    if (!source || !source.hasStaticShape() || !source.getLayout().isIdentity())
      return false;
    if (!op.getOffsets().empty() || !op.getSizes().empty() ||
        !op.getStrides().empty())
      return false;
    int64_t last = op.getStaticOffsets()[0];
    if (last < 0)
      return false;
    for (auto [size, stride] :
         llvm::zip(op.getStaticSizes(), op.getStaticStrides())) {
      if (size < 0 || stride < 0)
        return false;
      if (size == 0)
        return true; // no element: nothing is read
      // Bounded by kiln-check-shapes' limit (2^59 elements) and the
      // source's size: no overflow before the comparison fails.
      if (stride > source.getNumElements() || size > source.getNumElements())
        return false;
      last += (size - 1) * stride;
      if (last >= source.getNumElements())
        return false;
    }
    return last < source.getNumElements();
  }

  /// Whether a memref.view with a constant shift and a static shape stays
  /// inside its static buffer.
  static bool viewsWithin(memref::ViewOp op) {
    auto source = op.getSource().getType();
    auto result = op.getType();
    APInt shift;
    if (!source.hasStaticShape() || !result.hasStaticShape() ||
        !matchPattern(op.getByteShift(), m_ConstantInt(&shift)) ||
        !result.getElementType().isIntOrFloat())
      return false;
    int64_t bytes = source.getNumElements(), start = shift.getSExtValue();
    int64_t elementBytes =
        std::max(1u, (result.getElementType().getIntOrFloatBitWidth() + 7) / 8);
    if (start < 0 || start > bytes)
      return false;
    return result.getNumElements() <= (bytes - start) / elementBytes;
  }

  /// Ops whose lowering takes sizes to agree that may not at run time.
  static bool takesSizesForGranted(Operation *op) {
    return llvm::TypeSwitch<Operation *, bool>(op)
        .Case([](tensor::CastOp x) {
          auto from = dyn_cast<RankedTensorType>(x.getSource().getType());
          auto to = dyn_cast<RankedTensorType>(x.getType());
          return from && to && refinesDynamicDim(from, to);
        })
        .Case([](tensor::ExtractSliceOp x) {
          return hasDynamicDim(x.getSource());
        })
        .Case([](tensor::InsertSliceOp x) {
          return hasDynamicDim(x.getDest()) || hasDynamicDim(x.getSource());
        })
        .Case([](memref::CopyOp x) {
          return hasDynamicDim(x.getSource()) || hasDynamicDim(x.getTarget());
        })
        .Case([](tensor::ReshapeOp x) {
          return hasDynamicDim(x.getSource()) ||
                 !matchPattern(x.getShape(), m_Constant());
        })
        .Case([](tensor::ConcatOp x) {
          return llvm::any_of(x->getOperands(), hasDynamicDim) ||
                 hasDynamicDim(x.getResult());
        })
        .Case([](linalg::LinalgOp x) {
          return llvm::any_of(x->getOperands(), hasDynamicDim);
        })
        .Default([](Operation *) { return false; });
  }

  /// The claims of `op` (built before it), or failure after a diagnostic.
  LogicalResult claims(OpBuilder &b, Operation *op,
                       SmallVectorImpl<Claim> &out) {
    Location loc = op->getLoc();
    auto index = [&](int64_t value) -> Value {
      return arith::ConstantIndexOp::create(b, loc, value);
    };
    auto sliceClaims = [&](OffsetSizeAndStrideOpInterface slice, Value whole,
                           StringRef name) -> LogicalResult {
      if (!slice.getOffsets().empty() || !slice.getSizes().empty() ||
          !slice.getStrides().empty())
        return success(); // kiln-check-upstream-indices rejects it
      auto type = cast<ShapedType>(whole.getType());
      for (int64_t d = 0; d < type.getRank(); ++d) {
        if (!type.isDynamicDim(d))
          continue;
        int64_t extent =
            sliceExtent(slice.getStaticOffsets()[d], slice.getStaticSizes()[d],
                        slice.getStaticStrides()[d]);
        out.push_back(Claim{dimOf(b, loc, whole, d), index(extent), true,
                            "dim " + std::to_string(d) + " of the " +
                                name.str() + " is {index}, the slice reaches " +
                                std::to_string(extent)});
      }
      return success();
    };
    auto equalDims = [&](Value from, Value to, StringRef fromName,
                         StringRef toName) {
      auto fromType = cast<ShapedType>(from.getType());
      auto toType = cast<ShapedType>(to.getType());
      for (int64_t d = 0; d < fromType.getRank(); ++d) {
        if (!fromType.isDynamicDim(d) && !toType.isDynamicDim(d))
          continue;
        std::string expected = toType.isDynamicDim(d)
                                   ? "the " + toName.str() + "'s"
                                   : std::to_string(toType.getDimSize(d)) +
                                         " (the " + toName.str() + "'s)";
        out.push_back(Claim{dimOf(b, loc, from, d), dimOf(b, loc, to, d), false,
                            "dim " + std::to_string(d) + " of the " +
                                fromName.str() + " is {index}, not " +
                                expected});
      }
    };
    return llvm::TypeSwitch<Operation *, LogicalResult>(op)
        .Case([&](tensor::CastOp x) {
          auto to = cast<RankedTensorType>(x.getType());
          for (int64_t d = 0; d < to.getRank(); ++d)
            if (!to.isDynamicDim(d) &&
                cast<RankedTensorType>(x.getSource().getType()).isDynamicDim(d))
              out.push_back(Claim{dimOf(b, loc, x.getSource(), d),
                                  index(to.getDimSize(d)), false,
                                  "dim " + std::to_string(d) +
                                      " of the source is {index}, not " +
                                      std::to_string(to.getDimSize(d)) +
                                      " (the result type's)"});
          return success();
        })
        .Case([&](tensor::ExtractSliceOp x) {
          return sliceClaims(x, x.getSource(), "source");
        })
        .Case([&](tensor::InsertSliceOp x) {
          // The source's sizes are the slice's (static here, or the op is
          // rejected later); the destination must hold the slice.
          return sliceClaims(x, x.getDest(), "destination");
        })
        .Case([&](memref::CopyOp x) {
          equalDims(x.getSource(), x.getTarget(), "source", "target");
          return success();
        })
        .Case([&](tensor::ReshapeOp x) {
          auto to = cast<RankedTensorType>(x.getType());
          if (!to.hasStaticShape())
            return success(); // kiln-check-upstream-indices rejects it
          // The shape operand holds the result type's sizes ...
          auto shapeType = cast<RankedTensorType>(x.getShape().getType());
          for (int64_t d = 0; d < to.getRank(); ++d) {
            Value size = tensor::ExtractOp::create(b, loc, x.getShape(),
                                                   ValueRange{index(d)});
            if (!shapeType.getElementType().isIndex())
              size = arith::IndexCastOp::create(b, loc, b.getIndexType(), size);
            out.push_back(Claim{size, index(to.getDimSize(d)), false,
                                "element " + std::to_string(d) +
                                    " of the shape is {index}, not " +
                                    std::to_string(to.getDimSize(d)) +
                                    " (the result type's)"});
          }
          // ... and the source as many elements.
          auto from = cast<RankedTensorType>(x.getSource().getType());
          if (from.hasStaticShape())
            return success(); // the verifier compared the counts
          Value count = index(1);
          for (int64_t d = 0; d < from.getRank(); ++d)
            count = arith::MulIOp::create(b, loc, count,
                                          dimOf(b, loc, x.getSource(), d));
          out.push_back(Claim{count, index(to.getNumElements()), false,
                              "the source has {index} elements, not " +
                                  std::to_string(to.getNumElements()) +
                                  " (the result type's)"});
          return success();
        })
        .Case([&](tensor::ConcatOp x) {
          auto to = cast<RankedTensorType>(x.getType());
          int64_t axis = x.getDim();
          Value total = index(0);
          for (auto [i, input] : llvm::enumerate(x.getInputs())) {
            std::string name = "operand #" + std::to_string(i);
            auto type = cast<RankedTensorType>(input.getType());
            for (int64_t d = 0; d < type.getRank(); ++d) {
              if (d == axis)
                continue;
              if (i == 0 && to.isDynamicDim(d))
                continue; // the result's dim is operand #0's
              if (!type.isDynamicDim(d) && !to.isDynamicDim(d))
                continue; // both static: the verifier compared them
              // The result type's size, or else operand #0's.
              Value expected = to.isDynamicDim(d)
                                   ? dimOf(b, loc, x.getInputs()[0], d)
                                   : index(to.getDimSize(d));
              out.push_back(Claim{dimOf(b, loc, input, d), expected, false,
                                  "dim " + std::to_string(d) + " of " + name +
                                      " is {index}, not " +
                                      (to.isDynamicDim(d)
                                           ? std::string("operand #0's")
                                           : std::to_string(to.getDimSize(d)) +
                                                 " (the result type's)")});
            }
            total = arith::AddIOp::create(b, loc, total,
                                          dimOf(b, loc, input, axis));
          }
          if (!to.isDynamicDim(axis))
            out.push_back(Claim{total, index(to.getDimSize(axis)), false,
                                "the operands' sizes along dim " +
                                    std::to_string(axis) +
                                    " add up to {index}, not " +
                                    std::to_string(to.getDimSize(axis)) +
                                    " (the result type's)"});
          return success();
        })
        .Case([&](linalg::LinalgOp x) { return loopClaims(b, x, out); })
        .Default([](Operation *) { return success(); });
  }

  /// A structured op's loops run over sizes taken from the first operand
  /// dim each loop indexes; every other dim must agree with them.
  LogicalResult loopClaims(OpBuilder &b, linalg::LinalgOp op,
                           SmallVectorImpl<Claim> &out) {
    Location loc = op->getLoc();
    // Each loop's size: the first operand dim it indexes, whether that dim
    // is dynamic, and its name.
    struct LoopSize {
      Value size;
      bool dynamic;
      std::string what;
    };
    SmallVector<std::optional<LoopSize>> loops(op.getNumLoops());
    for (OpOperand &operand : op->getOpOperands()) {
      auto type = dyn_cast<ShapedType>(operand.get().getType());
      if (!type || !type.hasRank())
        continue;
      AffineMap map = op.getMatchingIndexingMap(&operand);
      std::string name =
          "operand #" + std::to_string(operand.getOperandNumber());
      for (auto [d, expr] : llvm::enumerate(map.getResults())) {
        std::string what = "dim " + std::to_string(d) + " of " + name;
        if (auto constant = dyn_cast<AffineConstantExpr>(expr)) {
          if (type.isDynamicDim(d))
            out.push_back(Claim{
                dimOf(b, loc, operand.get(), d),
                arith::ConstantIndexOp::create(b, loc, constant.getValue() + 1),
                true,
                what + " is {index}, the op reads position " +
                    std::to_string(constant.getValue())});
          continue;
        }
        auto loop = dyn_cast<AffineDimExpr>(expr);
        if (!loop) {
          if (llvm::any_of(op->getOperands(), hasDynamicDim))
            return op->emitOpError()
                   << "with dynamic sizes and an indexing map that is not a "
                      "permutation of loops is not supported by Kiln: its "
                      "sizes are not checked at run time";
          continue;
        }
        Value size = dimOf(b, loc, operand.get(), d);
        auto &defined = loops[loop.getPosition()];
        if (!defined) {
          defined = LoopSize{size, type.isDynamicDim(d), what};
          continue;
        }
        if (!type.isDynamicDim(d) && !defined->dynamic)
          continue; // both static: the verifier compared them
        out.push_back(Claim{size, defined->size, false,
                            what + " is {index}, not the size of " +
                                defined->what + " (the loop's)"});
      }
    }
    return success();
  }

  /// Reports each claim of `op` that fails at run time and runs `op` only
  /// when none does; otherwise its results are zeros (an insert_slice's
  /// destination, a structured op's inits), so that nothing is read or
  /// written out of bounds.
  LogicalResult check(Operation *op, ErrorSites &sites) {
    OpBuilder b(op);
    Location loc = op->getLoc();
    SmallVector<Claim> found;
    if (::mlir::failed(claims(b, op, found)))
      return failure();
    if (found.empty())
      return success();
    Value noSize = arith::ConstantIntOp::create(b, loc, -1, 64);
    Value ok;
    for (Claim &claim : found) {
      Value holds = arith::CmpIOp::create(
          b, loc,
          claim.atLeast ? arith::CmpIPredicate::sge : arith::CmpIPredicate::eq,
          claim.actual, claim.expected);
      Value fails = arith::XOrIOp::create(
          b, loc, holds, arith::ConstantIntOp::create(b, loc, 1, 1));
      reportIf(b, loc, fails, claim.actual, noSize, sites.add(op, claim.what));
      ok = ok ? arith::AndIOp::create(b, loc, ok, holds).getResult() : holds;
    }
    auto ifOp = scf::IfOp::create(
        b, loc, ok,
        [&](OpBuilder &tb, Location l) {
          Operation *clone = tb.clone(*op);
          SmallVector<Value> results(clone->getResults());
          // A slice, cast, reshape or concat (one operand: its operand) is
          // copied out: a view of its source from one branch and a fresh
          // buffer from the other need a deallocation decided at run time
          // (below). The copy has the sizes of what it copies (a concat's
          // along its dim are the operands' sum).
          if (isa<tensor::ExtractSliceOp, tensor::CastOp, tensor::ReshapeOp,
                  tensor::ConcatOp>(op)) {
            auto type = cast<RankedTensorType>(results[0].getType());
            Value empty = tensor::EmptyOp::create(
                tb, l, type, dynamicSizes(tb, l, type, results[0]));
            results[0] =
                linalg::CopyOp::create(tb, l, results[0], empty).getResult(0);
          }
          scf::YieldOp::create(tb, l, results);
        },
        [&](OpBuilder &eb, Location l) {
          SmallVector<Value> neutral;
          for (OpResult result : op->getResults())
            neutral.push_back(neutralValue(eb, l, op, result));
          scf::YieldOp::create(eb, l, neutral);
        });
    op->replaceAllUsesWith(ifOp.getResults());
    op->erase();
    return success();
  }

  /// Zeros of `type` (dynamic sizes `sizes`); an uninitialized tensor of
  /// an element type without a zero.
  static Value zeros(OpBuilder &b, Location loc, RankedTensorType type,
                     ValueRange sizes) {
    Type element = type.getElementType();
    if (!element.isIntOrIndexOrFloat())
      return tensor::EmptyOp::create(b, loc, type, sizes);
    // Filled, not a splat: a static splat folds into a constant, a global
    // buffer, and an scf.if choosing it or a fresh buffer needs a
    // deallocation decided at run time, which the function-level
    // deallocation pipeline cannot lower.
    Value zero = arith::ConstantOp::create(
        b, loc, cast<TypedAttr>(b.getZeroAttr(element)));
    Value empty = tensor::EmptyOp::create(b, loc, type, sizes);
    return linalg::FillOp::create(b, loc, zero, empty).getResult(0);
  }

  /// What `result` of `op` is when its claims fail.
  static Value neutralValue(OpBuilder &b, Location loc, Operation *op,
                            OpResult result) {
    if (auto insert = dyn_cast<tensor::InsertSliceOp>(op))
      return insert.getDest();
    if (auto linalgOp = dyn_cast<linalg::LinalgOp>(op))
      return linalgOp.getDpsInits()[result.getResultNumber()];
    // A cast, slice, reshape or concat: zeros of its type, dynamic sizes
    // from its first operand (any sizes do: the op did not run, and later
    // checks see the zeros' own).
    auto type = cast<RankedTensorType>(result.getType());
    return zeros(b, loc, type, dynamicSizes(b, loc, type, op->getOperand(0)));
  }
};

} // namespace
