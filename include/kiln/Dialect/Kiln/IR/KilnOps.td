//===- KilnOps.td - Kiln dialect ops -----------------------*- tablegen -*-===//
//
// Every op of the `kiln` dialect. The contract (generic forms, attribute
// names and types, semantics) is ../shared/spec/ops.md; each op follows the
// PyTorch function named in its description.
//
// Result types of most ops are inferred (Kiln_InferTypes): the inference
// function also checks dims, k, shapes and element types and emits the
// diagnostics. Ops whose result type cannot be inferred (reshape, expand,
// cast, full, arange) check it in a verifier.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_DIALECT_KILN_IR_KILNOPS_TD
#define KILN_DIALECT_KILN_IR_KILNOPS_TD

include "kiln/Dialect/Kiln/IR/KilnBase.td"
include "kiln/Dialect/Kiln/IR/KilnInterfaces.td"
include "mlir/IR/BuiltinAttributes.td"
include "mlir/IR/CommonAttrConstraints.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

//===----------------------------------------------------------------------===//
// Shared attribute shorthands
//===----------------------------------------------------------------------===//

// The op states its gradient rule (KilnGradients.cpp).
defvar Kiln_Differentiable =
    DeclareOpInterfaceMethods<Kiln_DifferentiableOpInterface>;

def Kiln_DimsAttr : OptionalAttr<DenseI64ArrayAttr>;
def Kiln_KeepDimAttr : DefaultValuedAttr<BoolAttr, "false">;
def Kiln_ReductionKindAttr
    : DefaultValuedStrAttr<StrAttr, "mean">;

//===----------------------------------------------------------------------===//
// Creation ops
//===----------------------------------------------------------------------===//

def Kiln_ConstantOp : Kiln_Op<"constant",
    [ConstantLike, Pure, Kiln_InferTypes]> {
  let summary = "tensor literal (torch.tensor)";
  let description = [{
    Produces the tensor held by the `value` attribute. The result type is the
    type of `value`.

    Example:

    ```mlir
    %c = kiln.constant dense<[1.0, 2.0]> : tensor<2xf32>
    // generic form
    %c = "kiln.constant"() {value = dense<0.5> : tensor<f32>} : () -> tensor<f32>
    ```
  }];
  let arguments = (ins ElementsAttr:$value);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "attr-dict $value";
  let hasFolder = 1;
}

def Kiln_FullOp : Kiln_Op<"full", [Pure]> {
  let summary = "tensor filled with one value (torch.full, zeros, ones)";
  let description = [{
    Produces a tensor of the result type with every element equal to
    `value`. For integer results the value must be integral (and 0 or 1 for
    `i1`). Folds to a splat `kiln.constant`.

    Example:

    ```mlir
    %z = kiln.full 0.0 : tensor<4x4xf32>
    // generic form
    %o = "kiln.full"() {value = 1.0 : f64} : () -> tensor<3xi64>
    ```
  }];
  let arguments = (ins F64Attr:$value);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$value attr-dict `:` type($result)";
  let hasVerifier = 1;
  let hasFolder = 1;
}

class Kiln_FillLikeOp<string mnemonic, string torchName, string fill>
    : Kiln_Op<mnemonic, [Pure, SameOperandsAndResultType,
        DeclareOpInterfaceMethods<Kiln_DifferentiableOpInterface,
                                  ["isDifferentiableOperand"]>]> {
  let summary = "tensor of " # fill # "s shaped like the operand (torch."
                # torchName # ")";
  let description = [{
    Produces a tensor of the operand's type with every element equal to
  }] # fill # [{. Only the operand's type is used, never its values. Folds
    to a splat `kiln.constant`.

    Example:

    ```mlir
    %y = kiln.}] # mnemonic # [{ %x : tensor<2x3xf32>
    // generic form
    %y = "kiln.}] # mnemonic # [{"(%x) : (tensor<2x3xf32>) -> tensor<2x3xf32>
    ```
  }];
  let arguments = (ins Kiln_Tensor:$input);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
  let hasFolder = 1;
}

def Kiln_ZerosLikeOp : Kiln_FillLikeOp<"zeros_like", "zeros_like", "zero">;
def Kiln_OnesLikeOp : Kiln_FillLikeOp<"ones_like", "ones_like", "one">;

def Kiln_ArangeOp : Kiln_Op<"arange", [Pure]> {
  let summary = "evenly spaced 1-D range (torch.arange)";
  let description = [{
    Produces the 1-D tensor `[start, start + step, ..., start + (N-1)*step]`
    where `N` is the size of the result type. `step` must be non-zero and
    finite; for `i64` results `start` and `step` must be integral.

    Example:

    ```mlir
    %r = kiln.arange {start = 0.0 : f64, step = 0.5 : f64} : tensor<4xf32>
    // generic form
    %r = "kiln.arange"() {start = 1.0 : f64} : () -> tensor<5xi64>
    ```
  }];
  let arguments = (ins F64Attr:$start,
                       DefaultValuedAttr<F64Attr, "1.0">:$step);
  let results = (outs StaticShapeTensorOf<[Kiln_Numeric]>:$result);
  let assemblyFormat = "attr-dict `:` type($result)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Elementwise unary ops
//===----------------------------------------------------------------------===//

class Kiln_UnaryOp<string mnemonic, string torchName, string formula,
                   TypeConstraint tensorType, list<Trait> traits = []>
    : Kiln_Op<mnemonic, !listconcat(traits, [Pure, Kiln_Elementwise,
                                             SameOperandsAndResultType,
        DeclareOpInterfaceMethods<Kiln_ScalarOpInterface>,
        Kiln_Differentiable])> {
  let summary = "elementwise " # formula # " (torch." # torchName # ")";
  let description = [{
    Elementwise `}] # formula # [{`, with the semantics of `torch.}]
    # torchName # [{`. NaN propagates.

    Example:

    ```mlir
    %y = kiln.}] # mnemonic # [{ %x : tensor<4x8xf32>
    // generic form
    %y = "kiln.}] # mnemonic # [{"(%x) : (tensor<4x8xf32>) -> tensor<4x8xf32>
    ```
  }];
  let arguments = (ins tensorType:$input);
  let results = (outs tensorType:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
}

def Kiln_NegOp : Kiln_UnaryOp<"neg", "neg", "-x", Kiln_NumericTensor,
                              [Involution]>;
def Kiln_AbsOp : Kiln_UnaryOp<"abs", "abs", "|x|", Kiln_NumericTensor,
                              [Idempotent]>;
def Kiln_SqrtOp : Kiln_UnaryOp<"sqrt", "sqrt", "sqrt(x)", Kiln_FloatTensor>;
def Kiln_RsqrtOp : Kiln_UnaryOp<"rsqrt", "rsqrt", "1 / sqrt(x)",
                                Kiln_FloatTensor>;
def Kiln_ExpOp : Kiln_UnaryOp<"exp", "exp", "e^x", Kiln_FloatTensor>;
def Kiln_LogOp : Kiln_UnaryOp<"log", "log", "ln(x)", Kiln_FloatTensor>;
def Kiln_FloorOp : Kiln_UnaryOp<"floor", "floor", "floor(x)",
                                Kiln_FloatTensor, [Idempotent]>;
def Kiln_CeilOp : Kiln_UnaryOp<"ceil", "ceil", "ceil(x)", Kiln_FloatTensor,
                               [Idempotent]>;
def Kiln_TruncOp : Kiln_UnaryOp<"trunc", "trunc", "trunc(x)",
                                Kiln_FloatTensor, [Idempotent]>;
def Kiln_FracOp : Kiln_UnaryOp<"frac", "frac", "x - trunc(x)",
                               Kiln_FloatTensor>;
def Kiln_RoundOp : Kiln_UnaryOp<"round", "round",
                                "round(x), halves to even", Kiln_FloatTensor,
                                [Idempotent]>;
def Kiln_SigmoidOp : Kiln_UnaryOp<"sigmoid", "sigmoid", "1 / (1 + e^-x)",
                                  Kiln_FloatTensor>;
def Kiln_TanhOp : Kiln_UnaryOp<"tanh", "tanh", "tanh(x)", Kiln_FloatTensor>;
// Beyond ops.md: the error function, for GELU (docs/dialect.md).
def Kiln_ErfOp : Kiln_UnaryOp<"erf", "erf", "erf(x)", Kiln_FloatTensor>;
def Kiln_ReluOp : Kiln_UnaryOp<"relu", "relu", "max(x, 0)", Kiln_FloatTensor,
                               [Idempotent]>;

//===----------------------------------------------------------------------===//
// Elementwise binary ops and comparisons (broadcasting)
//===----------------------------------------------------------------------===//

class Kiln_BroadcastBinaryOp<string mnemonic, string torchName, string formula,
                             TypeConstraint operandType,
                             TypeConstraint resultType, string maskResult,
                             list<Trait> traits = []>
    : Kiln_Op<mnemonic, !listconcat(traits, [Pure, Kiln_Elementwise,
                                             Kiln_Broadcasting,
                                             Kiln_InferTypes,
        DeclareOpInterfaceMethods<Kiln_ScalarOpInterface>])> {
  let summary = "elementwise " # formula # " (torch." # torchName # ")";
  let arguments = (ins operandType:$lhs, operandType:$rhs);
  let results = (outs resultType:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs attr-dict `:` type($lhs) `,` type($rhs)
  }];
  let extraClassDefinition = [{
    ::llvm::LogicalResult $cppClass::inferReturnTypes(
        ::mlir::MLIRContext *, std::optional<::mlir::Location> loc,
        Adaptor adaptor, ::llvm::SmallVectorImpl<::mlir::Type> &types) {
      return ::kiln::inference::inferBroadcastTypes(
          loc, getOperationName(), adaptor.getLhs(), adaptor.getRhs(),
          /*maskResult=*/}] # maskResult # [{, types);
    }
  }];
}

class Kiln_ArithOp<string mnemonic, string torchName, string formula,
                   TypeConstraint tensorType, list<Trait> traits = []>
    : Kiln_BroadcastBinaryOp<mnemonic, torchName, formula, tensorType,
                             tensorType, "false",
                             !listconcat(traits, [Kiln_Differentiable])> {
  let description = [{
    Elementwise `}] # formula # [{` with the semantics of `torch.}]
    # torchName # [{`. Both operands have the same element type; their shapes
    broadcast with NumPy/PyTorch rules (trailing dims align, size 1
    stretches, a scalar is a rank-0 tensor) to the result shape.

    Example:

    ```mlir
    %z = kiln.}] # mnemonic # [{ %x, %y : tensor<4x8xf32>, tensor<8xf32>
    // generic form
    %z = "kiln.}] # mnemonic
    # [{"(%x, %y) : (tensor<4x1xf32>, tensor<8xf32>) -> tensor<4x8xf32>
    ```
  }];
}

def Kiln_AddOp : Kiln_ArithOp<"add", "add", "x + y", Kiln_NumericTensor,
                              [Commutative]> {
  let hasFolder = 1;
  let hasCanonicalizer = 1;
}
def Kiln_SubOp : Kiln_ArithOp<"sub", "sub", "x - y", Kiln_NumericTensor> {
  let hasFolder = 1;
  let hasCanonicalizer = 1;
}
def Kiln_MulOp : Kiln_ArithOp<"mul", "mul", "x * y", Kiln_NumericTensor,
                              [Commutative]> {
  let hasFolder = 1;
}
def Kiln_DivOp : Kiln_ArithOp<"div", "div", "x / y", Kiln_FloatTensor> {
  let hasFolder = 1;
}
def Kiln_MaximumOp : Kiln_ArithOp<"maximum", "maximum", "max(x, y)",
                                  Kiln_NumericTensor, [Commutative]>;
def Kiln_MinimumOp : Kiln_ArithOp<"minimum", "minimum", "min(x, y)",
                                  Kiln_NumericTensor, [Commutative]>;
def Kiln_PowOp : Kiln_ArithOp<"pow", "pow", "x ^ y", Kiln_FloatTensor> {
  // Constant exponents 2, 3, 0.5, -0.5, -1, -2 and 1 are computed the way
  // PyTorch computes them (x*x, x*x*x, sqrt, rsqrt, 1/x, 1/(x*x), x).
  let hasCanonicalizer = 1;
}

class Kiln_CompareOp<string mnemonic, string torchName, string formula,
                     list<Trait> traits = []>
    : Kiln_BroadcastBinaryOp<mnemonic, torchName, formula, Kiln_Tensor,
                             Kiln_MaskTensor, "true", traits> {
  let description = [{
    Elementwise comparison `}] # formula # [{` (torch.}] # torchName # [{),
    producing an `i1` mask. Both operands have the same element type; their
    shapes broadcast to the result shape. Any comparison with NaN is false
    except `ne`, which is true.

    Example:

    ```mlir
    %m = kiln.}] # mnemonic # [{ %x, %zero : tensor<4x8xf32>, tensor<f32>
    // generic form
    %m = "kiln.}] # mnemonic
    # [{"(%x, %y) : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xi1>
    ```
  }];
}

def Kiln_GtOp : Kiln_CompareOp<"gt", "gt", "x > y">;
def Kiln_GeOp : Kiln_CompareOp<"ge", "ge", "x >= y">;
def Kiln_LtOp : Kiln_CompareOp<"lt", "lt", "x < y">;
def Kiln_LeOp : Kiln_CompareOp<"le", "le", "x <= y">;
def Kiln_EqOp : Kiln_CompareOp<"eq", "eq", "x == y", [Commutative]>;
def Kiln_NeOp : Kiln_CompareOp<"ne", "ne", "x != y", [Commutative]>;

//===----------------------------------------------------------------------===//
// Other elementwise ops
//===----------------------------------------------------------------------===//

def Kiln_ClampOp : Kiln_Op<"clamp",
    [Pure, Kiln_Elementwise, SameOperandsAndResultType,
     DeclareOpInterfaceMethods<Kiln_ScalarOpInterface>, Kiln_Differentiable]> {
  let summary = "clamp into [min, max] (torch.clamp / clip)";
  let description = [{
    Elementwise `min(max(x, min), max)`, with the semantics of
    `torch.clamp`: either bound may be omitted (but not both); when
    `min > max` every element becomes `max`; a NaN input stays NaN. For `i64`
    operands the bounds must be integral.

    Example:

    ```mlir
    %y = kiln.clamp %x {max = 5.5 : f64, min = 1.5 : f64} : tensor<7xf32>
    // generic form
    %y = "kiln.clamp"(%x) {min = 0.0 : f64} : (tensor<7xf32>) -> tensor<7xf32>
    ```
  }];
  let arguments = (ins Kiln_NumericTensor:$input,
                       OptionalAttr<F64Attr>:$min,
                       OptionalAttr<F64Attr>:$max);
  let results = (outs Kiln_NumericTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
  let hasVerifier = 1;
}

def Kiln_WhereOp : Kiln_Op<"where",
    [Pure, Kiln_Elementwise, Kiln_Broadcasting, Kiln_InferTypes,
     DeclareOpInterfaceMethods<Kiln_ScalarOpInterface>, Kiln_Differentiable]> {
  let summary = "select by mask (torch.where)";
  let description = [{
    Elementwise `cond ? lhs : rhs`. The condition is an `i1` mask; `lhs` and
    `rhs` have the same element type. All three shapes broadcast to the
    result shape.

    Example:

    ```mlir
    %y = kiln.where %m, %x, %zero : tensor<4xi1>, tensor<4xf32>, tensor<f32>
    // generic form
    %y = "kiln.where"(%m, %x, %z)
        : (tensor<4xi1>, tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
    ```
  }];
  let arguments = (ins Kiln_MaskTensor:$cond, Kiln_Tensor:$lhs,
                       Kiln_Tensor:$rhs);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = [{
    $cond `,` $lhs `,` $rhs attr-dict `:` type($cond) `,` type($lhs) `,`
    type($rhs)
  }];
  let hasFolder = 1;
}

def Kiln_CastOp : Kiln_Op<"cast",
    [Pure, Kiln_Elementwise, SameOperandsAndResultShape,
     DeclareOpInterfaceMethods<Kiln_ScalarOpInterface>, Kiln_Differentiable]> {
  let summary = "element type conversion (Tensor.to(dtype))";
  let description = [{
    Converts every element to the result's element type, keeping the shape.
    Float to integer truncates toward zero (NaN and out-of-range values are
    undefined in PyTorch and give the saturated value here); integer to
    float rounds to nearest; anything to `i1` is `x != 0`; `i1` to a number
    is 0 or 1.

    Example:

    ```mlir
    %y = kiln.cast %x : tensor<4xf32> to tensor<4xi64>
    // generic form
    %y = "kiln.cast"(%m) : (tensor<4xi1>) -> tensor<4xf32>
    ```
  }];
  let arguments = (ins Kiln_Tensor:$input);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `to` type($result)";
  let hasFolder = 1;
}

def Kiln_EqualOp : Kiln_Op<"equal", [Pure, Kiln_InferTypes]> {
  let summary = "whole-tensor equality (torch.equal)";
  let description = [{
    Produces a rank-0 `i1` that is true when both operands have the same
    shape and all elements compare equal (so a NaN makes it false). The
    operands have the same element type; different shapes give false.
    Folds to false for different shapes, and to true for an integer or
    bool tensor compared with itself.

    Example:

    ```mlir
    %b = kiln.equal %x, %y : tensor<4xf32>, tensor<4xf32>
    // generic form
    %b = "kiln.equal"(%x, %y) : (tensor<4xf32>, tensor<4xf32>) -> tensor<i1>
    ```
  }];
  let arguments = (ins Kiln_Tensor:$lhs, Kiln_Tensor:$rhs);
  let results = (outs Kiln_MaskTensor:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs attr-dict `:` type($lhs) `,` type($rhs)
  }];
  let hasFolder = 1;
}

//===----------------------------------------------------------------------===//
// Shape ops
//===----------------------------------------------------------------------===//

def Kiln_ReshapeOp : Kiln_Op<"reshape", [Pure, Kiln_Differentiable,
    DeclareOpInterfaceMethods<Kiln_ViewOpInterface>]> {
  let summary = "same elements, new shape (view / reshape / flatten)";
  let description = [{
    Reinterprets the operand's elements, in row-major order, with the result
    shape. The element counts and element types must match.

    Example:

    ```mlir
    %y = kiln.reshape %x : tensor<2x6xf32> -> tensor<3x4xf32>
    // generic form
    %y = "kiln.reshape"(%x) : (tensor<2x6xf32>) -> tensor<12xf32>
    ```
  }];
  let arguments = (ins Kiln_Tensor:$input);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
  let hasFolder = 1;
  let hasCanonicalizer = 1;
}

def Kiln_ExpandOp : Kiln_Op<"expand", [Pure, Kiln_Elementwise,
    Kiln_Broadcasting, DeclareOpInterfaceMethods<Kiln_ScalarOpInterface>,
    Kiln_Differentiable]> {
  let summary = "broadcast to a larger shape (Tensor.expand)";
  let description = [{
    Broadcasts the operand to the result shape: dims align from the end,
    each operand dim is either 1 or equal to the result dim, and the result
    may have more leading dims.

    Example:

    ```mlir
    %y = kiln.expand %x : tensor<3x1xf32> -> tensor<2x3x4xf32>
    // generic form
    %y = "kiln.expand"(%x) : (tensor<f32>) -> tensor<5xf32>
    ```
  }];
  let arguments = (ins Kiln_Tensor:$input);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
  let hasFolder = 1;
}

def Kiln_PermuteOp : Kiln_Op<"permute", [Pure, Kiln_InferTypes,
    Kiln_Differentiable, DeclareOpInterfaceMethods<Kiln_ViewOpInterface>]> {
  let summary = "reorder dimensions (Tensor.permute / t)";
  let description = [{
    Result dim `i` is operand dim `dims[i]`. `dims` is a permutation of the
    operand's dims; negative entries count from the end.

    Example:

    ```mlir
    %y = kiln.permute %x [1, 0] : tensor<2x3xf32>
    // generic form
    %y = "kiln.permute"(%x) {dims = array<i64: 2, 0, 1>}
        : (tensor<2x3x4xf32>) -> tensor<4x2x3xf32>
    ```
  }];
  let arguments = (ins Kiln_Tensor:$input, DenseI64ArrayAttr:$dims);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$input $dims attr-dict `:` type($input)";
  let hasFolder = 1;
  let hasCanonicalizer = 1;
}

//===----------------------------------------------------------------------===//
// Linear algebra
//===----------------------------------------------------------------------===//

def Kiln_MatmulOp : Kiln_Op<"matmul", [Pure, Kiln_InferTypes,
    Kiln_Differentiable]> {
  let summary = "matrix product with batch broadcasting (torch.matmul)";
  let description = [{
    `torch.matmul`: 1-D x 1-D is a dot product (rank-0 result); 2-D x 2-D a
    matrix product; a 1-D operand gets a dim of size 1 prepended (lhs) or
    appended (rhs) that is removed from the result; with more dims the
    leading (batch) dims broadcast. Both operands have the same element type.

    Example:

    ```mlir
    %c = kiln.matmul %a, %b : tensor<4x3x28x64xf32>, tensor<4x1x64x32xf32>
    // generic form: result tensor<4x3x28x32xf32>
    %d = "kiln.matmul"(%u, %v) : (tensor<8xf32>, tensor<8xf32>) -> tensor<f32>
    ```
  }];
  let arguments = (ins Kiln_NumericTensor:$lhs, Kiln_NumericTensor:$rhs);
  let results = (outs Kiln_NumericTensor:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs attr-dict `:` type($lhs) `,` type($rhs)
  }];
}

//===----------------------------------------------------------------------===//
// Reductions
//===----------------------------------------------------------------------===//

class Kiln_DimsReductionOp<string mnemonic, string torchName, string what,
                           TypeConstraint tensorType, string hasIdentity>
    : Kiln_Op<mnemonic, [Pure, Kiln_Reduction, Kiln_InferTypes,
                         Kiln_Differentiable, Kiln_FusesProducers,
                         Kiln_FusesConsumers]> {
  let summary = what # " over dims (torch." # torchName # ")";
  let description = [{
    Reduces the operand to its }] # what # [{ over `dims` (all dims when
    `dims` is absent or empty), like `torch.}] # torchName # [{`. Negative
    dims count from the end; a dim may appear once. With `keepdim` the reduced
    dims stay as size 1. Over no elements (a reduced dim of size 0) a sum is
    0, a product 1 and a mean NaN -- PyTorch's, bits included (0/0 on x86:
    the sign bit set); a maximum or minimum has no such value, and the
    verifier rejects it.

    Example:

    ```mlir
    %s = kiln.}] # mnemonic # [{ %x {dims = array<i64: 1>, keepdim = true} : tensor<4x10xf32>
    // generic form: reduce everything to a rank-0 result
    %t = "kiln.}] # mnemonic # [{"(%x) : (tensor<4x10xf32>) -> tensor<f32>
    ```
  }];
  let arguments = (ins tensorType:$input, Kiln_DimsAttr:$dims,
                       Kiln_KeepDimAttr:$keepdim);
  let results = (outs tensorType:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
  let hasCanonicalizer = 1;
  let extraClassDefinition = [{
    ::llvm::LogicalResult $cppClass::inferReturnTypes(
        ::mlir::MLIRContext *, std::optional<::mlir::Location> loc,
        Adaptor adaptor, ::llvm::SmallVectorImpl<::mlir::Type> &types) {
      return ::kiln::inference::inferDimsReductionTypes(
          loc, getOperationName(), adaptor.getInput(), adaptor.getDims(),
          adaptor.getKeepdim(), /*hasIdentity=*/}] # hasIdentity # [{, types);
    }
  }];
}

def Kiln_SumOp : Kiln_DimsReductionOp<"sum", "sum", "sum",
                                      Kiln_NumericTensor, "true">;
def Kiln_MeanOp : Kiln_DimsReductionOp<"mean", "mean", "mean",
                                       Kiln_FloatTensor, "true">;
def Kiln_ProdOp : Kiln_DimsReductionOp<"prod", "prod", "product",
                                       Kiln_NumericTensor, "true">;
// NaN propagates through amax/amin; reducing an empty dim is an error.
def Kiln_AmaxOp : Kiln_DimsReductionOp<"amax", "amax", "maximum",
                                       Kiln_NumericTensor, "false">;
def Kiln_AminOp : Kiln_DimsReductionOp<"amin", "amin", "minimum",
                                       Kiln_NumericTensor, "false">;

def Kiln_NormOp : Kiln_Op<"norm", [Pure, Kiln_Reduction, Kiln_InferTypes,
    Kiln_Differentiable]> {
  let summary = "vector p-norm over dims (torch.norm)";
  let description = [{
    `(sum |x|^p)^(1/p)` over `dims` (all dims when absent or empty), with
    `p > 0` (default 2; `p = inf` is the largest absolute value), like
    `torch.norm` on vectors. With `keepdim` the reduced dims stay as size 1.

    Example:

    ```mlir
    %n = kiln.norm %x {dims = array<i64: -1>, p = 1.0 : f64} : tensor<4x10xf32>
    // generic form: Frobenius norm of the whole tensor
    %f = "kiln.norm"(%x) : (tensor<4x10xf32>) -> tensor<f32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$input,
                       DefaultValuedAttr<F64Attr, "2.0">:$p,
                       Kiln_DimsAttr:$dims, Kiln_KeepDimAttr:$keepdim);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
  let hasCanonicalizer = 1;
}

class Kiln_ValueIndexReductionOp<string mnemonic, string torchName,
                                 string what>
    : Kiln_Op<mnemonic, [Pure, Kiln_Reduction, Kiln_InferTypes,
                         Kiln_Differentiable, Kiln_FusesProducers]> {
  let summary = what # " and its index along a dim (torch." # torchName
                # "(x, dim))";
  let description = [{
    Returns the }] # what # [{ along `dim` and the index where it occurs,
    like `torch.}] # torchName # [{(x, dim, keepdim)`. NaN propagates as in
    PyTorch: a slice holding a NaN yields NaN and the index of its first NaN
    (for both `max` and `min`); among equal values the lowest index wins.

    Example:

    ```mlir
    %v, %i = kiln.}] # mnemonic # [{ %x {dim = 1 : i64} : tensor<4x10xf32>
    // generic form
    %v, %i = "kiln.}] # mnemonic # [{"(%x) {dim = -1 : i64, keepdim = true}
        : (tensor<4x10xf32>) -> (tensor<4x1xf32>, tensor<4x1xi64>)
    ```
  }];
  let arguments = (ins Kiln_NumericTensor:$input, I64Attr:$dim,
                       Kiln_KeepDimAttr:$keepdim);
  let results = (outs Kiln_NumericTensor:$values, Kiln_IndexTensor:$indices);
  let assemblyFormat = "$input attr-dict `:` type($input)";
  let hasCanonicalizer = 1;
  let extraClassDefinition = [{
    ::llvm::LogicalResult $cppClass::inferReturnTypes(
        ::mlir::MLIRContext *, std::optional<::mlir::Location> loc,
        Adaptor adaptor, ::llvm::SmallVectorImpl<::mlir::Type> &types) {
      return ::kiln::inference::inferDimReductionTypes(
          loc, getOperationName(), adaptor.getInput(),
          static_cast<int64_t>(adaptor.getDim()), adaptor.getKeepdim(),
          /*indicesOnly=*/false, types);
    }
  }];
}

def Kiln_MaxOp : Kiln_ValueIndexReductionOp<"max", "max", "maximum">;
def Kiln_MinOp : Kiln_ValueIndexReductionOp<"min", "min", "minimum">;

class Kiln_ArgReductionOp<string mnemonic, string torchName, string what>
    : Kiln_Op<mnemonic, [Pure, Kiln_Reduction, Kiln_InferTypes,
                         Kiln_FusesProducers]> {
  let summary = "index of the " # what # " (torch." # torchName # ")";
  let description = [{
    The index of the }] # what # [{ along `dim`, or, when `dim` is absent,
    the flat index over the whole tensor (rank-0 result), like
    `torch.}] # torchName # [{`. NaN and tie rules are those of `kiln.max`
    / `kiln.min`: the first NaN wins, and otherwise the lowest index among
    equal values.

    Example:

    ```mlir
    %i = kiln.}] # mnemonic # [{ %x {dim = 1 : i64} : tensor<4x10xf32>
    // generic form: flat index
    %j = "kiln.}] # mnemonic # [{"(%x) : (tensor<4x10xf32>) -> tensor<i64>
    ```
  }];
  let arguments = (ins Kiln_NumericTensor:$input, OptionalAttr<I64Attr>:$dim,
                       Kiln_KeepDimAttr:$keepdim);
  let results = (outs Kiln_IndexTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
  let hasCanonicalizer = 1;
  let extraClassDefinition = [{
    ::llvm::LogicalResult $cppClass::inferReturnTypes(
        ::mlir::MLIRContext *, std::optional<::mlir::Location> loc,
        Adaptor adaptor, ::llvm::SmallVectorImpl<::mlir::Type> &types) {
      std::optional<int64_t> dim;
      if (auto d = adaptor.getDim())
        dim = static_cast<int64_t>(*d);
      return ::kiln::inference::inferDimReductionTypes(
          loc, getOperationName(), adaptor.getInput(), dim,
          adaptor.getKeepdim(), /*indicesOnly=*/true, types);
    }
  }];
}

def Kiln_ArgmaxOp : Kiln_ArgReductionOp<"argmax", "argmax", "maximum">;
def Kiln_ArgminOp : Kiln_ArgReductionOp<"argmin", "argmin", "minimum">;

def Kiln_TopkOp : Kiln_Op<"topk", [Pure, Kiln_InferTypes,
    Kiln_Differentiable, Kiln_FusesProducers]> {
  let summary = "k largest or smallest values and their indices (torch.topk)";
  let description = [{
    The `k` largest (`largest = true`, default) or smallest values along
    `dim` (default -1) and their indices, like `torch.topk`. `0 <= k <=`
    size of `dim`. NaN compares greater than every number; equal values are
    ordered by ascending index, and with `sorted` (default) the results are
    in order (descending for largest). Results are deterministic.

    Example:

    ```mlir
    %v, %i = kiln.topk %x {k = 3 : i64, largest = false} : tensor<4x10xf32>
    // generic form
    %v, %i = "kiln.topk"(%x) {k = 3 : i64, dim = 1 : i64}
        : (tensor<4x10xf32>) -> (tensor<4x3xf32>, tensor<4x3xi64>)
    ```
  }];
  let arguments = (ins Kiln_NumericTensor:$input, I64Attr:$k,
                       DefaultValuedAttr<I64Attr, "-1">:$dim,
                       DefaultValuedAttr<BoolAttr, "true">:$largest,
                       DefaultValuedAttr<BoolAttr, "true">:$sorted);
  let results = (outs Kiln_NumericTensor:$values, Kiln_IndexTensor:$indices);
  let assemblyFormat = "$input attr-dict `:` type($input)";
}

def Kiln_KthvalueOp : Kiln_Op<"kthvalue", [Pure, Kiln_Reduction,
                                           Kiln_InferTypes,
                                           Kiln_Differentiable,
                                           Kiln_FusesProducers]> {
  let summary = "k-th smallest value and its index (torch.kthvalue)";
  let description = [{
    The `k`-th smallest value (1-based, `1 <= k <=` size of `dim`) along
    `dim` (default -1) and its index, like `torch.kthvalue`. NaN compares
    greater than every number; among equal values the lowest index wins.

    Example:

    ```mlir
    %v, %i = kiln.kthvalue %x {k = 2 : i64, keepdim = true} : tensor<4x10xf32>
    // generic form
    %v, %i = "kiln.kthvalue"(%x) {k = 2 : i64, dim = 0 : i64}
        : (tensor<4x10xf32>) -> (tensor<10xf32>, tensor<10xi64>)
    ```
  }];
  let arguments = (ins Kiln_NumericTensor:$input, I64Attr:$k,
                       DefaultValuedAttr<I64Attr, "-1">:$dim,
                       Kiln_KeepDimAttr:$keepdim);
  let results = (outs Kiln_NumericTensor:$values, Kiln_IndexTensor:$indices);
  let assemblyFormat = "$input attr-dict `:` type($input)";
}

//===----------------------------------------------------------------------===//
// Indexing ops
//===----------------------------------------------------------------------===//

def Kiln_GatherOp : Kiln_Op<"gather", [Pure, Kiln_InferTypes,
    Kiln_Differentiable, Kiln_FusesProducers, Kiln_FusesConsumers,
    DeclareOpInterfaceMethods<Kiln_IndexedReadOpInterface>]> {
  let summary = "gather along a dim by index (torch.gather)";
  let description = [{
    `result[i][j][k] = input[index[i][j][k]][j][k]` for `dim = 0` (and
    likewise for other dims). `index` is `i64` with the input's rank, and
    `index.size(d) <= input.size(d)` for `d != dim`. The result has the
    index's shape. Negative indices are out of range; an index out of range
    is a runtime error.

    Example:

    ```mlir
    %g = kiln.gather %x, %idx {dim = 1 : i64} : tensor<4x10xf32>, tensor<4x3xi64>
    // generic form
    %g = "kiln.gather"(%x, %idx) {dim = 0 : i64}
        : (tensor<4x10xf32>, tensor<2x10xi64>) -> tensor<2x10xf32>
    ```
  }];
  let arguments = (ins Kiln_Tensor:$input, Kiln_IndexTensor:$index,
                       I64Attr:$dim);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = [{
    $input `,` $index attr-dict `:` type($input) `,` type($index)
  }];
}

def Kiln_IndexSelectOp : Kiln_Op<"index_select", [Pure, Kiln_InferTypes,
    Kiln_Differentiable, Kiln_FusesProducers, Kiln_FusesConsumers,
    DeclareOpInterfaceMethods<Kiln_IndexedReadOpInterface>]> {
  let summary = "select slices along a dim (torch.index_select)";
  let description = [{
    Picks the slices `index[0], index[1], …` of `input` along `dim`; the
    result is `input` with `dim` resized to the number of indices. `index`
    is a 1-D (or rank-0) `i64` tensor; an index out of range is a runtime
    error.

    Example:

    ```mlir
    %s = kiln.index_select %x, %idx {dim = 0 : i64} : tensor<4x10xf32>, tensor<6xi64>
    // generic form
    %s = "kiln.index_select"(%x, %idx) {dim = 1 : i64}
        : (tensor<4x10xf32>, tensor<3xi64>) -> tensor<4x3xf32>
    ```
  }];
  let arguments = (ins Kiln_Tensor:$input, Kiln_IndexTensor:$index,
                       I64Attr:$dim);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = [{
    $input `,` $index attr-dict `:` type($input) `,` type($index)
  }];
}

def Kiln_TakeOp : Kiln_Op<"take", [Pure, Kiln_InferTypes,
    Kiln_Differentiable,
    DeclareOpInterfaceMethods<Kiln_IndexedReadOpInterface>]> {
  let summary = "index the flattened tensor (torch.take)";
  let description = [{
    `result[...] = flatten(input)[index[...]]`; negative indices count from
    the end. The result has the index's shape. An index outside
    `[-numel, numel)` is a runtime error.

    Example:

    ```mlir
    %t = kiln.take %x, %idx : tensor<4x10xf32>, tensor<5xi64>
    // generic form
    %t = "kiln.take"(%x, %idx) : (tensor<4x10xf32>, tensor<2x2xi64>) -> tensor<2x2xf32>
    ```
  }];
  let arguments = (ins Kiln_Tensor:$input, Kiln_IndexTensor:$index);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = [{
    $input `,` $index attr-dict `:` type($input) `,` type($index)
  }];
}

def Kiln_ScatterAddOp : Kiln_Op<"scatter_add", [Pure, Kiln_InferTypes,
    Kiln_Differentiable]> {
  let summary = "accumulate src into base at indices along a dim (torch.scatter_add)";
  let description = [{
    `result = base` then `result[index[i][j]][j] += src[i][j]` for `dim = 0`
    (likewise for other dims). `base`, `index` and `src` have the same rank;
    `index.size(d) <= src.size(d)` for every d and `<= base.size(d)` for
    `d != dim`. Repeated indices accumulate; the result is bitwise
    deterministic. An index out of range is a runtime error.

    Example:

    ```mlir
    %r = kiln.scatter_add %b, %idx, %s {dim = 1 : i64}
        : tensor<4x10xf32>, tensor<4x3xi64>, tensor<4x3xf32>
    // generic form
    %r = "kiln.scatter_add"(%b, %idx, %s) {dim = 0 : i64}
        : (tensor<5xf32>, tensor<3xi64>, tensor<3xf32>) -> tensor<5xf32>
    ```
  }];
  let arguments = (ins Kiln_NumericTensor:$base, Kiln_IndexTensor:$index,
                       Kiln_NumericTensor:$src, I64Attr:$dim);
  let results = (outs Kiln_NumericTensor:$result);
  let assemblyFormat = [{
    $base `,` $index `,` $src attr-dict `:` type($base) `,` type($index) `,`
    type($src)
  }];
}

def Kiln_IndexAddOp : Kiln_Op<"index_add", [Pure, Kiln_InferTypes,
    Kiln_Differentiable]> {
  let summary = "accumulate slices into base along a dim (torch.index_add)";
  let description = [{
    `result = base` then slice `index[i]` of `result` along `dim` gets slice
    `i` of `src` added. `index` is 1-D (or rank-0) `i64`; `src` is `base`
    with `dim` resized to the number of indices. Repeated indices
    accumulate deterministically; an index out of range is a runtime error.

    Example:

    ```mlir
    %r = kiln.index_add %b, %idx, %s {dim = 0 : i64}
        : tensor<5x3xf32>, tensor<2xi64>, tensor<2x3xf32>
    // generic form
    %r = "kiln.index_add"(%b, %idx, %s) {dim = 1 : i64}
        : (tensor<5x3xf32>, tensor<4xi64>, tensor<5x4xf32>) -> tensor<5x3xf32>
    ```
  }];
  let arguments = (ins Kiln_NumericTensor:$base, Kiln_IndexTensor:$index,
                       Kiln_NumericTensor:$src, I64Attr:$dim);
  let results = (outs Kiln_NumericTensor:$result);
  let assemblyFormat = [{
    $base `,` $index `,` $src attr-dict `:` type($base) `,` type($index) `,`
    type($src)
  }];
}

def Kiln_PutOp : Kiln_Op<"put", [Pure, Kiln_InferTypes,
    Kiln_Differentiable]> {
  let summary = "write src at flat indices (Tensor.put)";
  let description = [{
    `result = base` then `flatten(result)[index[i]] = src[i]` (or `+=` with
    `accumulate = true`), where `index` and `src` are read in row-major
    order and have the same number of elements. Negative indices count from
    the end. With `accumulate` repeated indices sum deterministically;
    without it the last write (in index order) wins. An index out of range
    is a runtime error.

    Example:

    ```mlir
    %r = kiln.put %b, %idx, %s {accumulate = true}
        : tensor<2x3xf32>, tensor<4xi64>, tensor<4xf32>
    // generic form
    %r = "kiln.put"(%b, %idx, %s)
        : (tensor<2x3xf32>, tensor<2x2xi64>, tensor<4xf32>) -> tensor<2x3xf32>
    ```
  }];
  let arguments = (ins Kiln_Tensor:$base, Kiln_IndexTensor:$index,
                       Kiln_Tensor:$src,
                       DefaultValuedAttr<BoolAttr, "false">:$accumulate);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = [{
    $base `,` $index `,` $src attr-dict `:` type($base) `,` type($index) `,`
    type($src)
  }];
}

//===----------------------------------------------------------------------===//
// Neural-network ops
//===----------------------------------------------------------------------===//

class Kiln_SoftmaxLikeOp<string mnemonic, string torchName, string formula>
    : Kiln_Op<mnemonic, [Pure, Kiln_InferTypes, Kiln_Differentiable,
                         Kiln_FusesProducers, Kiln_FusesConsumers]> {
  let summary = formula # " along a dim (F." # torchName # ")";
  let description = [{
    `}] # formula # [{` along `dim`, computed stably (the maximum along
    `dim` is subtracted first), like `torch.nn.functional.}] # torchName
    # [{`.

    Example:

    ```mlir
    %y = kiln.}] # mnemonic # [{ %x {dim = 1 : i64} : tensor<4x10xf32>
    // generic form
    %y = "kiln.}] # mnemonic # [{"(%x) {dim = -1 : i64}
        : (tensor<4x10xf32>) -> tensor<4x10xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$input, I64Attr:$dim);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
  let extraClassDefinition = [{
    ::llvm::LogicalResult $cppClass::inferReturnTypes(
        ::mlir::MLIRContext *, std::optional<::mlir::Location> loc,
        Adaptor adaptor, ::llvm::SmallVectorImpl<::mlir::Type> &types) {
      return ::kiln::inference::inferAlongDimTypes(
          loc, getOperationName(), adaptor.getInput(),
          static_cast<int64_t>(adaptor.getDim()), types);
    }
  }];
}

def Kiln_SoftmaxOp : Kiln_SoftmaxLikeOp<"softmax", "softmax",
                                        "exp(x) / sum(exp(x))">;
def Kiln_LogSoftmaxOp : Kiln_SoftmaxLikeOp<"log_softmax", "log_softmax",
                                           "x - log(sum(exp(x)))">;

def Kiln_MseLossOp : Kiln_Op<"mse_loss", [Pure, Kiln_InferTypes,
    Kiln_Differentiable]> {
  let summary = "mean squared error (F.mse_loss)";
  let description = [{
    `(input - target)^2`, broadcast, then averaged (`reduction = "mean"`,
    default) or summed (`"sum"`) to a rank-0 result, or returned
    elementwise (`"none"`).

    Example:

    ```mlir
    %l = kiln.mse_loss %x, %t : tensor<8x4xf32>, tensor<8x4xf32>
    // generic form
    %e = "kiln.mse_loss"(%x, %t) {reduction = "none"}
        : (tensor<8x4xf32>, tensor<8x4xf32>) -> tensor<8x4xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$input, Kiln_FloatTensor:$target,
                       Kiln_ReductionKindAttr:$reduction);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $target attr-dict `:` type($input) `,` type($target)
  }];
}

def Kiln_CrossEntropyOp : Kiln_Op<"cross_entropy",
    [Pure, Kiln_InferTypes, Kiln_Differentiable]> {
  let summary = "cross entropy with class indices (F.cross_entropy)";
  let description = [{
    `-log_softmax(logits)[target]` per sample, with logits `[N, C]` and
    target `i64` `[N]`, or logits `[C]` and a rank-0 target; averaged
    (`reduction = "mean"`, default), summed (`"sum"`) or per sample
    (`"none"`). A class index outside `[0, C)` is a runtime error.

    Example:

    ```mlir
    %l = kiln.cross_entropy %logits, %labels : tensor<8x5xf32>, tensor<8xi64>
    // generic form
    %l = "kiln.cross_entropy"(%logits, %labels) {reduction = "sum"}
        : (tensor<8x5xf32>, tensor<8xi64>) -> tensor<f32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$logits, Kiln_IndexTensor:$target,
                       Kiln_ReductionKindAttr:$reduction);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $logits `,` $target attr-dict `:` type($logits) `,` type($target)
  }];
}

//===----------------------------------------------------------------------===//
// Internal ops (made by the lowering, not written by users)
//===----------------------------------------------------------------------===//

def Kiln_ReportIndexErrorOp : Kiln_Op<"report_index_error",
    [MemoryEffects<[MemWrite]>]> {
  let summary = "report an out-of-range index, or another runtime error, to "
                "the runtime (internal)";
  let description = [{
    Made by `-convert-kiln-to-linalg` inside the runtime bounds checks of
    indexing ops: records that `index` is outside `[0, size)` (or the
    take/put range) at check site `site` (an entry of the module's
    `kiln.error_sites`). With a negative `size` it records the error its
    site's text names instead (`-kiln-check-integer-division`: "arith.divsi
    at f.mlir:2:8: integer division by zero"), with `index` in place of the
    text's `{index}` if it has one (`-kiln-check-upstream-indices`:
    "tensor.empty at f.mlir:3:8: negative size -5"). Its declared write effect keeps it in place and
    lets loop bodies around it stay free of unknown effects;
    `-kiln-lower-runtime-calls` turns it into a call of
    `kiln_rt_index_error`.

    Example:

    ```mlir
    kiln.report_index_error %index, %size {site = 0 : i64}
    // generic form
    "kiln.report_index_error"(%index, %size) {site = 0 : i64} : (i64, i64) -> ()
    ```
  }];
  let arguments = (ins I64:$index, I64:$size, I64Attr:$site);
  let assemblyFormat = "$index `,` $size attr-dict";
}

def Kiln_FusedOp : Kiln_Op<"fused", [IsolatedFromAbove, SingleBlock,
                                     RecursiveMemoryEffects]> {
  let summary = "one kernel: a group of ops fused by kiln-fuse-elementwise";
  let description = [{
    Made by `-kiln-fuse-elementwise`: the region computes the results from
    the operands (bound to the block arguments) with ordinary kiln ops, and
    the whole group becomes one kernel: no tensor inside the region is ever
    stored. Its ops are elementwise ops, splat constants, ops with the
    `FusesProducers` trait, indexed reads (`IndexedReadOpInterface`:
    `gather`, `index_select`, `take`) and views (`ViewOpInterface`:
    `reshape`, `permute`), in one of four forms (the verifier rejects anything else):

    - *elementwise*: only elementwise ops, and views read through (the
      chain below a view evaluated at its operand's position); one loop
      over the results, which all have the same shape (a value of the chain
      that is also used after the kernel is one more result);
    - *anchored*: one op with `FusesProducers` (a reduction, softmax,
      selection or gather), whose first operand the elementwise ops below
      it compute, evaluated at each position the op reads (its other
      operands are block arguments or splat constants); with
      `FusesConsumers`, the elementwise ops above it are applied to each
      result element (every result has its result's shape), without, the
      region yields its results as they are. The anchor is the last op
      with `FusesProducers`; the chains may also hold indexed reads of
      block arguments (both operands block arguments or splat constants),
      evaluated in place: a sum of `index_select`'s rows reads the selected
      rows of its stored input, whose indices are checked before the
      kernel; and views before the anchor, read through with index
      arithmetic (the chain below a view is evaluated at its operand's
      position: bags of selected rows, reshaped, are summed in place);
    - *row group*: reductions (`sum`, `prod`, `amax`, `amin`) along the
      last dims -- each the same trailing run of dims, the last dim or
      more (an instance norm's H and W) -- and `softmax`/`log_softmax`
      along the last dim when the reductions reduce only that, each of an
      input of one shape (the rows), computed row by row while the row is
      in cache: the chain broadcasts keepdim results back over the rows,
      and the region yields values of the rows' shape and per-row values
      (of a row's shape: the rows' with the reduced dims 1, or without
      them -- the value of a reduction without keepdim, which only ops of
      its shape may use). A region is a row group when result #0 has the
      shape of a reduction's input, or when it holds two or more of these
      ops, or one reduction and a result of the rows' shape. The lowering
      first rewrites a row group whose rows span several dims into one
      over rows of one dim, those dims collapsed (`reshape`s of its
      operands and results outside);
    - *column group*: reductions (`sum`, `prod`, `amax`, `amin`) with
      keepdim over dim 1 (only) of inputs of one shape [O, C, T] (the
      rows), T > 1, and at least one result of that shape: the chain
      broadcasts the [O, 1, T] results back over C (a layer norm over the
      channels of [N, C, H, W], seen as [N, C, H*W]). The lowering walks
      blocks of columns of T, each block's C x B elements read from memory
      by the first reduction and from cache by the others and the chain;
      results have the rows' shape or [O, 1, T] (a view, no views or
      indexed reads inside). kiln-fuse-elementwise forms them from
      reductions over a run of dims with kept dims after it, collapsing
      the dims before, in and after the run.

    Example:

    ```mlir
    %y = kiln.fused (%x, %b) : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4xf32> {
    ^bb0(%a: tensor<4x8xf32>, %c: tensor<8xf32>):
      %0 = kiln.mul %a, %c : tensor<4x8xf32>, tensor<8xf32>
      %1 = kiln.sum %0 {dims = array<i64: 1>} : tensor<4x8xf32>
      %2 = kiln.sqrt %1 : tensor<4xf32>
      kiln.yield %2 : tensor<4xf32>
    }
    ```
  }];
  let arguments = (ins Variadic<Kiln_Tensor>:$inputs);
  let results = (outs Variadic<Kiln_Tensor>:$results);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = [{
    `(` $inputs `)` attr-dict `:` functional-type($inputs, $results) $body
  }];
  let extraClassDeclaration = [{
    /// The kinds of kernel a region makes (what the lowering builds).
    enum class Form {
      /// Only elementwise ops: one loop over the results' common shape.
      Elementwise,
      /// One op with FusesProducers, reading the chain below it and, with
      /// FusesConsumers, applying the chain above it to each result element.
      Anchored,
      /// Reductions along the last dim of rows of one shape, computed row
      /// by row: broadcast back over the rows by the chain (softmaxes of the
      /// rows may join), or yielded as per-row results.
      RowGroup,
      /// Keepdim reductions over dim 1 of [O, C, T] broadcast back by the
      /// chain, computed a block of columns of T at a time.
      ColumnGroup,
    };
    /// The region's form (the verifier checks that it is well formed).
    Form getForm();
    /// The type of the rows of a RowGroup or ColumnGroup region (its
    /// reductions' input).
    ::mlir::RankedTensorType getRowType();
    /// The number of trailing dims of getRowType() a row of a RowGroup
    /// region spans (the dims its reductions reduce).
    int64_t getRowDims();
    /// This RowGroup region, when its rows span more than one dim (an
    /// instance norm's reductions over H and W of [N, C, H, W]), rewritten
    /// by `rewriter` over rows of fewer dims, each run of consecutive dims
    /// along which every value is constant or varies alike collapsed into
    /// one (rows of [N, C, H*W]; a group norm's with a per-channel weight,
    /// [N, G, C/G, H*W]): the same computation, with reshapes of its
    /// operands and results outside. Returns the new op (this one is
    /// erased; `rewriter` is left before the new op), or this op,
    /// unchanged, when it is no row group over several dims or none of them
    /// collapse. Fails, changing nothing, when a value of the region would
    /// be needed both per row and along the rows.
    ::mlir::FailureOr<FusedOp> collapseRowDims(::mlir::RewriterBase &rewriter);
    /// The op with FusesProducers of an Anchored region (the last one;
    /// any before it are indexed reads in its chains), else null.
    ::mlir::Operation *getAnchor();
  }];
  let hasVerifier = 1;
  let hasRegionVerifier = 1;
}

def Kiln_YieldOp : Kiln_Op<"yield", [Pure, Terminator,
                                     HasParent<"FusedOp">]> {
  let summary = "the results of a kiln.fused region";
  let description = [{
    Terminates the region of `kiln.fused`; its operands are the fused op's
    results, in order.

    Example: `kiln.yield %0, %1 : tensor<4xf32>, tensor<4xi1>`
  }];
  let arguments = (ins Variadic<Kiln_Tensor>:$values);
  let assemblyFormat = "($values^ `:` type($values))? attr-dict";
}

#endif // KILN_DIALECT_KILN_IR_KILNOPS_TD
