//===- ByteBools.cpp - i1 loads and stores as bytes -----------------------===//
//
// A bool tensor holds one byte per element (0 or 1). LLVM's loop
// vectorizer does not widen accesses of a type whose size is not its
// allocation size, and i1 (1 bit in a byte) is such a type: every load and
// store of a mask stayed scalar. Here each i1 (or vector of i1) load
// becomes an i8 load and a trunc, each i1 store a zext and an i8 store, and
// each GEP over i1 one over i8 (the same byte offsets); LLVM then
// vectorizes them like any byte access.
//
//===----------------------------------------------------------------------===//

#include "kiln/Dialect/Kiln/Transforms/Passes.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/BuiltinOps.h"

namespace kiln {
#define GEN_PASS_DEF_KILNBYTEBOOLS
#include "kiln/Dialect/Kiln/Transforms/Passes.h.inc"
} // namespace kiln

using namespace mlir;

namespace {

/// `type` with i1 elements as i8, or null when it holds no i1.
Type asBytes(Type type) {
  Builder b(type.getContext());
  if (type.isInteger(1))
    return b.getI8Type();
  if (auto vector = dyn_cast<VectorType>(type))
    if (vector.getElementType().isInteger(1))
      return vector.clone(b.getI8Type());
  return nullptr;
}

struct KilnByteBoolsPass : kiln::impl::KilnByteBoolsBase<KilnByteBoolsPass> {
  void runOnOperation() override {
    getOperation()->walk([](Operation *op) {
      OpBuilder b(op);
      if (auto load = dyn_cast<LLVM::LoadOp>(op)) {
        Type bytes = asBytes(load.getType());
        if (!bytes)
          return;
        // The same op with the byte type (alignment, volatility, alias
        // scopes and the other attributes carried over).
        Operation *byteLoad = b.clone(*load);
        byteLoad->getResult(0).setType(bytes);
        b.setInsertionPointAfter(byteLoad);
        Value bools = LLVM::TruncOp::create(b, load.getLoc(), load.getType(),
                                            byteLoad->getResult(0));
        load.replaceAllUsesWith(bools);
        load.erase();
        return;
      }
      if (auto store = dyn_cast<LLVM::StoreOp>(op)) {
        Type bytes = asBytes(store.getValue().getType());
        if (!bytes)
          return;
        Value widened =
            LLVM::ZExtOp::create(b, store.getLoc(), bytes, store.getValue());
        store.getValueMutable().assign(widened);
        return;
      }
      if (auto gep = dyn_cast<LLVM::GEPOp>(op)) {
        if (Type bytes = asBytes(gep.getElemType());
            bytes && bytes.isInteger(8))
          gep.setElemType(bytes);
      }
    });
  }
};

} // namespace
