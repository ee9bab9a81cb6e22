//===- KilnCanonicalize.td - Local rewrites of kiln ops ----*- tablegen -*-===//
//
// Canonicalization patterns written in DRR. Each one is exact: the rewritten
// IR produces the same bits as the original (IEEE-754 defines a - b as
// a + (-b)).
//
//===----------------------------------------------------------------------===//

#ifndef KILN_CANONICALIZE_TD
#define KILN_CANONICALIZE_TD

include "mlir/IR/PatternBase.td"
include "kiln/Dialect/Kiln/IR/KilnOps.td"

// permute(permute(x, inner), outer) -> permute(x, inner o outer)
def ComposePermutations
    : NativeCodeCall<"::kiln::composePermutations($_builder, $0, $1)">;
def PermuteOfPermute
    : Pat<(Kiln_PermuteOp (Kiln_PermuteOp $x, $inner), $outer),
          (Kiln_PermuteOp $x, (ComposePermutations $inner, $outer))>;

// x + (-y) -> x - y, and (-y) + x -> x - y
def AddOfNegRhs : Pat<(Kiln_AddOp $x, (Kiln_NegOp $y)), (Kiln_SubOp $x, $y)>;
def AddOfNegLhs : Pat<(Kiln_AddOp (Kiln_NegOp $y), $x), (Kiln_SubOp $x, $y)>;

// x - (-y) -> x + y
def SubOfNeg : Pat<(Kiln_SubOp $x, (Kiln_NegOp $y)), (Kiln_AddOp $x, $y)>;

#endif // KILN_CANONICALIZE_TD
