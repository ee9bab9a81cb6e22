//===- KilnIndexMath.h - Index arithmetic built as IR -----------*- C++ -*-===//
//
// The index computations that the dialect's IndexedReadOpInterface
// implementations and the conversions both build: row-major
// delinearization, clamping a checked index into bounds, and counting a
// negative flat index from the end. One definition, so the kernels that read
// an indexed op in place and the op's own lowering agree on every position.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_DIALECT_KILN_IR_KILNINDEXMATH_H
#define KILN_DIALECT_KILN_IR_KILNINDEXMATH_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/Builders.h"

namespace kiln {

inline mlir::Value indexConstant(mlir::OpBuilder &b, mlir::Location loc,
                                 int64_t value) {
  return mlir::arith::ConstantIndexOp::create(b, loc, value);
}

/// Row-major delinearization of a flat `index` (an `index` value) over
/// `shape`.
inline llvm::SmallVector<mlir::Value>
delinearize(mlir::OpBuilder &b, mlir::Location loc, mlir::Value index,
            llvm::ArrayRef<int64_t> shape) {
  llvm::SmallVector<mlir::Value> result(shape.size());
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    mlir::Value size = indexConstant(b, loc, shape[d]);
    result[d] = mlir::arith::RemUIOp::create(b, loc, index, size);
    index = mlir::arith::DivUIOp::create(b, loc, index, size);
  }
  return result;
}

/// `index` (i64) as an `index` value when it lies in [0, size), else 0:
/// reads and writes stay in bounds after a bad index was reported.
inline mlir::Value inBoundsIndex(mlir::OpBuilder &b, mlir::Location loc,
                                 mlir::Value index, int64_t size) {
  using namespace mlir;
  Value zero = arith::ConstantIntOp::create(b, loc, 0, 64);
  Value inRange = arith::AndIOp::create(
      b, loc,
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sge, index, zero),
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, index,
                            arith::ConstantIntOp::create(b, loc, size, 64)));
  Value safe = arith::SelectOp::create(b, loc, inRange, index, zero);
  return arith::IndexCastOp::create(b, loc, b.getIndexType(), safe);
}

/// A flat i64 index into `numel` elements with negative values counted from
/// the end (take, put).
inline mlir::Value wrapNegativeIndex(mlir::OpBuilder &b, mlir::Location loc,
                                     mlir::Value index, int64_t numel) {
  using namespace mlir;
  Value isNegative =
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, index,
                            arith::ConstantIntOp::create(b, loc, 0, 64));
  Value wrapped = arith::AddIOp::create(
      b, loc, index, arith::ConstantIntOp::create(b, loc, numel, 64));
  return arith::SelectOp::create(b, loc, isNegative, wrapped, index);
}

/// The position in a tensor of `shape` that the flat i64 `index` (negative
/// counting from the end) selects, clamped into bounds: take's read, put's
/// write.
inline llvm::SmallVector<mlir::Value>
flatIndexPosition(mlir::OpBuilder &b, mlir::Location loc, mlir::Value index,
                  llvm::ArrayRef<int64_t> shape) {
  int64_t numel = 1;
  for (int64_t size : shape)
    numel *= size;
  return delinearize(
      b, loc,
      inBoundsIndex(b, loc, wrapNegativeIndex(b, loc, index, numel), numel),
      shape);
}

} // namespace kiln

#endif // KILN_DIALECT_KILN_IR_KILNINDEXMATH_H
