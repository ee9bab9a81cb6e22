//===- KilnShapeInference.h - Shape rules of kiln ops -----------*- C++ -*-===//
//
// The shape and element-type rules shared by the ops' type inference, the
// lowering and the C++ API: dim normalization, broadcasting, reduced shapes,
// and the inference functions of op families. Inference functions emit one
// diagnostic, prefixed with the op name, when a location is given.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_DIALECT_KILN_IR_KILNSHAPEINFERENCE_H
#define KILN_DIALECT_KILN_IR_KILNSHAPEINFERENCE_H

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Value.h"
#include "llvm/ADT/SmallVector.h"
#include <optional>

namespace kiln {

/// Normalizes a PyTorch-style `dim` (negative counts from the end) for a
/// tensor of `rank`. As in PyTorch, a rank-0 tensor accepts -1 and 0 (both
/// give 0). Returns std::nullopt when `dim` is out of range.
std::optional<int64_t> normalizeDim(int64_t dim, int64_t rank);

/// The NumPy/PyTorch broadcast of two shapes, or std::nullopt.
std::optional<llvm::SmallVector<int64_t>>
broadcastShapes(llvm::ArrayRef<int64_t> lhs, llvm::ArrayRef<int64_t> rhs);

/// Whether `from` broadcasts to exactly `to` (Tensor.expand rules).
bool isExpandableTo(llvm::ArrayRef<int64_t> from, llvm::ArrayRef<int64_t> to);

/// The shape of `shape` reduced over the dims flagged in `reduced`.
llvm::SmallVector<int64_t> reduceShape(llvm::ArrayRef<int64_t> shape,
                                       llvm::ArrayRef<bool> reduced,
                                       bool keepDim);

/// The dims a reduction's `dims` attribute reduces (absent or empty: all),
/// as a mask over the dims of `type`. `dims` must be valid (verified).
llvm::SmallVector<bool>
getReducedDimsMask(mlir::RankedTensorType type,
                   std::optional<llvm::ArrayRef<int64_t>> dims);

/// Number of elements each reduction over the dims in `mask` combines.
int64_t getReducedCount(mlir::RankedTensorType type, llvm::ArrayRef<bool> mask);

/// Formats a shape as `[2, 3]` for diagnostics.
std::string formatShape(llvm::ArrayRef<int64_t> shape);

/// Number of elements of a static shape.
int64_t getNumElements(llvm::ArrayRef<int64_t> shape);

namespace inference {

/// Emits "'<op>' op <message>" at `loc` if set; always returns failure.
/// Only the first error is reported: later checks of an op that already
/// failed stay silent, so that one bad input gives one diagnostic.
class OpDiagnostic {
public:
  OpDiagnostic(std::optional<mlir::Location> loc, llvm::StringRef opName)
      : loc(loc), opName(opName) {}

  template <typename... Args>
  mlir::LogicalResult operator()(Args &&...args) const {
    if (reported)
      return mlir::failure();
    reported = true;
    return mlir::emitOptionalError(loc, "'", opName, "' op ",
                                   std::forward<Args>(args)...);
  }

  /// Returns the ranked tensor type of `value`, or emits that operand `what`
  /// must be a statically shaped tensor.
  mlir::FailureOr<mlir::RankedTensorType> tensor(mlir::Value value,
                                                 llvm::StringRef what) const;

  /// Normalizes `dim` for `rank` or emits an out-of-range diagnostic.
  mlir::FailureOr<int64_t> dim(int64_t dim, int64_t rank,
                               llvm::StringRef what = "dim") const;

private:
  std::optional<mlir::Location> loc;
  llvm::StringRef opName;
  mutable bool reported = false;
};

/// Formats a number for diagnostics the way people write it (1.5, 1e+19,
/// inf).
std::string formatNumber(double value);

/// Binary elementwise ops and comparisons: same element types, broadcast
/// shapes; the result element type is i1 when `maskResult`.
mlir::LogicalResult
inferBroadcastTypes(std::optional<mlir::Location> loc, llvm::StringRef opName,
                    mlir::Value lhs, mlir::Value rhs, bool maskResult,
                    llvm::SmallVectorImpl<mlir::Type> &types);

/// Reductions over a `dims` list (absent or empty: all dims). Reductions
/// without an identity (amax) reject reducing a dim of size 0.
mlir::LogicalResult inferDimsReductionTypes(
    std::optional<mlir::Location> loc, llvm::StringRef opName,
    mlir::Value input, std::optional<llvm::ArrayRef<int64_t>> dims,
    bool keepDim, bool hasIdentity, llvm::SmallVectorImpl<mlir::Type> &types);

/// Reductions over one dim producing (values, i64 indices), or only the
/// indices when `indicesOnly`; an absent dim reduces the flattened tensor.
mlir::LogicalResult inferDimReductionTypes(
    std::optional<mlir::Location> loc, llvm::StringRef opName,
    mlir::Value input, std::optional<int64_t> dim, bool keepDim,
    bool indicesOnly, llvm::SmallVectorImpl<mlir::Type> &types);

/// Ops that keep the operand type and act along one `dim` (softmax).
mlir::LogicalResult
inferAlongDimTypes(std::optional<mlir::Location> loc, llvm::StringRef opName,
                   mlir::Value input, int64_t dim,
                   llvm::SmallVectorImpl<mlir::Type> &types);

} // namespace inference
} // namespace kiln

#endif // KILN_DIALECT_KILN_IR_KILNSHAPEINFERENCE_H
