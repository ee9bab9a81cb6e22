//===- KilnOps.h - Kiln dialect ops -----------------------------*- C++ -*-===//

#ifndef KILN_DIALECT_KILN_IR_KILNOPS_H
#define KILN_DIALECT_KILN_IR_KILNOPS_H

#include "kiln/Dialect/Kiln/IR/KilnDialect.h"
#include "kiln/Dialect/Kiln/IR/KilnInterfaces.h"
#include "kiln/Dialect/Kiln/IR/KilnShapeInference.h"
#include "kiln/Dialect/Kiln/IR/KilnTraits.h"

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

namespace kiln {
/// `value` as a scalar attribute of the float or integer `type` (integers
/// truncate toward zero).
mlir::TypedAttr getScalarAttr(mlir::Builder &builder, mlir::Type type,
                              double value);

/// Whether `op` (possibly null) is a constant whose value is a splat: what
/// kiln-fuse-elementwise copies into its groups and kiln.fused regions may
/// hold.
bool isSplatConstant(mlir::Operation *op);

/// Bytes of the ranked tensor `value`: its elements times their bytes (an
/// i1 counted as one), what kiln-fuse-elementwise weighs storing a value
/// against recomputing it with.
int64_t tensorByteSize(mlir::Value value);

/// The widest element (bytes, at least 1) that the reductions among `ops`
/// (ops with the Reduction trait; the others are skipped) read: a column
/// group's block is planned on it, by kiln-fuse-elementwise when it forms
/// the group and by the lowering when it builds it.
int64_t widestReducedElementBytes(llvm::ArrayRef<mlir::Operation *> ops);

/// Whether reduction `op`'s result is the same in whatever order it visits
/// the reduced elements: maxima and minima (and their indices: the lowest
/// index wins a tie) and integer sums and products (exact modulo 2^64). A
/// float sum, mean, product or norm rounds in its lane order, which follows
/// the order of the reduced dims.
bool reducesInAnyOrder(mlir::Operation *op);

/// The dims of x, sorted, that a reduction over the dims flagged in
/// `reducedInP` of permute(x, perm) (of shape `permutedShape`; its dim i
/// is x's dim perm[i]) reduces, when reducing x over them gives the same
/// bits: the reduced dims keep their order, or it does not matter
/// (`inAnyOrder`), and their runs of consecutive dims keep their sizes
/// (kiln::conversion::reducedRuns: the lanes and splits of a reduction
/// follow them). Nothing otherwise.
std::optional<llvm::SmallVector<int64_t>>
getReducedDimsThroughPermute(llvm::ArrayRef<int64_t> permutedShape,
                             llvm::ArrayRef<bool> reducedInP,
                             llvm::ArrayRef<int64_t> perm, bool inAnyOrder);

/// The number of trailing dims `op` reduces when it is a sum, prod, amax
/// or amin whose dims are exactly the last k dims of its input (in any
/// order; absent or empty dims, all of them), with keepdim also unit dims
/// before them (the same result as keeping those): a row group's
/// reduction, whose rows span those k dims. 0 for any other op.
int64_t getReducedTrailingRun(mlir::Operation *op);

/// The shape of a per-row value of rows of shape `rows` spanning their last
/// `run` dims: the rows' with those dims 1 (`keepDim`) or dropped.
llvm::SmallVector<int64_t> getRowValueShape(llvm::ArrayRef<int64_t> rows,
                                            int64_t run, bool keepDim);

/// The first op of those `within` accepts that uses the result of
/// `reduction` (a row group's reduction without keepdim), directly or
/// through each other, without having a row's shape `row` (one result of
/// that shape); null when there is none. A row group's per-row value may
/// only feed values of its own shape: broadcast against the rows, it would
/// line up with their columns (the kiln.fused verifier's rule, which
/// kiln-fuse-elementwise follows when it forms row groups).
mlir::Operation *
findNonRowUser(mlir::Operation *reduction, llvm::ArrayRef<int64_t> row,
               llvm::function_ref<bool(mlir::Operation *)> within);
} // namespace kiln

#define GET_OP_CLASSES
#include "kiln/Dialect/Kiln/IR/KilnOps.h.inc"

#endif // KILN_DIALECT_KILN_IR_KILNOPS_H
