//===- VectorTranspose.h - Square tiles transposed in registers -*- C++ -*-===//
//
// The in-register transpose of a square tile of vectors, shared by the
// matrix-vector lowering (convert-kiln-to-linalg) and the transposes
// kiln-tile-transposes builds.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_CONVERSION_VECTORTRANSPOSE_H
#define KILN_CONVERSION_VECTORTRANSPOSE_H

#include "mlir/Dialect/Vector/IR/VectorOps.h"

namespace kiln::conversion {

/// The transpose of the square tile `rows` (R vectors of R elements, R a
/// power of two): log2 R rounds of two-input shuffles, each swapping the
/// off-diagonal blocks of side d inside blocks of side 2d (d = R/2, ..., 1)
/// -- R log2 R shuffles, each one instruction (vpermt2ps/pd) on x86.
/// Vectors of a multiple of R elements hold that many R x R tiles side by
/// side, each transposed (the same shuffles).
inline llvm::SmallVector<mlir::Value>
transposeTile(mlir::OpBuilder &b, mlir::Location loc,
              llvm::SmallVector<mlir::Value> rows) {
  int64_t size = rows.size();
  int64_t lanes =
      llvm::cast<mlir::VectorType>(rows.front().getType()).getNumElements();
  for (int64_t d = size / 2; d >= 1; d /= 2) {
    llvm::SmallVector<int64_t> upper, lower;
    for (int64_t c = 0; c < lanes; ++c) {
      upper.push_back((c & d) ? lanes + c - d : c);
      lower.push_back((c & d) ? lanes + c : c + d);
    }
    for (int64_t i = 0; i < size; ++i) {
      if (i & d)
        continue;
      mlir::Value a = rows[i], c = rows[i + d];
      rows[i] = mlir::vector::ShuffleOp::create(b, loc, a, c, upper);
      rows[i + d] = mlir::vector::ShuffleOp::create(b, loc, a, c, lower);
    }
  }
  return rows;
}

} // namespace kiln::conversion

#endif // KILN_CONVERSION_VECTORTRANSPOSE_H
