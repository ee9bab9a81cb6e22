//===- KilnShapeInference.cpp - Shape rules of kiln ops -------------------===//

#include "kiln/Dialect/Kiln/IR/KilnShapeInference.h"
#include "kiln/Dialect/Kiln/IR/KilnTraits.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace kiln;

std::optional<int64_t> kiln::normalizeDim(int64_t dim, int64_t rank) {
  int64_t extent = std::max<int64_t>(rank, 1);
  if (dim < -extent || dim >= extent)
    return std::nullopt;
  return dim < 0 ? dim + extent : dim;
}

std::optional<SmallVector<int64_t>>
kiln::broadcastShapes(ArrayRef<int64_t> lhs, ArrayRef<int64_t> rhs) {
  size_t rank = std::max(lhs.size(), rhs.size());
  SmallVector<int64_t> result(rank);
  for (size_t i = 0; i < rank; ++i) {
    int64_t l = i < lhs.size() ? lhs[lhs.size() - 1 - i] : 1;
    int64_t r = i < rhs.size() ? rhs[rhs.size() - 1 - i] : 1;
    if (l != r && l != 1 && r != 1)
      return std::nullopt;
    result[rank - 1 - i] = l == 1 ? r : l;
  }
  return result;
}

bool kiln::isExpandableTo(ArrayRef<int64_t> from, ArrayRef<int64_t> to) {
  if (from.size() > to.size())
    return false;
  size_t offset = to.size() - from.size();
  for (auto [i, size] : llvm::enumerate(from))
    if (size != 1 && size != to[offset + i])
      return false;
  return true;
}

SmallVector<int64_t> kiln::reduceShape(ArrayRef<int64_t> shape,
                                       ArrayRef<bool> reduced, bool keepDim) {
  SmallVector<int64_t> result;
  for (auto [size, isReduced] : llvm::zip_equal(shape, reduced)) {
    if (!isReduced)
      result.push_back(size);
    else if (keepDim)
      result.push_back(1);
  }
  return result;
}

SmallVector<bool>
kiln::getReducedDimsMask(RankedTensorType type,
                         std::optional<ArrayRef<int64_t>> dims) {
  int64_t rank = type.getRank();
  SmallVector<bool> mask(rank, !dims || dims->empty());
  if (dims && rank > 0)
    for (int64_t dim : *dims)
      mask[*normalizeDim(dim, rank)] = true;
  return mask;
}

int64_t kiln::getReducedCount(RankedTensorType type, ArrayRef<bool> mask) {
  int64_t count = 1;
  for (auto [size, reduced] : llvm::zip_equal(type.getShape(), mask))
    if (reduced)
      count *= size;
  return count;
}

int64_t kiln::getNumElements(ArrayRef<int64_t> shape) {
  int64_t count = 1;
  for (int64_t size : shape)
    count *= size;
  return count;
}

std::string kiln::inference::formatNumber(double value) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << llvm::format("%g", value);
  return text;
}

std::string kiln::formatShape(ArrayRef<int64_t> shape) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << '[';
  llvm::interleaveComma(shape, os);
  os << ']';
  return text;
}

//===----------------------------------------------------------------------===//
// OpDiagnostic
//===----------------------------------------------------------------------===//

using inference::OpDiagnostic;

FailureOr<RankedTensorType> OpDiagnostic::tensor(Value value,
                                                 StringRef what) const {
  auto type = dyn_cast<RankedTensorType>(value.getType());
  if (!type || !type.hasStaticShape())
    return (*this)(what, " must be a statically shaped tensor, got ",
                   value.getType());
  if (!kiln::isAddressableShape(type.getShape()))
    return (*this)(what, " type ", type, " ",
                   kiln::unaddressableShapeReason(type.getShape()));
  return type;
}

FailureOr<int64_t> OpDiagnostic::dim(int64_t dim, int64_t rank,
                                     StringRef what) const {
  if (std::optional<int64_t> normalized = normalizeDim(dim, rank))
    return *normalized;
  int64_t extent = std::max<int64_t>(rank, 1);
  return (*this)(what, " ", dim, " is out of range for a rank-", rank,
                 " operand (expected to be in [", -extent, ", ", extent - 1,
                 "])");
}

//===----------------------------------------------------------------------===//
// Family inference functions
//===----------------------------------------------------------------------===//

LogicalResult inference::inferBroadcastTypes(std::optional<Location> loc,
                                             StringRef opName, Value lhs,
                                             Value rhs, bool maskResult,
                                             SmallVectorImpl<Type> &types) {
  OpDiagnostic diag(loc, opName);
  FailureOr<RankedTensorType> lhsType = diag.tensor(lhs, "lhs");
  FailureOr<RankedTensorType> rhsType = diag.tensor(rhs, "rhs");
  if (failed(lhsType) || failed(rhsType))
    return failure();
  if (lhsType->getElementType() != rhsType->getElementType())
    return diag("operands must have the same element type, got ",
                lhsType->getElementType(), " and ", rhsType->getElementType());
  std::optional<SmallVector<int64_t>> shape =
      broadcastShapes(lhsType->getShape(), rhsType->getShape());
  if (!shape)
    return diag("operand shapes ", formatShape(lhsType->getShape()), " and ",
                formatShape(rhsType->getShape()),
                " are not broadcast-compatible");
  Type elementType = maskResult ? IntegerType::get(lhs.getContext(), 1)
                                : lhsType->getElementType();
  types.push_back(RankedTensorType::get(*shape, elementType));
  return success();
}

LogicalResult inference::inferDimsReductionTypes(
    std::optional<Location> loc, StringRef opName, Value input,
    std::optional<ArrayRef<int64_t>> dims, bool keepDim, bool hasIdentity,
    SmallVectorImpl<Type> &types) {
  OpDiagnostic diag(loc, opName);
  FailureOr<RankedTensorType> type = diag.tensor(input, "input");
  if (failed(type))
    return failure();
  int64_t rank = type->getRank();
  SmallVector<bool> reduced(rank, !dims || dims->empty());
  if (dims && !dims->empty()) {
    SmallVector<bool> seen(std::max<int64_t>(rank, 1), false);
    for (int64_t dim : *dims) {
      FailureOr<int64_t> normalized = diag.dim(dim, rank);
      if (failed(normalized))
        return failure();
      if (seen[*normalized])
        return diag("dim ", dim, " appears more than once in dims");
      seen[*normalized] = true;
      if (rank > 0)
        reduced[*normalized] = true;
    }
  }
  if (!hasIdentity) {
    for (auto [i, isReduced] : llvm::enumerate(reduced))
      if (isReduced && type->getDimSize(i) == 0)
        return diag("cannot reduce dim ", i,
                    " of size 0: the reduction has no identity");
  }
  types.push_back(RankedTensorType::get(
      reduceShape(type->getShape(), reduced, keepDim), type->getElementType()));
  return success();
}

LogicalResult inference::inferDimReductionTypes(std::optional<Location> loc,
                                                StringRef opName, Value input,
                                                std::optional<int64_t> dim,
                                                bool keepDim, bool indicesOnly,
                                                SmallVectorImpl<Type> &types) {
  OpDiagnostic diag(loc, opName);
  FailureOr<RankedTensorType> type = diag.tensor(input, "input");
  if (failed(type))
    return failure();
  int64_t rank = type->getRank();
  SmallVector<int64_t> shape;
  if (dim) {
    FailureOr<int64_t> normalized = diag.dim(*dim, rank);
    if (failed(normalized))
      return failure();
    if (rank > 0 && type->getDimSize(*normalized) == 0)
      return diag("cannot reduce dim ", *dim,
                  " of size 0: the reduction has no identity");
    SmallVector<bool> reduced(rank, false);
    if (rank > 0)
      reduced[*normalized] = true;
    shape = reduceShape(type->getShape(), reduced, keepDim);
  } else {
    if (type->getNumElements() == 0)
      return diag("cannot reduce an empty tensor: the reduction has no "
                  "identity");
    // Over the flattened tensor: rank 0, or all ones with keepdim.
    if (keepDim)
      shape.assign(rank, 1);
  }
  auto indexType =
      RankedTensorType::get(shape, IntegerType::get(input.getContext(), 64));
  if (!indicesOnly)
    types.push_back(RankedTensorType::get(shape, type->getElementType()));
  types.push_back(indexType);
  return success();
}

LogicalResult inference::inferAlongDimTypes(std::optional<Location> loc,
                                            StringRef opName, Value input,
                                            int64_t dim,
                                            SmallVectorImpl<Type> &types) {
  OpDiagnostic diag(loc, opName);
  FailureOr<RankedTensorType> type = diag.tensor(input, "input");
  if (failed(type) || failed(diag.dim(dim, type->getRank())))
    return failure();
  types.push_back(*type);
  return success();
}
