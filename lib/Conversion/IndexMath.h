//===- IndexMath.h - Index helpers shared by Kiln's conversions -*- C++ -*-===//

#ifndef KILN_LIB_CONVERSION_INDEXMATH_H
#define KILN_LIB_CONVERSION_INDEXMATH_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/Builders.h"

namespace kiln::conversion {

inline mlir::Value indexConstant(mlir::OpBuilder &b, mlir::Location loc,
                                 int64_t value) {
  return mlir::arith::ConstantIndexOp::create(b, loc, value);
}

/// Row-major delinearization of a flat `index` over `shape`.
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

} // namespace kiln::conversion

#endif // KILN_LIB_CONVERSION_INDEXMATH_H
