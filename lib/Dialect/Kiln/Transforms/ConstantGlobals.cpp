//===- ConstantGlobals.cpp - Deterministic globals for tensor constants ---===//
//
// One-Shot Bufferize turns each tensor `arith.constant` into a
// `memref.get_global` of a `memref.global` named `__constant_<type>[_N]`,
// reusing an existing global with the same value and alignment. LLVM 22
// bufferizes independent functions in a pointer-dependent order, so the
// numbering of those names varied between runs. This pass creates the
// globals first, in program order, with the same helper bufferization uses.
//
//===----------------------------------------------------------------------===//

#include "kiln/Dialect/Kiln/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/Transforms/BufferUtils.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/SymbolTable.h"

namespace kiln {
#define GEN_PASS_DEF_KILNCONSTANTGLOBALS
#include "kiln/Dialect/Kiln/Transforms/Passes.h.inc"
} // namespace kiln

using namespace mlir;

namespace {
struct KilnConstantGlobalsPass
    : kiln::impl::KilnConstantGlobalsBase<KilnConstantGlobalsPass> {
  using Base::Base;

  void runOnOperation() override {
    SymbolTableCollection symbolTables;
    WalkResult result = getOperation().walk([&](arith::ConstantOp constant) {
      if (!isa<RankedTensorType>(constant.getType()))
        return WalkResult::advance();
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
