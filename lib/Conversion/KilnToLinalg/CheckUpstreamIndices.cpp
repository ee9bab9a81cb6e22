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
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/Matchers.h"
#include "mlir/Interfaces/FunctionInterfaces.h"
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
      .Case([](memref::AtomicRMWOp x) {
        return Access{x.getMemref(), x.getIndices()};
      })
      .Case([](memref::GenericAtomicRMWOp x) {
        return Access{x.getMemref(), x.getIndices()};
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
      .Case([](bufferization::AllocTensorOp x) { return x.getDynamicSizes(); })
      .Default([](Operation *) { return std::nullopt; });
}

/// Why the vector memory op `op` (constant indices by now) may reach past
/// its buffer, or null: its vector must fit in the buffer's static sizes
/// from its indices on (a masked lane need not be read, but the mask is
/// not known here), except along the dims a transfer op marks as possibly
/// out of bounds, whose lowering masks them.
const char *vectorOutOfBounds(Operation *op) {
  if (isa<vector::GatherOp, vector::ScatterOp>(op))
    return ""; // positions from an index vector
  Value base;
  OperandRange indices = op->getOperands().take_front(0);
  VectorType vector;
  SmallVector<bool> inBounds;
  AffineMap map;
  llvm::TypeSwitch<Operation *>(op)
      .Case<vector::LoadOp, vector::StoreOp, vector::MaskedLoadOp,
            vector::MaskedStoreOp, vector::ExpandLoadOp,
            vector::CompressStoreOp>([&](auto x) {
        base = x.getBase();
        indices = x.getIndices();
        vector = x.getVectorType();
      })
      .Case<vector::TransferReadOp, vector::TransferWriteOp>([&](auto x) {
        base = x.getBase();
        indices = x.getIndices();
        vector = x.getVectorType();
        inBounds = x.getInBoundsValues();
        map = x.getPermutationMap();
      });
  if (!base)
    return nullptr;
  auto type = cast<ShapedType>(base.getType());
  SmallVector<int64_t> positions;
  for (Value index : indices) {
    APInt value;
    if (!matchPattern(index, m_ConstantInt(&value)))
      return "with non-constant indices";
    positions.push_back(value.getSExtValue());
  }
  // The extent the vector takes along each dim of the buffer: its trailing
  // dims, or where a transfer's map sends them.
  SmallVector<int64_t> extent(type.getRank(), 1);
  SmallVector<bool> masked(type.getRank(), false);
  if (map) {
    for (auto [v, expr] : llvm::enumerate(map.getResults())) {
      auto dim = dyn_cast<AffineDimExpr>(expr);
      if (!dim)
        continue; // a broadcast dim reads nothing along the buffer
      extent[dim.getPosition()] = vector.getDimSize(v);
      masked[dim.getPosition()] = !inBounds[v];
    }
  } else {
    int64_t offset = type.getRank() - vector.getRank();
    if (offset < 0)
      return "with a vector of higher rank than its buffer";
    for (int64_t v = 0; v < vector.getRank(); ++v)
      extent[offset + v] = vector.getDimSize(v);
  }
  for (int64_t d = 0; d < type.getRank(); ++d) {
    if (masked[d])
      continue;
    if (type.isDynamicDim(d))
      return "on a dynamic size";
    if (positions[d] < 0 || positions[d] + extent[d] > type.getDimSize(d))
      return "that reaches past its buffer";
  }
  return nullptr;
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
  return vectorOutOfBounds(op);
}

/// The stack that an IR file's memref.alloca ops may take in all: well
/// within the stack of a thread that runs kernels (libomp's workers have 4
/// MiB by default, the main thread 8 MiB). A larger alloca overflowed the
/// stack (SIGSEGV).
constexpr int64_t kMaxStackBytes = int64_t(1) << 20;
constexpr const char *kMaxStackBytesText = "1 MiB";

/// Bytes per element of a memref.alloca, if Kiln knows them (at least 1:
/// an i0 counts as a byte).
std::optional<int64_t> elementBytes(Type type) {
  if (isa<IndexType>(type))
    return 8;
  if (type.isIntOrFloat())
    return std::max(1u, (type.getIntOrFloatBitWidth() + 7) / 8);
  if (auto vector = dyn_cast<VectorType>(type))
    if (!vector.isScalable())
      if (std::optional<int64_t> bytes = elementBytes(vector.getElementType()))
        return *bytes * vector.getNumElements();
  return std::nullopt;
}

/// The op between `alloca` and the function or memref.alloca_scope it
/// belongs to that may run its region more than once -- a loop: every
/// iteration would take more stack -- or null. scf.for carries the
/// AutomaticAllocationScope trait, but its lowering frees nothing per
/// iteration (and canonicalize inlines a memref.alloca_scope in its body,
/// whose lowering would have restored the stack pointer).
Operation *repeatingAncestor(memref::AllocaOp alloca) {
  for (Operation *parent = alloca->getParentOp(); parent;
       parent = parent->getParentOp()) {
    if (isa<memref::AllocaScopeOp, FunctionOpInterface>(parent))
      return nullptr;
    if (!isa<scf::IfOp, scf::IndexSwitchOp, scf::ExecuteRegionOp>(parent))
      return parent;
  }
  return nullptr;
}

struct KilnCheckUpstreamIndicesPass
    : kiln::impl::KilnCheckUpstreamIndicesBase<KilnCheckUpstreamIndicesPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    bool failed = false;
    SmallVector<Operation *> accesses, sized;
    // memref.alloca: the stack taken by those of constant size, and those
    // whose size is known at run time only.
    int64_t stackBytes = 0;
    SmallVector<memref::AllocaOp> dynamicAllocas;
    module.walk([&](Operation *op) {
      auto alloca = dyn_cast<memref::AllocaOp>(op);
      if (alloca) {
        if (Operation *loop = repeatingAncestor(alloca)) {
          op->emitOpError()
              << "inside '" << loop->getName()
              << "' is not supported by Kiln: the stack would grow with "
                 "every iteration; use memref.alloc";
          failed = true;
          return;
        }
        if (!elementBytes(alloca.getType().getElementType())) {
          op->emitOpError()
              << "of elements of type " << alloca.getType().getElementType()
              << " is not supported by Kiln";
          failed = true;
          return;
        }
      }
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
        if (!constant) {
          sized.push_back(op);
          if (alloca)
            dynamicAllocas.push_back(alloca);
          return;
        }
        std::optional<int64_t> count = kiln::getAddressableElementCount(shape);
        if (!count) {
          op->emitOpError()
              << "makes a shape that " << kiln::unaddressableShapeReason(shape);
          failed = true;
        } else if (alloca) {
          int64_t elementSize =
              *elementBytes(alloca.getType().getElementType());
          int64_t bytes = *count > kMaxStackBytes / elementSize
                              ? kMaxStackBytes + 1
                              : *count * elementSize;
          stackBytes = std::min(stackBytes + bytes, kMaxStackBytes + 1);
          if (stackBytes > kMaxStackBytes) {
            op->emitOpError()
                << "takes the stack allocations of the module past Kiln's "
                   "limit of "
                << kMaxStackBytesText << " (" << kMaxStackBytes
                << " bytes; a thread's stack is a few MiB): use memref.alloc";
            failed = true;
          }
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
    // The stack the constant-size allocas leave is shared evenly among
    // the others.
    int64_t stackShare =
        dynamicAllocas.empty()
            ? 0
            : (kMaxStackBytes - stackBytes) / int64_t(dynamicAllocas.size());
    for (Operation *op : sized) {
      int64_t negative = sites.add(op, "negative size {index}");
      int64_t large = sites.add(op, std::string("the shape's nonzero sizes "
                                                "multiply to more than ") +
                                        kiln::kMaxElementsText);
      std::optional<StackLimit> stack;
      if (auto alloca = dyn_cast<memref::AllocaOp>(op)) {
        int64_t bytes = *elementBytes(alloca.getType().getElementType());
        stack = StackLimit{
            stackShare / bytes,
            sites.add(op, "{index} elements of " + std::to_string(bytes) +
                              " bytes on the stack: more than this "
                              "memref.alloca's share (" +
                              std::to_string(stackShare) +
                              " bytes) of Kiln's " + kMaxStackBytesText +
                              " for stack allocations; use memref.alloc")};
      }
      checkSizes(op, negative, large, stack);
    }
    // After the sizes' checks: a guard's bound is the size the op really
    // makes (a reported size is made 0), which its dim folds to.
    for (Operation *op : accesses)
      guard(op, sites.add(op));
    sites.save(module);
  }

  /// A memref.alloca's bound: at most `elements`, else report `site`.
  struct StackLimit {
    int64_t elements;
    int64_t site;
  };

  /// Reports a negative dynamic size of `op` (site `negativeSite`) and makes
  /// it 0; then reports a shape beyond kiln::kMaxElements (`largeSite`),
  /// whose byte size would overflow, or beyond `stack` (a memref.alloca), and
  /// makes every dynamic size 0.
  void checkSizes(Operation *op, int64_t negativeSite, int64_t largeSite,
                  std::optional<StackLimit> stack) {
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
    // Whether a size is 0 (no elements: no stack taken).
    bool staticZero = llvm::is_contained(
        cast<ShapedType>(op->getResult(0).getType()).getShape(), 0);
    Value anyZero = arith::ConstantIntOp::create(b, loc, staticZero, 1);
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
      anyZero = arith::OrIOp::create(b, loc, anyZero, isZero);
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
    if (stack) {
      // `count` is the element count here unless a size is 0 or `tooLarge`
      // (reported above).
      Value overStack = arith::AndIOp::create(
          b, loc,
          arith::XOrIOp::create(b, loc,
                                arith::OrIOp::create(b, loc, tooLarge, anyZero),
                                arith::ConstantIntOp::create(b, loc, 1, 1)),
          arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ugt, count,
                                constant(stack->elements)));
      reportIf(b, loc, overStack, count, noSize, stack->site);
      tooLarge = arith::OrIOp::create(b, loc, tooLarge, overStack);
    }
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
