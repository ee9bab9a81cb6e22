//===- KilnInterfaces.td - Kiln op interfaces --------------*- tablegen -*-===//
//
// Interfaces through which passes ask an op for its own behaviour instead of
// switching over op kinds.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_DIALECT_KILN_IR_KILNINTERFACES_TD
#define KILN_DIALECT_KILN_IR_KILNINTERFACES_TD

include "mlir/IR/OpBase.td"

def Kiln_ScalarOpInterface : OpInterface<"ScalarOpInterface"> {
  let cppNamespace = "::kiln";
  let description = [{
    An elementwise op that can compute one result element from the scalar
    operand elements at the same (broadcast) position. Lowerings and fusion
    build loop bodies from it: the op states its own arithmetic.
  }];
  let methods = [
    InterfaceMethod<[{
        Builds the arith/math ops computing one result element of type
        `resultType` from `operands`, one scalar per operand in order, and
        returns the result value.
      }],
      "::mlir::Value", "buildScalar",
      (ins "::mlir::OpBuilder &":$builder, "::mlir::Location":$loc,
           "::mlir::ValueRange":$operands, "::mlir::Type":$resultType)>,
  ];
}

def Kiln_DifferentiableOpInterface : OpInterface<"DifferentiableOpInterface"> {
  let cppNamespace = "::kiln";
  let description = [{
    An op that states its own reverse-mode gradient rule (vector-Jacobian
    product), PyTorch's rule for the op. `kiln-autodiff` asks each op on the
    path from the arguments to the results for the cotangents of its
    operands given the cotangents of its results; it never switches over op
    kinds. Ops without this interface have no gradient: a cotangent that
    reaches one is a diagnostic naming the op.
  }];
  let methods = [
    InterfaceMethod<[{
        Whether a gradient flows to operand `index`. By default every
        floating-point operand is differentiable and integer/mask operands
        (indices, conditions) are not. Ops that read only an operand's shape
        (`zeros_like`) say no.
      }],
      "bool", "isDifferentiableOperand", (ins "unsigned":$index), [{}],
      /*defaultImplementation=*/[{
        auto type = ::llvm::dyn_cast<::mlir::RankedTensorType>(
            $_op->getOperand(index).getType());
        return type && ::llvm::isa<::mlir::FloatType>(type.getElementType());
      }]>,
    InterfaceMethod<[{
        Builds, at the builder's insertion point, the cotangents of the
        operands from `resultCotangents` (one per result, null for a result
        nothing depends on, e.g. integer indices). `operandCotangents` comes
        sized to the operands and null-filled; the rule sets an entry to a
        value of exactly that operand's type, or leaves it null when the
        gradient is zero or the operand is not differentiable. The rule may
        read the op's operands and results (forward values are reused, not
        recomputed). Returns failure after emitting a diagnostic.
      }],
      "::llvm::LogicalResult", "buildVJP",
      (ins "::mlir::OpBuilder &":$builder,
           "::llvm::ArrayRef<::mlir::Value>":$resultCotangents,
           "::llvm::SmallVectorImpl<::mlir::Value> &":$operandCotangents)>,
  ];
}

def Kiln_IndexedReadOpInterface : OpInterface<"IndexedReadOpInterface"> {
  let cppNamespace = "::kiln";
  let description = [{
    An op whose result element at a position is one element of its input
    (operand 0), at a position computed from one element of its `i64` index
    (operand 1): `gather`, `index_select`, `take`. Fusion evaluates such an
    op in place inside the kernel that reads its result (a reduction of
    `index_select`'s rows reads the selected rows and never stores them);
    the lowering checks every index once, before that kernel, against
    `getValidIndexRange`, and then reads through
    `buildIndexPosition`/`buildInputPosition`.
  }];
  let methods = [
    InterfaceMethod<[{
        `[lo, hi)`: the indices that select an element; any other is a
        runtime error, reported with `hi` as the size indexed.
      }],
      "std::pair<int64_t, int64_t>", "getValidIndexRange">,
    InterfaceMethod<[{
        How many consecutive input elements a run of consecutive result
        elements (along the innermost dim) reads, at least: the length of
        the contiguous runs the read makes in its input. `index_select`
        along a dim before the innermost reads whole slices (the product
        of the dims after `dim`); a read choosing each element on its own
        (`gather`, `take`) makes runs of 1.
      }],
      "int64_t", "getContiguousRun">,
    InterfaceMethod<[{
        The position in the index (operand 1) of the element that selects
        the result element at `resultPosition`.
      }],
      "::llvm::SmallVector<::mlir::Value>", "buildIndexPosition",
      (ins "::mlir::OpBuilder &":$builder, "::mlir::Location":$loc,
           "::mlir::ValueRange":$resultPosition)>,
    InterfaceMethod<[{
        The position in the input (operand 0) that the result element at
        `resultPosition` reads, given its `i64` index element `index`. An
        index outside the valid range (reported before) reads position 0
        along the indexed dims, so the read stays in bounds. The input has
        at least one element.
      }],
      "::llvm::SmallVector<::mlir::Value>", "buildInputPosition",
      (ins "::mlir::OpBuilder &":$builder, "::mlir::Location":$loc,
           "::mlir::ValueRange":$resultPosition, "::mlir::Value":$index)>,
  ];
}

def Kiln_ViewOpInterface : OpInterface<"ViewOpInterface"> {
  let cppNamespace = "::kiln";
  let description = [{
    An op whose result element at a position is the element of its operand
    (operand 0) at a position computed from that position alone: a view of
    the same elements in another shape (`reshape`) or order of dims
    (`permute`). Fusion evaluates such an
    op in a kernel's chain as index arithmetic: the chain below it is
    computed at the operand's position, and its result is never stored (a
    sum over the rows of an `index_select` reshaped into bags reads the
    selected rows in place).
  }];
  let methods = [
    InterfaceMethod<[{
        The position in the operand of the element at `resultPosition` of
        the result.
      }],
      "::llvm::SmallVector<::mlir::Value>", "buildSourcePosition",
      (ins "::mlir::OpBuilder &":$builder, "::mlir::Location":$loc,
           "::mlir::ValueRange":$resultPosition)>,
    InterfaceMethod<[{
        Whether the operand's position keeps the result's last index (and
        both have the same last dim): consecutive result elements along the
        last dim are consecutive operand elements, so a kernel reading the
        view along its last dim still loads vectors.
      }],
      "bool", "keepsLastDim">,
    InterfaceMethod<[{
        Whether the op on its own, outside a kernel, moves no data: its
        result is the operand's buffer seen in another shape (a reshape).
        A kernel then gains nothing from reading through a view of a stored
        tensor; through one that copies on its own (a permute), it saves
        the copy.
      }],
      "bool", "isFreeAlone">,
  ];
}

#endif // KILN_DIALECT_KILN_IR_KILNINTERFACES_TD
