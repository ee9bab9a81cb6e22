//===- KilnBase.td - Kiln dialect definition ---------------*- tablegen -*-===//
//
// The `kiln` dialect: tensor ops with PyTorch semantics on statically shaped
// builtin tensors. This file holds the dialect, its type constraints and the
// traits that passes key on; the ops live in KilnOps.td.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_DIALECT_KILN_IR_KILNBASE_TD
#define KILN_DIALECT_KILN_IR_KILNBASE_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/Interfaces/InferTypeOpInterface.td"

def Kiln_Dialect : Dialect {
  let name = "kiln";
  let cppNamespace = "::kiln";
  let summary = "Lazy tensor graphs with PyTorch semantics";
  let description = [{
    The `kiln` dialect models tensor programs the way PyTorch users write
    them: elementwise math with broadcasting, reductions, `topk`/`kthvalue`,
    indexing ops, `matmul` and neural-network losses. Values are builtin
    ranked tensors with static shapes; element types are `f32`, `f64`, `i64`
    (integers and indices) and `i1` (masks). There is no implicit type
    promotion: `kiln.cast` converts between element types.

    `dim` attributes may be negative and count from the end, as in PyTorch.
    Result types are always checked against the shape and element type the
    operands and attributes imply.
  }];
  let hasConstantMaterializer = 1;
  // Attributes live in the op's attribute dictionary, not in properties: the
  // generic form then prints exactly as ops.md writes it (`{k = 3 : i64}`),
  // and type inference sees the attributes while the custom parser runs.
  let usePropertiesForAttributes = 0;
  let dependentDialects = [];
}

//===----------------------------------------------------------------------===//
// Type constraints
//===----------------------------------------------------------------------===//

def Kiln_Float : AnyTypeOf<[F32, F64], "floating-point (f32 or f64)">;
def Kiln_Int : AnyTypeOf<[I64], "64-bit integer">;
def Kiln_Numeric : AnyTypeOf<[F32, F64, I64], "f32, f64 or i64">;
def Kiln_Element : AnyTypeOf<[F32, F64, I64, I32, I1],
                             "f32, f64, i64, i32 or i1">;

def Kiln_FloatTensor : StaticShapeTensorOf<[Kiln_Float]>;
def Kiln_NumericTensor : StaticShapeTensorOf<[Kiln_Numeric]>;
def Kiln_IndexTensor : StaticShapeTensorOf<[I64]>;
def Kiln_MaskTensor : StaticShapeTensorOf<[I1]>;
def Kiln_Tensor : StaticShapeTensorOf<[Kiln_Element]>;

//===----------------------------------------------------------------------===//
// Traits
//===----------------------------------------------------------------------===//

// Each result element is a function of the operand elements at the same
// (broadcast) position only. Fusion keys off this trait.
def Kiln_Elementwise : NativeOpTrait<"Elementwise"> {
  let cppNamespace = "::kiln::OpTrait";
}

// The operands broadcast (NumPy/PyTorch rules) to the result shape.
def Kiln_Broadcasting : NativeOpTrait<"Broadcasting"> {
  let cppNamespace = "::kiln::OpTrait";
}

// The op reduces its operand over one or more dimensions.
def Kiln_Reduction : NativeOpTrait<"Reduction"> {
  let cppNamespace = "::kiln::OpTrait";
}

// An elementwise producer of the op's first operand can run inside the op's
// kernel: evaluated in place of each load (reductions, softmax, gather), or
// one cache-sized tile of whole rows at a time right before a runtime
// kernel reads it (topk, kthvalue, max/min, argmax/argmin). Either way the
// full intermediate tensor never exists.
def Kiln_FusesProducers : NativeOpTrait<"FusesProducers"> {
  let cppNamespace = "::kiln::OpTrait";
}

// Each element of the op's (first) result is final when its kernel computes
// it, so elementwise consumers of the result can be applied right there
// (kiln-fuse-elementwise fuses them into the op's epilogue).
def Kiln_FusesConsumers : NativeOpTrait<"FusesConsumers"> {
  let cppNamespace = "::kiln::OpTrait";
}

// Result types come from the op's inference function, which also checks
// dims, k, shapes and element types; the verifier compares them with the
// written result types (one diagnostic per bad op, naming the expected type).
def Kiln_VerifyInferredTypes : NativeOpTrait<"VerifyInferredTypes"> {
  let cppNamespace = "::kiln::OpTrait";
}
//
// Unlike upstream's InferTypeOpAdaptor, the adaptor handed to the op's
// `inferReturnTypes(context, location, adaptor, types)` always has the
// default-valued attributes filled in and its attributes checked against
// their ODS constraints: the custom parser infers result types before the
// op exists (and before the verifier has seen its attributes).
def Kiln_InferTypesFromAdaptor : NativeOpTrait<"InferTypesFromAdaptor", [],
  /*extraOpDeclaration=*/[{
    static ::llvm::LogicalResult
    inferReturnTypes(::mlir::MLIRContext *context,
                     std::optional<::mlir::Location> location,
                     Adaptor adaptor,
                     ::llvm::SmallVectorImpl<::mlir::Type> &inferredReturnTypes);
  }],
  /*extraOpDefinition=*/[{
    ::llvm::LogicalResult $cppClass::inferReturnTypes(
        ::mlir::MLIRContext *context, std::optional<::mlir::Location> location,
        ::mlir::ValueRange operands, ::mlir::DictionaryAttr attributes,
        ::mlir::OpaqueProperties properties, ::mlir::RegionRange regions,
        ::llvm::SmallVectorImpl<::mlir::Type> &inferredReturnTypes) {
      ::mlir::NamedAttrList attrs(attributes);
      ::mlir::OperationName(getOperationName(), context)
          .populateDefaultAttrs(attrs);
      $cppClass::Adaptor adaptor(operands, attrs.getDictionary(context),
                                 properties, regions);
      if (::mlir::failed(adaptor.verify(
              location.value_or(::mlir::UnknownLoc::get(context)))))
        return ::mlir::failure();
      return $cppClass::inferReturnTypes(context, location, adaptor,
                                         inferredReturnTypes);
    }
  }]> {
  let cppNamespace = "::kiln::OpTrait";
}

def Kiln_InferTypes
    : TraitList<[DeclareOpInterfaceMethods<InferTypeOpInterface>,
                 Kiln_InferTypesFromAdaptor, Kiln_VerifyInferredTypes]>;

//===----------------------------------------------------------------------===//
// Base op class
//===----------------------------------------------------------------------===//

// Every tensor an op touches has fewer than 2^59 elements, so that element
// counts and byte sizes never overflow int64 in shape rules or lowering.
def Kiln_AddressableTensors : NativeOpTrait<"AddressableTensors"> {
  let cppNamespace = "::kiln::OpTrait";
}

class Kiln_Op<string mnemonic, list<Trait> traits = []>
    : Op<Kiln_Dialect, mnemonic,
         !listconcat([Kiln_AddressableTensors], traits)>;

#endif // KILN_DIALECT_KILN_IR_KILNBASE_TD
