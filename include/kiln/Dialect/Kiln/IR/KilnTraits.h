//===- KilnTraits.h - Traits of kiln ops ------------------------*- C++ -*-===//
//
// Marker traits that passes key on instead of lists of op names.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_DIALECT_KILN_IR_KILNTRAITS_H
#define KILN_DIALECT_KILN_IR_KILNTRAITS_H

#include "mlir/IR/OpDefinition.h"

namespace kiln {
namespace OpTrait {

/// Each result element is a function of the operand elements at the same
/// (broadcast) position only: the op can be fused into a pointwise loop.
template <typename ConcreteType>
class Elementwise
    : public mlir::OpTrait::TraitBase<ConcreteType, Elementwise> {};

/// The operands broadcast with NumPy/PyTorch rules to the result shape.
template <typename ConcreteType>
class Broadcasting
    : public mlir::OpTrait::TraitBase<ConcreteType, Broadcasting> {};

/// The op reduces its (first) operand over one or more dimensions.
template <typename ConcreteType>
class Reduction : public mlir::OpTrait::TraitBase<ConcreteType, Reduction> {};

} // namespace OpTrait
} // namespace kiln

#endif // KILN_DIALECT_KILN_IR_KILNTRAITS_H
