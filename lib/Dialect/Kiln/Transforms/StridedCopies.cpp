//===- StridedCopies.cpp - Non-contiguous memref.copy to loops ------------===//

#include "kiln/Dialect/Kiln/Transforms/Passes.h"

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/MemRef/Utils/MemRefUtils.h"

namespace kiln {
#define GEN_PASS_DEF_KILNSTRIDEDCOPIES
#include "kiln/Dialect/Kiln/Transforms/Passes.h.inc"
} // namespace kiln

using namespace mlir;

namespace {
/// Whether finalize-memref-to-llvm lowers a copy from or to `type` to a
/// `memcpy`: the test it applies (an identity layout, or a static, non-empty
/// shape laid out contiguously in row-major order at any offset).
bool copiesAsMemcpy(Type type) {
  auto memref = dyn_cast<MemRefType>(type);
  return memref && (memref.getLayout().isIdentity() ||
                    (memref.hasStaticShape() && memref.getNumElements() > 0 &&
                     memref::isStaticShapeAndContiguousRowMajor(memref)));
}

/// Whether `copy` copies a buffer onto itself: the same value, or two
/// subviews of one buffer with the same operands and attributes (what a
/// bufferized scf.forall's parallel_insert_slice of the slice it extracted
/// leaves before CSE makes them one value).
bool isSelfCopy(memref::CopyOp copy) {
  Value source = copy.getSource(), target = copy.getTarget();
  if (source == target)
    return true;
  auto sourceView = source.getDefiningOp<memref::SubViewOp>();
  auto targetView = target.getDefiningOp<memref::SubViewOp>();
  return sourceView && targetView &&
         OperationEquivalence::isEquivalentTo(
             sourceView, targetView, OperationEquivalence::IgnoreLocations);
}

struct KilnStridedCopiesPass
    : kiln::impl::KilnStridedCopiesBase<KilnStridedCopiesPass> {
  void runOnOperation() override {
    SmallVector<memref::CopyOp> selfCopies, strided;
    getOperation()->walk([&](memref::CopyOp copy) {
      if (isSelfCopy(copy))
        selfCopies.push_back(copy);
      else if (!copiesAsMemcpy(copy.getSource().getType()) ||
               !copiesAsMemcpy(copy.getTarget().getType()))
        strided.push_back(copy);
    });
    // Nothing to do; as loops they would survive canonicalization.
    for (memref::CopyOp copy : selfCopies)
      copy.erase();
    for (memref::CopyOp copy : strided) {
      OpBuilder b(copy);
      linalg::CopyOp::create(b, copy.getLoc(), copy.getSource(),
                             copy.getTarget());
      copy.erase();
    }
  }
};
} // namespace
