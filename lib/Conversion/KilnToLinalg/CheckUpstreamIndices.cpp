//===- CheckUpstreamIndices.cpp - Runtime checks for upstream indexing ----===//
//
// tensor.extract/insert and memref.load/store written in IR files get the
// runtime index checks kiln's indexing ops have (see Passes.td); upstream
// ops that address memory through positions that are not checked are
// errors.
//
//===----------------------------------------------------------------------===//

#include "../ErrorSites.h"
#include "kiln/Conversion/Passes.h"
#include "kiln/Dialect/Kiln/IR/KilnOps.h"
#include "kiln/Support/ShapeLimits.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/Matchers.h"
#include "mlir/Interfaces/ViewLikeInterface.h"
#include "llvm/ADT/TypeSwitch.h"

namespace kiln {
#define GEN_PASS_DEF_KILNCHECKUPSTREAMINDICES
#include "kiln/Conversion/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using kiln::conversion::ErrorSites;
using kiln::conversion::reportIf;

namespace {

/// An element access: the tensor or memref it addresses and its indices.
struct Access {
  Value shaped;
  OperandRange indices;
};

std::optional<Access> getAccess(Operation *op) {
  return llvm::TypeSwitch<Operation *, std::optional<Access>>(op)
      .Case([](tensor::ExtractOp x) {
        return Access{x.getTensor(), x.getIndices()};
      })
      .Case([](tensor::InsertOp x) {
        return Access{x.getDest(), x.getIndices()};
      })
      .Case([](memref::LoadOp x) {
        return Access{x.getMemRef(), x.getIndices()};
      })
      .Case([](memref::StoreOp x) {
        return Access{x.getMemRef(), x.getIndices()};
      })
      .Default([](Operation *) { return std::nullopt; });
}

bool isConstant(Value value) { return matchPattern(value, m_Constant()); }

/// The dynamic sizes of an op that makes a tensor or buffer.
std::optional<OperandRange> getDynamicSizes(Operation *op) {
  return llvm::TypeSwitch<Operation *, std::optional<OperandRange>>(op)
      .Case([](tensor::EmptyOp x) { return x.getDynamicSizes(); })
      .Case([](tensor::SplatOp x) { return x.getDynamicSizes(); })
      .Case([](tensor::GenerateOp x) { return x.getDynamicExtents(); })
      .Case([](memref::AllocOp x) { return x.getDynamicSizes(); })
      .Case([](memref::AllocaOp x) { return x.getDynamicSizes(); })
      .Default([](Operation *) { return std::nullopt; });
}

/// Why `op` addresses memory through positions no check covers, or null.
const char *uncheckedPositions(Operation *op) {
  if (auto view = dyn_cast<OffsetSizeAndStrideOpInterface>(op)) {
    if (!view.getOffsets().empty() || !view.getSizes().empty() ||
        !view.getStrides().empty())
      return "with dynamic offsets, sizes or strides";
    return nullptr;
  }
  if (auto dim = dyn_cast<tensor::DimOp>(op))
    return isConstant(dim.getIndex()) ? nullptr : "of a non-constant dim";
  if (auto dim = dyn_cast<memref::DimOp>(op))
    return isConstant(dim.getIndex()) ? nullptr : "of a non-constant dim";
  if (isa<tensor::GatherOp, tensor::ScatterOp>(op))
    return "";
  // Sizes that must agree with other sizes at run time.
  if (auto pad = dyn_cast<tensor::PadOp>(op))
    return pad.getLow().empty() && pad.getHigh().empty()
               ? nullptr
               : "with dynamic padding";
  if (auto expand = dyn_cast<tensor::ExpandShapeOp>(op))
    return expand.getOutputShape().empty() ? nullptr
                                           : "with a dynamic output shape";
  if (auto reshape = dyn_cast<tensor::ReshapeOp>(op))
    return reshape.getResult().getType().hasStaticShape()
               ? nullptr
               : "with a dynamic result shape";
  if (op->getDialect() && isa<vector::VectorDialect>(op->getDialect()) &&
      llvm::any_of(op->getOperands(),
                   [](Value operand) {
                     return isa<IndexType>(operand.getType()) &&
                            !isConstant(operand);
                   }) &&
      llvm::any_of(op->getOperandTypes(), [](Type type) {
        return isa<MemRefType, RankedTensorType>(type);
      }))
    return "with non-constant indices";
  return nullptr;
}

struct KilnCheckUpstreamIndicesPass
    : kiln::impl::KilnCheckUpstreamIndicesBase<KilnCheckUpstreamIndicesPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    bool failed = false;
    SmallVector<Operation *> accesses, sized;
    module.walk([&](Operation *op) {
      if (std::optional<OperandRange> sizes = getDynamicSizes(op)) {
        // Constant sizes are checked here, the others at run time.
        auto type = cast<ShapedType>(op->getResult(0).getType());
        SmallVector<int64_t> shape(type.getShape());
        auto next = sizes->begin();
        bool constant = true;
        for (int64_t &size : shape) {
          if (!ShapedType::isDynamic(size))
            continue;
          APInt value;
          if (!matchPattern(*next++, m_ConstantInt(&value))) {
            constant = false;
            continue;
          }
          size = value.getSExtValue();
          if (size < 0) {
            op->emitOpError() << "has a negative size (" << size << ")";
            failed = true;
            return;
          }
        }
        if (!constant)
          sized.push_back(op);
        else if (!kiln::isAddressableShape(shape)) {
          op->emitOpError()
              << "makes a shape that " << kiln::unaddressableShapeReason(shape);
          failed = true;
        }
        return;
      }
      if (const char *why = uncheckedPositions(op)) {
        op->emitOpError() << (*why ? why : "") << (*why ? " " : "")
                          << "is not supported by Kiln: its positions are "
                             "not bounds-checked at run time";
        failed = true;
        return;
      }
      std::optional<Access> access = getAccess(op);
      if (!access)
        return;
      auto type = cast<ShapedType>(access->shaped.getType());
      if (!isa<IntegerType, FloatType, IndexType>(type.getElementType())) {
        op->emitOpError() << "on elements of type " << type.getElementType()
                          << " is not supported by Kiln";
        failed = true;
        return;
      }
      bool checked = false;
      for (auto [dim, index] : llvm::enumerate(access->indices)) {
        APInt value;
        if (!matchPattern(index, m_ConstantInt(&value))) {
          checked = true;
          continue;
        }
        int64_t position = value.getSExtValue();
        if (type.isDynamicDim(dim)) {
          checked = true;
          continue;
        }
        if (position < 0 || position >= type.getDimSize(dim)) {
          op->emitOpError()
              << "index " << position << " is out of bounds for dim " << dim
              << " of size " << type.getDimSize(dim);
          failed = true;
        }
      }
      if (checked)
        accesses.push_back(op);
    });
    if (failed)
      return signalPassFailure();
    if (accesses.empty() && sized.empty())
      return;

    ErrorSites sites = ErrorSites::load(module);
    for (Operation *op : accesses)
      guard(op, sites.add(op));
    for (Operation *op : sized) {
      int64_t negative = sites.add(op, "negative size {index}");
      checkSizes(op, negative,
                 sites.add(op, std::string("the shape's nonzero sizes "
                                           "multiply to more than ") +
                                   kiln::kMaxElementsText));
    }
    sites.save(module);
  }

  /// Reports a negative dynamic size of `op` (site `negativeSite`) and makes
  /// it 0; then reports a shape beyond kiln::kMaxElements (`largeSite`),
  /// whose byte size would overflow, and makes every dynamic size 0.
  void checkSizes(Operation *op, int64_t negativeSite, int64_t largeSite) {
    Location loc = op->getLoc();
    OpBuilder b(op);
    // Not an index: the site's text is the message.
    Value noSize = arith::ConstantIntOp::create(b, loc, -1, 64);
    auto constant = [&](int64_t value) {
      return arith::ConstantIndexOp::create(b, loc, value);
    };
    Value zero = constant(0), one = constant(1);
    // The static sizes' product (bounded by kiln-check-shapes), then each
    // dynamic size's; `tooLarge` sticks once the limit is passed.
    int64_t staticCount = 1;
    for (int64_t size : cast<ShapedType>(op->getResult(0).getType()).getShape())
      if (!ShapedType::isDynamic(size) && size != 0)
        staticCount *= size;
    Value count = constant(staticCount);
    Value tooLarge = arith::ConstantIntOp::create(b, loc, 0, 1);
    // The size operands themselves (an equal value may also be another
    // operand, e.g. a symbol of memref.alloc).
    OperandRange dynamicSizes = *getDynamicSizes(op);
    MutableArrayRef<OpOperand> sizes = op->getOpOperands().slice(
        dynamicSizes.getBeginOperandIndex(), dynamicSizes.size());
    for (OpOperand &operand : sizes) {
      Value size = operand.get();
      Value negative =
          arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, size, zero);
      reportIf(b, loc, negative, size, noSize, negativeSite);
      size = arith::SelectOp::create(b, loc, negative, zero, size);
      Value isZero =
          arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, size, zero);
      Value factor = arith::SelectOp::create(b, loc, isZero, one, size);
      Value limit =
          arith::DivUIOp::create(b, loc, constant(kiln::kMaxElements), factor);
      tooLarge = arith::OrIOp::create(
          b, loc, tooLarge,
          arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ugt, count,
                                limit));
      count = arith::SelectOp::create(
          b, loc, tooLarge, one, arith::MulIOp::create(b, loc, count, factor));
      operand.set(size);
    }
    reportIf(b, loc, tooLarge, zero, noSize, largeSite);
    for (OpOperand &operand : sizes)
      operand.set(
          arith::SelectOp::create(b, loc, tooLarge, zero, operand.get()));
  }

  /// Runs `op` only when every index is in range; otherwise reports the
  /// first bad one and yields a neutral result.
  void guard(Operation *op, int64_t site) {
    Access access = *getAccess(op);
    Location loc = op->getLoc();
    OpBuilder b(op);
    auto type = cast<ShapedType>(access.shaped.getType());
    SmallVector<Value> indices(access.indices), sizes, inRange;
    for (auto [dim, index] : llvm::enumerate(indices)) {
      Value size;
      if (!type.isDynamicDim(dim))
        size = arith::ConstantIndexOp::create(b, loc, type.getDimSize(dim));
      else if (isa<MemRefType>(type))
        size = b.createOrFold<memref::DimOp>(loc, access.shaped, dim);
      else
        size = b.createOrFold<tensor::DimOp>(loc, access.shaped, dim);
      sizes.push_back(size);
      // Unsigned: a negative index is out of range too.
      inRange.push_back(arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult,
                                              index, size));
    }
    Value ok = inRange.front();
    for (Value next : llvm::drop_begin(inRange))
      ok = arith::AndIOp::create(b, loc, ok, next);

    auto elseBranch = [&](OpBuilder &eb, Location l) {
      for (size_t dim = 0; dim < indices.size(); ++dim) {
        Value bad = arith::XOrIOp::create(
            eb, l, inRange[dim], arith::ConstantIntOp::create(eb, l, 1, 1));
        reportIf(eb, l, bad, indices[dim], sizes[dim], site);
      }
      SmallVector<Value> results;
      if (auto insert = dyn_cast<tensor::InsertOp>(op))
        results.push_back(insert.getDest());
      else if (op->getNumResults() == 1) {
        Type element = op->getResult(0).getType();
        results.push_back(arith::ConstantOp::create(
            eb, l, cast<TypedAttr>(eb.getZeroAttr(element))));
      }
      scf::YieldOp::create(eb, l, results);
    };
    auto thenBranch = [&](OpBuilder &tb, Location l) {
      Operation *clone = tb.clone(*op);
      scf::YieldOp::create(tb, l, clone->getResults());
    };
    auto ifOp = scf::IfOp::create(b, loc, ok, thenBranch, elseBranch);
    op->replaceAllUsesWith(ifOp.getResults());
    op->erase();
  }
};

} // namespace
