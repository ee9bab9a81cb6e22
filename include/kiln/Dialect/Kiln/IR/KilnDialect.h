//===- KilnDialect.h - Kiln dialect -----------------------------*- C++ -*-===//

#ifndef KILN_DIALECT_KILN_IR_KILNDIALECT_H
#define KILN_DIALECT_KILN_IR_KILNDIALECT_H

#include "mlir/IR/Dialect.h"
#include "mlir/IR/Location.h"

#include <optional>
#include <string>

#include "kiln/Dialect/Kiln/IR/KilnOpsDialect.h.inc"

namespace kiln {
/// The module attribute counting the kernels the entry points launch
/// (loop nests, runtime calls; kiln-run --stats): set by the lowering to
/// linalg, or to the GPU, and raised by passes that add kernels.
constexpr llvm::StringLiteral kKernelCountAttrName = "kiln.kernels";
/// The module attribute of kiln-profile-kernels: per timed site (by
/// number), "FILE:LINE:COL<tab>what runs there".
constexpr llvm::StringLiteral kProfileSitesAttrName = "kiln.profile_sites";

/// "FILE:LINE:COL" of the file position in `loc`, also inside a name,
/// call-site or fused location (what remarks and profiles print), or
/// nothing when it has none.
std::optional<std::string> filePosition(mlir::Location loc);

/// "'kiln.exp' (FILE:LINE:COL)", or "'kiln.exp'" without a file position:
/// an op and where it is, for remarks that mention an op other than the
/// one they are attached to.
std::string describeOp(mlir::Operation *op);
} // namespace kiln

#endif // KILN_DIALECT_KILN_IR_KILNDIALECT_H
