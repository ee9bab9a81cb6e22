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

#endif // KILN_DIALECT_KILN_IR_KILNINTERFACES_TD
