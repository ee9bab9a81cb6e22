//===- CheckIntegerDivision.cpp - Safe upstream integer division ----------===//
//
// Integer division of IR files by zero is a runtime error, not a SIGFPE;
// INT_MIN / -1 wraps as in NumPy (see Passes.td).
//
//===----------------------------------------------------------------------===//

#include "../ErrorSites.h"
#include "kiln/Conversion/Passes.h"
#include "kiln/Dialect/Kiln/IR/KilnOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/Matchers.h"

namespace kiln {
#define GEN_PASS_DEF_KILNCHECKINTEGERDIVISION
#include "kiln/Conversion/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using kiln::conversion::ErrorSites;
using kiln::conversion::reportIf;

namespace {

/// Whether `op` is an integer division or remainder, and whether signed.
std::optional<bool> divisionSignedness(Operation *op) {
  if (isa<arith::DivSIOp, arith::RemSIOp, arith::CeilDivSIOp,
          arith::FloorDivSIOp>(op))
    return true;
  if (isa<arith::DivUIOp, arith::RemUIOp, arith::CeilDivUIOp>(op))
    return false;
  return std::nullopt;
}

struct KilnCheckIntegerDivisionPass
    : kiln::impl::KilnCheckIntegerDivisionBase<KilnCheckIntegerDivisionPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    bool failed = false;
    SmallVector<Operation *> divisions;
    module.walk([&](Operation *op) {
      std::optional<bool> isSigned = divisionSignedness(op);
      if (!isSigned)
        return;
      Type type = op->getResult(0).getType();
      if (!type.isIntOrIndex()) {
        op->emitOpError() << "on " << type
                          << " is not supported by Kiln: only scalars and "
                             "whole tensors are checked for division by zero";
        failed = true;
        return;
      }
      APInt divisor;
      if (matchPattern(op->getOperand(1), m_ConstantInt(&divisor))) {
        if (divisor.isZero()) {
          op->emitOpError() << "divides by zero";
          failed = true;
          return;
        }
        if (!*isSigned || !divisor.isAllOnes())
          return; // Cannot fault.
      }
      divisions.push_back(op);
    });
    if (failed)
      return signalPassFailure();
    if (divisions.empty())
      return;

    ErrorSites sites = ErrorSites::load(module);
    for (Operation *op : divisions) {
      bool isSigned = *divisionSignedness(op);
      Location loc = op->getLoc();
      OpBuilder b(op);
      Value lhs = op->getOperand(0), rhs = op->getOperand(1);
      Type type = rhs.getType();
      unsigned width = type.isIndex() ? 64 : type.getIntOrFloatBitWidth();
      auto constant = [&](const APInt &value) -> Value {
        if (type.isIndex())
          return arith::ConstantIndexOp::create(b, loc, value.getSExtValue());
        return arith::ConstantOp::create(b, loc, IntegerAttr::get(type, value));
      };
      Value zero = constant(APInt::getZero(width));
      Value one = constant(APInt(width, 1));
      Value safe = rhs;
      if (!matchPattern(rhs, m_Constant())) {
        int64_t site = sites.add(op, "integer division by zero");
        Value isZero =
            arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, rhs, zero);
        reportIf(b, loc, isZero, arith::ConstantIntOp::create(b, loc, 0, 64),
                 arith::ConstantIntOp::create(b, loc, -1, 64), site);
        safe = arith::SelectOp::create(b, loc, isZero, one, safe);
      }
      if (isSigned) {
        // INT_MIN / -1 overflows: divided by one it wraps to INT_MIN, the
        // remainder is 0.
        Value isMin =
            arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, lhs,
                                  constant(APInt::getSignedMinValue(width)));
        Value isMinusOne =
            arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, rhs,
                                  constant(APInt::getAllOnes(width)));
        Value overflows = arith::AndIOp::create(b, loc, isMin, isMinusOne);
        safe = arith::SelectOp::create(b, loc, overflows, one, safe);
      }
      op->setOperand(1, safe);
    }
    sites.save(module);
  }
};

} // namespace
