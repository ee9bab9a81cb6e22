//===- Passes.h - Kiln conversion passes ------------------------*- C++ -*-===//

#ifndef KILN_CONVERSION_PASSES_H
#define KILN_CONVERSION_PASSES_H

#include "mlir/Pass/Pass.h"

namespace mlir {
class RewritePatternSet;
} // namespace mlir

namespace kiln {

#define GEN_PASS_DECL
#include "kiln/Conversion/Passes.h.inc"

/// Name of the module attribute listing runtime-check sites ("op at loc").
constexpr llvm::StringLiteral kErrorSitesAttrName = "kiln.error_sites";
/// The module attribute naming the target being lowered for ("cuda" for the
/// GPU pipeline; absent for the CPU).
constexpr llvm::StringLiteral kTargetAttrName = "kiln.target";
/// The CPU's widest vector register in bits (convert-kiln-to-linalg
/// {vector-bits}), where it is not 512.
constexpr llvm::StringLiteral kVectorBitsAttrName = "kiln.vector_bits";

/// Whether the lowering tiles for vector registers of `bits` bits
/// (convert-kiln-to-linalg{vector-bits}): 128, 256 or 512.
inline bool isSupportedVectorBits(int64_t bits) {
  return bits == 128 || bits == 256 || bits == 512;
}

#define GEN_PASS_REGISTRATION
#include "kiln/Conversion/Passes.h.inc"

} // namespace kiln

#endif // KILN_CONVERSION_PASSES_H
