//===- KilnTraits.h - Traits of kiln ops ------------------------*- C++ -*-===//
//
// Marker traits that passes key on instead of lists of op names.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_DIALECT_KILN_IR_KILNTRAITS_H
#define KILN_DIALECT_KILN_IR_KILNTRAITS_H

#include "kiln/Support/ShapeLimits.h"

#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/Operation.h"
#include "llvm/ADT/STLExtras.h"

namespace kiln {
namespace OpTrait {

/// Each result element is a function of the operand elements at the same
/// (broadcast) position only: the op can be fused into a pointwise loop.
template <typename ConcreteType>
class Elementwise : public mlir::OpTrait::TraitBase<ConcreteType, Elementwise> {
};

/// The operands broadcast with NumPy/PyTorch rules to the result shape.
template <typename ConcreteType>
class Broadcasting
    : public mlir::OpTrait::TraitBase<ConcreteType, Broadcasting> {};

/// The op reduces its (first) operand over one or more dimensions.
template <typename ConcreteType>
class Reduction : public mlir::OpTrait::TraitBase<ConcreteType, Reduction> {};

/// The op reads its first operand element by element at positions computed
/// from its loop indices: an elementwise producer can be evaluated in place.
template <typename ConcreteType>
class FusesProducers
    : public mlir::OpTrait::TraitBase<ConcreteType, FusesProducers> {};

/// Each element of the op's first result is final when computed: elementwise
/// consumers can be applied in the op's kernel (its epilogue).
template <typename ConcreteType>
class FusesConsumers
    : public mlir::OpTrait::TraitBase<ConcreteType, FusesConsumers> {};

/// Rejects operands and results whose shapes are not addressable
/// (kiln::isAddressableShape: more than 2^59 elements, or nonzero sizes
/// multiplying past 2^59 in a shape with a zero size).
template <typename ConcreteType>
class AddressableTensors
    : public mlir::OpTrait::TraitBase<ConcreteType, AddressableTensors> {
public:
  static mlir::LogicalResult verifyTrait(mlir::Operation *op) {
    auto check = [&](mlir::Type type, llvm::StringRef kind,
                     unsigned index) -> mlir::LogicalResult {
      auto shaped = llvm::dyn_cast<mlir::RankedTensorType>(type);
      if (!shaped || !shaped.hasStaticShape() ||
          kiln::isAddressableShape(shaped.getShape()))
        return mlir::success();
      return op->emitOpError()
             << kind << " #" << index << " type " << type << " "
             << kiln::unaddressableShapeReason(shaped.getShape());
    };
    for (auto [index, type] : llvm::enumerate(op->getOperandTypes()))
      if (mlir::failed(check(type, "operand", index)))
        return mlir::failure();
    for (auto [index, type] : llvm::enumerate(op->getResultTypes()))
      if (mlir::failed(check(type, "result", index)))
        return mlir::failure();
    return mlir::success();
  }
};

/// Marks ops whose result types are inferred from an adaptor with defaults
/// filled in and attributes checked (see Kiln_InferTypesFromAdaptor).
template <typename ConcreteType>
class InferTypesFromAdaptor
    : public mlir::OpTrait::TraitBase<ConcreteType, InferTypesFromAdaptor> {};

/// Verifies the result types against those the op's `inferReturnTypes`
/// derives from its operands and attributes. Runs with the other traits,
/// before region verification, so that a bad op gets exactly one diagnostic:
/// either the inference's own (k out of range, shapes that do not
/// broadcast, ...) or a result-type mismatch naming the expected type.
template <typename ConcreteType>
class VerifyInferredTypes
    : public mlir::OpTrait::TraitBase<ConcreteType, VerifyInferredTypes> {
public:
  static mlir::LogicalResult verifyTrait(mlir::Operation *op) {
    llvm::SmallVector<mlir::Type, 2> inferred;
    if (mlir::failed(ConcreteType::inferReturnTypes(
            op->getContext(), op->getLoc(), op->getOperands(),
            op->getRawDictionaryAttrs(), op->getPropertiesStorage(),
            op->getRegions(), inferred)))
      return mlir::failure();
    for (auto [index, expected, actual] :
         llvm::enumerate(inferred, op->getResultTypes())) {
      if (expected != actual)
        return op->emitOpError() << "result #" << index << " has type "
                                 << actual << ", expected " << expected;
    }
    return mlir::success();
  }
};

} // namespace OpTrait
} // namespace kiln

#endif // KILN_DIALECT_KILN_IR_KILNTRAITS_H
