//===- CheckUpstreamIndices.cpp - Runtime checks for upstream indexing ----===//
//
// tensor.extract/insert and memref.load/store written in IR files get the
// runtime index checks kiln's indexing ops have (see Passes.td); upstream
// ops that address memory through positions that are not checked are
// errors.
//
//===----------------------------------------------------------------------===//

#include "../ErrorSites.h"
#include "kiln/Conversion/Passes.h"
#include "kiln/Dialect/Kiln/IR/KilnOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/Matchers.h"
#include "mlir/Interfaces/ViewLikeInterface.h"
#include "llvm/ADT/TypeSwitch.h"

namespace kiln {
#define GEN_PASS_DEF_KILNCHECKUPSTREAMINDICES
#include "kiln/Conversion/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using kiln::conversion::ErrorSites;

namespace {

/// An element access: the tensor or memref it addresses and its indices.
struct Access {
  Value shaped;
  OperandRange indices;
};

std::optional<Access> getAccess(Operation *op) {
  return llvm::TypeSwitch<Operation *, std::optional<Access>>(op)
      .Case([](tensor::ExtractOp x) {
        return Access{x.getTensor(), x.getIndices()};
      })
      .Case([](tensor::InsertOp x) {
        return Access{x.getDest(), x.getIndices()};
      })
      .Case([](memref::LoadOp x) {
        return Access{x.getMemRef(), x.getIndices()};
      })
      .Case([](memref::StoreOp x) {
        return Access{x.getMemRef(), x.getIndices()};
      })
      .Default([](Operation *) { return std::nullopt; });
}

bool isConstant(Value value) { return matchPattern(value, m_Constant()); }

/// Why `op` addresses memory through positions no check covers, or null.
const char *uncheckedPositions(Operation *op) {
  if (auto view = dyn_cast<OffsetSizeAndStrideOpInterface>(op)) {
    if (!view.getOffsets().empty() || !view.getSizes().empty() ||
        !view.getStrides().empty())
      return "with dynamic offsets, sizes or strides";
    return nullptr;
  }
  if (auto dim = dyn_cast<tensor::DimOp>(op))
    return isConstant(dim.getIndex()) ? nullptr : "of a non-constant dim";
  if (auto dim = dyn_cast<memref::DimOp>(op))
    return isConstant(dim.getIndex()) ? nullptr : "of a non-constant dim";
  if (isa<tensor::GatherOp, tensor::ScatterOp>(op))
    return "";
  if (op->getDialect() && isa<vector::VectorDialect>(op->getDialect()) &&
      llvm::any_of(op->getOperands(),
                   [](Value operand) {
                     return isa<IndexType>(operand.getType()) &&
                            !isConstant(operand);
                   }) &&
      llvm::any_of(op->getOperandTypes(), [](Type type) {
        return isa<MemRefType, RankedTensorType>(type);
      }))
    return "with non-constant indices";
  return nullptr;
}

struct KilnCheckUpstreamIndicesPass
    : kiln::impl::KilnCheckUpstreamIndicesBase<KilnCheckUpstreamIndicesPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    bool failed = false;
    SmallVector<Operation *> accesses;
    module.walk([&](Operation *op) {
      if (const char *why = uncheckedPositions(op)) {
        op->emitOpError() << (*why ? why : "") << (*why ? " " : "")
                          << "is not supported by Kiln: its positions are "
                             "not bounds-checked at run time";
        failed = true;
        return;
      }
      std::optional<Access> access = getAccess(op);
      if (!access)
        return;
      auto type = cast<ShapedType>(access->shaped.getType());
      if (!isa<IntegerType, FloatType, IndexType>(type.getElementType())) {
        op->emitOpError() << "on elements of type " << type.getElementType()
                          << " is not supported by Kiln";
        failed = true;
        return;
      }
      bool checked = false;
      for (auto [dim, index] : llvm::enumerate(access->indices)) {
        APInt value;
        if (!matchPattern(index, m_ConstantInt(&value))) {
          checked = true;
          continue;
        }
        int64_t position = value.getSExtValue();
        if (type.isDynamicDim(dim)) {
          checked = true;
          continue;
        }
        if (position < 0 || position >= type.getDimSize(dim)) {
          op->emitOpError()
              << "index " << position << " is out of bounds for dim " << dim
              << " of size " << type.getDimSize(dim);
          failed = true;
        }
      }
      if (checked)
        accesses.push_back(op);
    });
    if (failed)
      return signalPassFailure();
    if (accesses.empty())
      return;

    ErrorSites sites = ErrorSites::load(module);
    for (Operation *op : accesses)
      guard(op, sites.add(op));
    sites.save(module);
  }

  /// Runs `op` only when every index is in range; otherwise reports the
  /// first bad one and yields a neutral result.
  void guard(Operation *op, int64_t site) {
    Access access = *getAccess(op);
    Location loc = op->getLoc();
    OpBuilder b(op);
    auto type = cast<ShapedType>(access.shaped.getType());
    SmallVector<Value> indices(access.indices), sizes, inRange;
    for (auto [dim, index] : llvm::enumerate(indices)) {
      Value size;
      if (!type.isDynamicDim(dim))
        size = arith::ConstantIndexOp::create(b, loc, type.getDimSize(dim));
      else if (isa<MemRefType>(type))
        size = b.createOrFold<memref::DimOp>(loc, access.shaped, dim);
      else
        size = b.createOrFold<tensor::DimOp>(loc, access.shaped, dim);
      sizes.push_back(size);
      // Unsigned: a negative index is out of range too.
      inRange.push_back(arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult,
                                              index, size));
    }
    Value ok = inRange.front();
    for (Value next : llvm::drop_begin(inRange))
      ok = arith::AndIOp::create(b, loc, ok, next);

    auto report = [&](OpBuilder &eb, Location l) {
      for (size_t dim = 0; dim < indices.size(); ++dim) {
        Value bad = arith::XOrIOp::create(
            eb, l, inRange[dim], arith::ConstantIntOp::create(eb, l, 1, 1));
        scf::IfOp::create(eb, l, bad, [&](OpBuilder &rb, Location rl) {
          auto i64 = rb.getI64Type();
          kiln::ReportIndexErrorOp::create(
              rb, rl, arith::IndexCastOp::create(rb, rl, i64, indices[dim]),
              arith::IndexCastOp::create(rb, rl, i64, sizes[dim]),
              rb.getI64IntegerAttr(site));
          scf::YieldOp::create(rb, rl);
        });
      }
    };
    auto elseBranch = [&](OpBuilder &eb, Location l) {
      report(eb, l);
      SmallVector<Value> results;
      if (auto insert = dyn_cast<tensor::InsertOp>(op))
        results.push_back(insert.getDest());
      else if (op->getNumResults() == 1) {
        Type element = op->getResult(0).getType();
        results.push_back(arith::ConstantOp::create(
            eb, l, cast<TypedAttr>(eb.getZeroAttr(element))));
      }
      scf::YieldOp::create(eb, l, results);
    };
    auto thenBranch = [&](OpBuilder &tb, Location l) {
      Operation *clone = tb.clone(*op);
      scf::YieldOp::create(tb, l, clone->getResults());
    };
    auto ifOp = scf::IfOp::create(b, loc, ok, thenBranch, elseBranch);
    op->replaceAllUsesWith(ifOp.getResults());
    op->erase();
  }
};

} // namespace
