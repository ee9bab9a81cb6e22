//===- IterationScratch.cpp - Per-iteration buffers on the stack ----------===//
//
// A worksharing loop iteration's small scratch buffers (allocated and freed
// in its body) become one stack allocation per thread of the parallel
// region. See the pass's description in Passes.td.
//
//===----------------------------------------------------------------------===//

#include "kiln/Dialect/Kiln/Transforms/Passes.h"

#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/OpenMP/OpenMPDialect.h"

namespace kiln {
#define GEN_PASS_DEF_KILNITERATIONSCRATCH
#include "kiln/Dialect/Kiln/Transforms/Passes.h.inc"
} // namespace kiln

using namespace mlir;

namespace {

/// The bytes of a static buffer of int or float elements (a byte per i1).
uint64_t bufferBytes(MemRefType type) {
  uint64_t bits = type.getElementTypeBitWidth();
  return type.getNumElements() * ((bits + 7) / 8);
}

/// The parallel region whose threads run the worksharing loop whose body
/// holds `alloc` directly; otherwise null.
omp::ParallelOp enclosingParallel(memref::AllocOp alloc) {
  auto nest = dyn_cast_or_null<omp::LoopNestOp>(alloc->getParentOp());
  if (!nest || !alloc->getBlock()->isEntryBlock())
    return {};
  auto wsloop = dyn_cast_or_null<omp::WsloopOp>(nest->getParentOp());
  if (!wsloop)
    return {};
  return dyn_cast_or_null<omp::ParallelOp>(wsloop->getParentOp());
}

/// The one dealloc of `alloc` when it lies later in the alloc's block, and
/// `alloc` is a static buffer of at most `maxBytes` bytes; otherwise null.
memref::DeallocOp iterationDealloc(memref::AllocOp alloc, uint64_t maxBytes) {
  MemRefType type = alloc.getType();
  if (!type.hasStaticShape() || !type.getElementType().isIntOrFloat() ||
      bufferBytes(type) > maxBytes)
    return {};
  memref::DeallocOp dealloc;
  for (Operation *user : alloc->getUsers()) {
    auto candidate = dyn_cast<memref::DeallocOp>(user);
    if (!candidate)
      continue;
    if (dealloc || candidate->getBlock() != alloc->getBlock() ||
        !alloc->isBeforeInBlock(candidate))
      return {};
    dealloc = candidate;
  }
  return dealloc;
}

struct KilnIterationScratchPass
    : kiln::impl::KilnIterationScratchBase<KilnIterationScratchPass> {
  using KilnIterationScratchBase::KilnIterationScratchBase;

  void runOnOperation() override {
    struct Scratch {
      memref::AllocOp alloc;
      memref::DeallocOp dealloc;
      omp::ParallelOp parallel;
    };
    SmallVector<Scratch> scratch;
    // The bytes each region's threads already take on their stacks: a
    // region stops at maxRegionBytes (a kernel with many reductions, each
    // its own buffers, on a caller's thread with a small stack).
    llvm::DenseMap<Operation *, uint64_t> regionBytes;
    getOperation()->walk([&](memref::AllocOp alloc) {
      omp::ParallelOp parallel = enclosingParallel(alloc);
      if (!parallel)
        return;
      memref::DeallocOp dealloc = iterationDealloc(alloc, maxBytes);
      if (!dealloc)
        return;
      uint64_t &taken = regionBytes[parallel];
      uint64_t bytes = bufferBytes(alloc.getType());
      if (taken + bytes > maxRegionBytes)
        return;
      taken += bytes;
      scratch.push_back({alloc, dealloc, parallel});
    });
    // Each at the region's start, the last first: in their order there.
    for (auto [alloc, dealloc, parallel] : llvm::reverse(scratch)) {
      // At the start of the region each thread of `parallel` runs once;
      // the thread's iterations run one after another, each done with the
      // buffer before the next begins.
      OpBuilder b = OpBuilder::atBlockBegin(&parallel.getRegion().front());
      auto alloca = memref::AllocaOp::create(
          b, alloc.getLoc(), alloc.getType(), alloc.getDynamicSizes(),
          alloc.getSymbolOperands(), alloc.getAlignmentAttr());
      alloc.replaceAllUsesWith(alloca.getResult());
      dealloc.erase();
      alloc.erase();
    }
  }
};

} // namespace
