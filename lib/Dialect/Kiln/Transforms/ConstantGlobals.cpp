//===- ConstantGlobals.cpp - Deterministic globals for tensor constants ---===//
//
// One-Shot Bufferize turns each tensor `arith.constant` into a
// `memref.get_global` of a `memref.global` named `__constant_<type>[_N]`,
// reusing an existing global with the same value and alignment. LLVM 22
// bufferizes independent functions in a pointer-dependent order, so the
// numbering of those names varied between runs. This pass creates the
// globals first, in program order, with the same helper bufferization uses.
//
// A large splat constant (a `kiln.full` or `zeros` returned as it is) is
// written by a fill kernel instead: as a global it was compiled into the
// object element by element (30M floats: 1.9 s and 600 MB to compile, a
// 4 TB one aborted the compiler) and copied from there on every run.
//
//===----------------------------------------------------------------------===//

#include "kiln/Dialect/Kiln/IR/KilnDialect.h"
#include "kiln/Dialect/Kiln/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/Transforms/BufferUtils.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/SymbolTable.h"

namespace kiln {
#define GEN_PASS_DEF_KILNCONSTANTGLOBALS
#include "kiln/Dialect/Kiln/Transforms/Passes.h.inc"
} // namespace kiln

using namespace mlir;

namespace {
/// Splat constants from this size on are filled, not stored as globals.
constexpr int64_t kMinFilledSplatBytes = 4096;

struct KilnConstantGlobalsPass
    : kiln::impl::KilnConstantGlobalsBase<KilnConstantGlobalsPass> {
  using Base::Base;

  void runOnOperation() override {
    SymbolTableCollection symbolTables;
    WalkResult result = getOperation().walk([&](arith::ConstantOp constant) {
      auto type = dyn_cast<RankedTensorType>(constant.getType());
      if (!type)
        return WalkResult::advance();
      Type element = type.getElementType();
      if (auto splat = dyn_cast<SplatElementsAttr>(constant.getValue());
          splat && type.hasStaticShape() && element.isIntOrFloat() &&
          type.getNumElements() >=
              kMinFilledSplatBytes /
                  std::max<int64_t>(1, element.getIntOrFloatBitWidth() / 8)) {
        OpBuilder builder(constant);
        Location loc = constant.getLoc();
        Value empty = tensor::EmptyOp::create(builder, loc, type.getShape(),
                                              type.getElementType());
        Value scalar = arith::ConstantOp::create(
            builder, loc, cast<TypedAttr>(splat.getSplatValue<Attribute>()));
        Value filled =
            linalg::FillOp::create(builder, loc, scalar, empty).getResult(0);
        constant.replaceAllUsesWith(filled);
        // The fill is a kernel of the entry (kiln-run --stats).
        auto func = dyn_cast<func::FuncOp>(constant->getParentOp());
        auto count = getOperation()->getAttrOfType<IntegerAttr>(
            kiln::kKernelCountAttrName);
        if (func && func.isPublic() && count)
          getOperation()->setAttr(
              kiln::kKernelCountAttrName,
              IntegerAttr::get(count.getType(), count.getInt() + 1));
        constant.erase();
        return WalkResult::skip();
      }
      if (failed(
              bufferization::getGlobalFor(constant, symbolTables, alignment))) {
        constant.emitOpError("has no enclosing module for its global");
        return WalkResult::interrupt();
      }
      return WalkResult::advance();
    });
    if (result.wasInterrupted())
      signalPassFailure();
  }
};
} // namespace
