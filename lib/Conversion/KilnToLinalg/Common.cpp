//===- Common.cpp - Shared helpers of the kiln lowering -------------------===//
//
// Small builders the kernels of convert-kiln-to-linalg share: typed constants
// and empty tensors, unit dims, linearized positions, buffers of runtime calls.
// See Passes.td (convert-kiln-to-linalg) for the overview.
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
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/raw_ostream.h"

#include <limits>
#include <numeric>

namespace kiln::lowering {

std::string dimList(ArrayRef<int64_t> dims) {
  std::string text = "[";
  for (auto [i, d] : llvm::enumerate(dims))
    text += (i ? ", " : "") + std::to_string(d);
  return text + "]";
}

std::string typeText(Type type) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << type;
  return text;
}

RankedTensorType tensorType(Value value) {
  return cast<RankedTensorType>(value.getType());
}

Value i64Constant(OpBuilder &b, Location loc, int64_t value) {
  return arith::ConstantIntOp::create(b, loc, value, 64);
}

Value emptyTensor(OpBuilder &b, Location loc, Type type) {
  auto ranked = cast<RankedTensorType>(type);
  return tensor::EmptyOp::create(b, loc, ranked.getShape(),
                                 ranked.getElementType());
}

SmallVector<Value> emptyTensors(OpBuilder &b, Location loc, TypeRange types) {
  return llvm::map_to_vector(
      types, [&](Type type) { return emptyTensor(b, loc, type); });
}

Value filledTensor(OpBuilder &b, Location loc, RankedTensorType type,
                   TypedAttr value) {
  Value empty = emptyTensor(b, loc, type);
  Value scalar = arith::ConstantOp::create(b, loc, value);
  return linalg::FillOp::create(b, loc, ValueRange{scalar}, ValueRange{empty})
      .getResult(0);
}

TypedAttr extremeAttr(Builder &b, Type type, bool lowest) {
  if (auto floatType = dyn_cast<FloatType>(type))
    return b.getFloatAttr(
        floatType, APFloat::getInf(floatType.getFloatSemantics(), lowest));
  unsigned width = type.getIntOrFloatBitWidth();
  return b.getIntegerAttr(type, lowest ? APInt::getSignedMinValue(width)
                                       : APInt::getSignedMaxValue(width));
}

Value reshapeTo(OpBuilder &b, Location loc, Value value,
                RankedTensorType type) {
  if (value.getType() == type)
    return value;
  auto shapeType = RankedTensorType::get({type.getRank()}, b.getIndexType());
  SmallVector<APInt> sizes;
  for (int64_t size : type.getShape())
    sizes.push_back(APInt(64, size));
  Value shape = arith::ConstantOp::create(
      b, loc, DenseIntElementsAttr::get(shapeType, sizes));
  return tensor::ReshapeOp::create(b, loc, type, value, shape);
}

AffineMap broadcastMap(RankedTensorType operandType,
                       RankedTensorType resultType, MLIRContext *ctx) {
  int64_t offset = resultType.getRank() - operandType.getRank();
  SmallVector<AffineExpr> exprs;
  for (int64_t d = 0; d < operandType.getRank(); ++d) {
    if (operandType.getDimSize(d) == 1 &&
        resultType.getDimSize(offset + d) != 1)
      exprs.push_back(getAffineConstantExpr(0, ctx));
    else
      exprs.push_back(getAffineDimExpr(offset + d, ctx));
  }
  return AffineMap::get(resultType.getRank(), 0, exprs, ctx);
}

/// The module of `b`'s insertion point.
static ModuleOp enclosingModule(OpBuilder &b) {
  Operation *parent = b.getInsertionBlock()->getParentOp();
  return isa<ModuleOp>(parent) ? cast<ModuleOp>(parent)
                               : parent->getParentOfType<ModuleOp>();
}

bool isGpuTarget(OpBuilder &b) {
  ModuleOp module = enclosingModule(b);
  auto target = module ? module->getAttrOfType<StringAttr>(kTargetAttrName)
                       : StringAttr();
  return target && target.getValue() == "cuda";
}

int64_t cpuVectorBits(OpBuilder &b) {
  ModuleOp module = enclosingModule(b);
  auto bits = module ? module->getAttrOfType<IntegerAttr>(kVectorBitsAttrName)
                     : IntegerAttr();
  return bits ? bits.getInt() : 512;
}

func::FuncOp getOrDeclareRuntimeFunc(Operation *anchor, StringRef name,
                                     FunctionType type, OpBuilder &rewriter,
                                     bool cInterface) {
  auto module = anchor->getParentOfType<ModuleOp>();
  if (auto existing = module.lookupSymbol<func::FuncOp>(name))
    return existing;
  OpBuilder::InsertionGuard guard(rewriter);
  rewriter.setInsertionPointToStart(module.getBody());
  auto func = func::FuncOp::create(rewriter, module.getLoc(), name, type);
  func.setPrivate();
  if (cInterface)
    func->setAttr("llvm.emit_c_interface", rewriter.getUnitAttr());
  return func;
}

Value readOnlyBuffer(OpBuilder &b, Location loc, Value tensor) {
  RankedTensorType type = tensorType(tensor);
  return bufferization::ToBufferOp::create(
      b, loc, MemRefType::get(type.getShape(), type.getElementType()), tensor,
      /*readOnly=*/b.getUnitAttr());
}

Value readOnlyStridedBuffer(OpBuilder &b, Location loc, Value tensor) {
  RankedTensorType type = tensorType(tensor);
  auto layout = StridedLayoutAttr::get(
      b.getContext(), ShapedType::kDynamic,
      SmallVector<int64_t>(type.getRank(), ShapedType::kDynamic));
  return bufferization::ToBufferOp::create(
      b, loc, MemRefType::get(type.getShape(), type.getElementType(), layout),
      tensor, /*readOnly=*/b.getUnitAttr());
}

Value linearize(OpBuilder &b, Location loc, ValueRange indices,
                ArrayRef<int64_t> shape) {
  Value flat = indexConstant(b, loc, 0);
  for (auto [index, size] : llvm::zip_equal(indices, shape)) {
    flat = arith::MulIOp::create(b, loc, flat, indexConstant(b, loc, size));
    flat = arith::AddIOp::create(b, loc, flat, index);
  }
  return flat;
}

SmallVector<Value> loopIndices(OpBuilder &b, Location loc, int64_t rank) {
  SmallVector<Value> indices;
  for (int64_t d = 0; d < rank; ++d)
    indices.push_back(linalg::IndexOp::create(b, loc, d));
  return indices;
}

SmallVector<utils::IteratorType> parallelIterators(int64_t rank) {
  return SmallVector<utils::IteratorType>(rank, utils::IteratorType::parallel);
}

bool hasUnitDims(RankedTensorType type) {
  return type.getRank() > 1 && llvm::is_contained(type.getShape(), 1);
}

SmallVector<ReassociationIndices> expansionGroups(ArrayRef<int64_t> from,
                                                  ArrayRef<int64_t> to) {
  SmallVector<ReassociationIndices> groups;
  int64_t j = 0, rank = to.size();
  for (int64_t size : from) {
    // (An empty dim takes dims up to an empty one: [0, 5] into [1, 0, 5].)
    ReassociationIndices group;
    for (int64_t product = 1;
         (size == 0 ? product != 0 : product < size) && j < rank; ++j) {
      group.push_back(j);
      product *= to[j];
    }
    groups.push_back(group);
  }
  for (; j < rank && !groups.empty(); ++j)
    groups.back().push_back(j);
  return groups;
}

namespace {

/// `shape` without its unit dims.
SmallVector<int64_t> withoutUnitDims(ArrayRef<int64_t> shape) {
  SmallVector<int64_t> sizes;
  for (int64_t size : shape)
    if (size != 1)
      sizes.push_back(size);
  return sizes;
}

} // namespace

Value expandUnitDims(OpBuilder &b, Location loc, Value value,
                     RankedTensorType type) {
  if (value.getType() == type)
    return value;
  return tensor::ExpandShapeOp::create(
      b, loc, type, value,
      expansionGroups(withoutUnitDims(type.getShape()), type.getShape()));
}

Value collapseUnitDims(OpBuilder &b, Location loc, Value value) {
  auto type = cast<RankedTensorType>(value.getType());
  SmallVector<int64_t> shape = withoutUnitDims(type.getShape());
  if (static_cast<int64_t>(shape.size()) == type.getRank())
    return value;
  return tensor::CollapseShapeOp::create(
      b, loc, RankedTensorType::get(shape, type.getElementType()), value,
      expansionGroups(shape, type.getShape()));
}

Value flatten(OpBuilder &b, Location loc, Value value) {
  auto type = cast<RankedTensorType>(value.getType());
  if (type.getRank() == 1)
    return value;
  SmallVector<ReassociationIndices> all(1);
  for (int64_t d = 0; d < type.getRank(); ++d)
    all[0].push_back(d);
  return tensor::CollapseShapeOp::create(b, loc, value, all);
}

Value unflatten(OpBuilder &b, Location loc, Value value,
                RankedTensorType type) {
  if (type.getRank() == 1)
    return value;
  SmallVector<ReassociationIndices> all(1);
  for (int64_t d = 0; d < type.getRank(); ++d)
    all[0].push_back(d);
  return tensor::ExpandShapeOp::create(b, loc, type, value, all);
}

void fillBuffer(OpBuilder &b, Location loc, Value buffer, Value length,
                int64_t size, Value pad,
                function_ref<Value(OpBuilder &, Location, Value p)> value) {
  Value zero = arith::ConstantIndexOp::create(b, loc, 0);
  Value one = arith::ConstantIndexOp::create(b, loc, 1);
  scf::ForOp::create(b, loc, zero, length, one, ValueRange{},
                     [&](OpBuilder &nb, Location l, Value p, ValueRange) {
                       memref::StoreOp::create(nb, l, value(nb, l, p), buffer,
                                               ValueRange{p});
                       scf::YieldOp::create(nb, l);
                     });
  scf::ForOp::create(
      b, loc, length, arith::ConstantIndexOp::create(b, loc, size), one,
      ValueRange{}, [&](OpBuilder &nb, Location l, Value p, ValueRange) {
        memref::StoreOp::create(nb, l, pad, buffer, ValueRange{p});
        scf::YieldOp::create(nb, l);
      });
}

SmallVector<Value> delinearizeIndex(OpBuilder &b, Location loc, Value linear,
                                    ArrayRef<int64_t> sizes) {
  SmallVector<Value> positions(sizes.size());
  for (int64_t i = sizes.size() - 1; i > 0; --i) {
    Value size = indexConstant(b, loc, sizes[i]);
    Value quotient = arith::DivUIOp::create(b, loc, linear, size);
    positions[i] = arith::SubIOp::create(
        b, loc, linear, arith::MulIOp::create(b, loc, quotient, size));
    linear = quotient;
  }
  positions[0] = linear;
  return positions;
}

namespace {

/// Matches `index` as the position along a dim of `size` that
/// delinearizeIndex computes from `linear` (linear - (linear / size) *
/// size) and returns that quotient, linear / size.
static Value matchDelinearized(Value index, int64_t size, Value &linear) {
  auto sub = index.getDefiningOp<arith::SubIOp>();
  if (!sub)
    return Value();
  auto mul = sub.getRhs().getDefiningOp<arith::MulIOp>();
  if (!mul)
    return Value();
  auto div = mul.getLhs().getDefiningOp<arith::DivUIOp>();
  if (!div || div.getLhs() != sub.getLhs())
    return Value();
  std::optional<int64_t> byDiv = getConstantIntValue(div.getRhs()),
                         byMul = getConstantIntValue(mul.getRhs());
  if (byDiv != size || byMul != size)
    return Value();
  linear = sub.getLhs();
  return div.getResult();
}

} // namespace

LogicalResult readDelinearizedAsCollapsed(tensor::ExtractOp op,
                                          RewriterBase &rewriter) {
  Value tensor = op.getTensor();
  auto type = cast<RankedTensorType>(tensor.getType());
  if (!type.hasStaticShape())
    return failure();
  // Stored: a function argument or a value of the function's body.
  Block *owner = isa<BlockArgument>(tensor)
                     ? cast<BlockArgument>(tensor).getOwner()
                     : tensor.getDefiningOp()->getBlock();
  if (!isa_and_nonnull<func::FuncOp>(owner->getParentOp()))
    return failure();
  // Groups of dims, innermost first: [k, m] read at one linear position.
  SmallVector<Value> indices(op.getIndices());
  int64_t rank = type.getRank();
  SmallVector<ReassociationIndices> groups;
  SmallVector<Value> newIndices;
  bool collapses = false;
  for (int64_t m = rank - 1; m >= 0;) {
    Value linear, quotient;
    Value q = matchDelinearized(indices[m], type.getDimSize(m), linear);
    int64_t k = m;
    Value start = linear;
    // The quotient is the next outer dim's position, itself split again
    // or taken whole.
    while (q && k > 0) {
      if (indices[k - 1] == q) {
        --k;
        quotient = q;
        break;
      }
      Value inner;
      Value next =
          matchDelinearized(indices[k - 1], type.getDimSize(k - 1), inner);
      if (!next || inner != q)
        break;
      --k;
      q = next;
    }
    if (!quotient) {
      groups.push_back({m});
      newIndices.push_back(indices[m]);
      --m;
      continue;
    }
    ReassociationIndices group;
    for (int64_t d = k; d <= m; ++d)
      group.push_back(d);
    groups.push_back(group);
    newIndices.push_back(start);
    collapses = true;
    m = k - 1;
  }
  if (!collapses)
    return failure();
  std::reverse(groups.begin(), groups.end());
  std::reverse(newIndices.begin(), newIndices.end());
  SmallVector<int64_t> shape;
  for (const ReassociationIndices &group : groups) {
    int64_t size = 1;
    for (int64_t d : group)
      size *= type.getDimSize(d);
    shape.push_back(size);
  }
  // One view per tensor and grouping, shared by its reads.
  auto collapsedType = RankedTensorType::get(shape, type.getElementType());
  Value collapsed;
  for (Operation *user : tensor.getUsers())
    if (auto view = dyn_cast<tensor::CollapseShapeOp>(user);
        view && view.getType() == collapsedType &&
        view.getReassociationIndices() == groups && view->getBlock() == owner)
      collapsed = view.getResult();
  if (!collapsed) {
    OpBuilder::InsertionGuard guard(rewriter);
    rewriter.setInsertionPointAfterValue(tensor);
    collapsed = tensor::CollapseShapeOp::create(rewriter, op.getLoc(),
                                                collapsedType, tensor, groups);
  }
  rewriter.replaceOpWithNewOp<tensor::ExtractOp>(op, collapsed, newIndices);
  return success();
}

scf::ForallOp createGridForall(OpBuilder &b, Location loc,
                               ArrayRef<int64_t> grid, ValueRange shared,
                               SmallVector<Value> &coords) {
  auto forall = scf::ForallOp::create(
      b, loc,
      ArrayRef<OpFoldResult>{b.getIndexAttr(ShapedType::getNumElements(grid))},
      shared, /*mapping=*/std::nullopt);
  b.setInsertionPointToStart(forall.getBody());
  coords = delinearize(b, loc, forall.getInductionVars()[0], grid);
  return forall;
}

void writeForallSlices(
    OpBuilder &b, Location loc, scf::ForallOp forall, Value offset,
    Value length,
    function_ref<SmallVector<Value>(OpBuilder &, Location, Value p)> element) {
  OpBuilder::InsertionGuard guard(b);
  SmallVector<Value> slices;
  for (Value shared : forall.getRegionIterArgs())
    slices.push_back(tensor::ExtractSliceOp::create(
        b, loc,
        RankedTensorType::get({ShapedType::kDynamic},
                              tensorType(shared).getElementType()),
        shared, ArrayRef<OpFoldResult>{offset}, ArrayRef<OpFoldResult>{length},
        ArrayRef<OpFoldResult>{b.getIndexAttr(1)}));
  AffineMap identity = AffineMap::getMultiDimIdentityMap(1, b.getContext());
  auto generic = linalg::GenericOp::create(
      b, loc, TypeRange(ValueRange(slices)), ValueRange{}, slices,
      SmallVector<AffineMap>(slices.size(), identity), parallelIterators(1),
      [&](OpBuilder &nb, Location l, ValueRange) {
        linalg::YieldOp::create(
            nb, l, element(nb, l, linalg::IndexOp::create(nb, l, 0)));
      });
  b.setInsertionPointToStart(forall.getTerminator().getBody());
  for (auto [slice, shared] :
       llvm::zip_equal(generic.getResults(), forall.getRegionIterArgs()))
    tensor::ParallelInsertSliceOp::create(
        b, loc, slice, shared, ArrayRef<OpFoldResult>{offset},
        ArrayRef<OpFoldResult>{length},
        ArrayRef<OpFoldResult>{b.getIndexAttr(1)});
}

Value asUnrankedBuffer(OpBuilder &b, Location loc, Value tensor) {
  return memref::CastOp::create(
      b, loc, UnrankedMemRefType::get(tensorType(tensor).getElementType(), 0),
      readOnlyBuffer(b, loc, tensor));
}

std::pair<Value, Value> allocOutput(OpBuilder &b, Location loc,
                                    RankedTensorType type) {
  auto memrefType = MemRefType::get(type.getShape(), type.getElementType());
  Value buffer = memref::AllocOp::create(b, loc, memrefType);
  Value unranked = memref::CastOp::create(
      b, loc, UnrankedMemRefType::get(type.getElementType(), 0), buffer);
  return {buffer, unranked};
}

Value asTensor(OpBuilder &b, Location loc, Value buffer,
               RankedTensorType type) {
  return bufferization::ToTensorOp::create(b, loc, type, buffer,
                                           /*restrict=*/true,
                                           /*writable=*/true);
}

Value buildIndexedGeneric(
    OpBuilder &b, Location loc, RankedTensorType resultType,
    function_ref<Value(OpBuilder &, Location, ValueRange)> body) {
  Value init = emptyTensor(b, loc, resultType);
  int64_t rank = resultType.getRank();
  auto generic = linalg::GenericOp::create(
      b, loc, TypeRange{resultType}, ValueRange{}, ValueRange{init},
      SmallVector<AffineMap>{
          AffineMap::getMultiDimIdentityMap(rank, b.getContext())},
      parallelIterators(rank), [&](OpBuilder &nb, Location l, ValueRange) {
        linalg::YieldOp::create(nb, l, body(nb, l, loopIndices(nb, l, rank)));
      });
  return generic.getResult(0);
}

} // namespace kiln::lowering
