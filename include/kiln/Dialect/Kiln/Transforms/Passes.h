//===- Passes.h - Kiln dialect passes ---------------------------*- C++ -*-===//

#ifndef KILN_DIALECT_KILN_TRANSFORMS_PASSES_H
#define KILN_DIALECT_KILN_TRANSFORMS_PASSES_H

#include "kiln/Conversion/ReductionPlan.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Pass/Pass.h"
#include "llvm/ADT/SmallVector.h"

#include <unordered_map>

namespace mlir {
class RewritePatternSet;
}

namespace kiln {

#define GEN_PASS_DECL
#include "kiln/Dialect/Kiln/Transforms/Passes.h.inc"

/// Adds `@<vjpName>`, the vector-Jacobian product of `function` (the VJP
/// contract of -kiln-autodiff), right after it in its module. Emits
/// diagnostics and returns failure when `function` cannot be differentiated.
mlir::FailureOr<mlir::func::FuncOp> deriveVJP(mlir::func::FuncOp function,
                                              llvm::StringRef vjpName);

/// The kernel attribute kiln-streaming-stores sets and kiln-alias-scopes
/// reads: the buffer groups of the kernel's streaming arguments.
inline constexpr llvm::StringLiteral kStreamingGroupsAttr =
    "kiln.streaming_groups";

/// The end of the alias scope names kiln-alias-scopes gives the buffer
/// groups kiln-streaming-stores marked (`buffer1.streaming`): the CPU
/// compiler makes their aligned vector stores non-temporal.
inline constexpr llvm::StringLiteral kStreamingScopeSuffix = ".streaming";

/// The kernel functions one pass created so far, by structure: a hash of
/// each one's type and body (op names, attributes, properties and result
/// types in walk order) -> the functions with that hash.
using KernelTable =
    std::unordered_map<size_t, llvm::SmallVector<mlir::func::FuncOp, 1>>;

/// Deduplicates the kernel function `kernel`, just created and not yet in
/// a symbol table: returns the function of `kernels` with the same type
/// and a body equivalent to its own (OperationEquivalence: the same ops
/// with the same attributes, properties and types, their operands in the
/// same places; locations ignored) and erases `kernel`, with true; or adds
/// `kernel` to `kernels` and to `symbols` (renamed if its name is taken)
/// and returns it, with false. The functions' own attributes are not
/// compared: each caller gives all its kernels the same ones (or adds some
/// after sharing, as kiln-outline-kernels' buffer groups). kiln-outline-
/// kernels and kiln-outline-tensor-kernels share their identical kernels
/// so; printing each kernel to compare texts took three quarters of the
/// latter's time on a deep network's gradient (240 000 lines of loops).
std::pair<mlir::func::FuncOp, bool>
shareIdenticalKernel(mlir::func::FuncOp kernel, KernelTable &kernels,
                     mlir::SymbolTable &symbols);

/// Patterns of -kiln-decompose; `cpu`: keep the equal ops whose operands
/// are both read from memory (the CPU's runtime comparison).
void populateDecomposePatterns(mlir::RewritePatternSet &patterns, bool cpu);

/// kiln-fuse-elementwise's first step with row groups: a reshape read by
/// row reductions and reshaped back, then used elementwise (a group norm
/// written as x.reshape(N, G, -1), normalized, reshaped back, scaled per
/// channel), rewritten with what follows on the two shapes' common
/// refinement ([N, G, C/G, H, W]), so that one row group holds it all
/// (RowGroupReshapes.cpp).
void refineRowGroupReshapes(mlir::Block &block);

/// Elementwise ops and keepdim reductions between permutes and the permute
/// that undoes them (a channels-last layer norm of an NCHW tensor), rewritten
/// onto the unpermuted tensors: neither permute is copied, and the fuser sees
/// the chain as it would be written unpermuted (PermuteRoundTrips.cpp).
void cancelPermuteRoundTrips(mlir::Block &block);

/// kiln-fuse-elementwise's step with row groups for reductions over a middle
/// dim: keepdim reductions over a run of dims with kept dims after it, and
/// the elementwise chain that broadcasts them back (a layer norm over the
/// channels of [N, C, H, W]), become one kiln.fused column group on
/// [O, C, T], the runs collapsed, of at most `maxGroupOps` ops, also
/// yielding the values used after it of the rows' shape or the columns'
/// (ColumnGroups.cpp). With `refusals`, each column reduction whose group
/// is not formed gets the reason (for kiln-fuse-elementwise's remarks).
void formColumnGroups(
    mlir::Block &block, size_t maxGroupOps,
    llvm::DenseMap<mlir::Operation *, std::string> *refusals = nullptr);

#define GEN_PASS_REGISTRATION
#include "kiln/Dialect/Kiln/Transforms/Passes.h.inc"

} // namespace kiln

#endif // KILN_DIALECT_KILN_TRANSFORMS_PASSES_H
