//===- StreamingStores.cpp - Large write-only kernel outputs --------------===//
//
// A kernel that only writes a large output (an elementwise chain over 16M
// elements) moves each of its cache lines
// three times with ordinary stores: the store misses, the line is read
// from memory (read for ownership), then written back. Non-temporal stores
// write whole lines without reading them -- a third less traffic -- but
// x86 requires them aligned to the vector's size. This pass marks such
// outputs, makes their stores provably aligned where it can, and leaves
// the choice of the instruction to the CPU compiler (CpuCompiler.cpp),
// which sees the vector stores LLVM's vectorizer made and their alignment.
//
//===----------------------------------------------------------------------===//

#include "kiln/Dialect/Kiln/Transforms/Passes.h"
#include "kiln/Support/Buffers.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/Dominance.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Interfaces/LoopLikeInterface.h"
#include "mlir/Interfaces/ViewLikeInterface.h"

namespace kiln {
#define GEN_PASS_DEF_KILNSTREAMINGSTORES
#define GEN_PASS_DEF_KILNALIGNMENTMASKS
#include "kiln/Dialect/Kiln/Transforms/Passes.h.inc"
} // namespace kiln

using namespace mlir;

namespace {

/// Non-temporal vector stores need this alignment (a 512-bit vector's
/// size, which covers the narrower ones).
constexpr int64_t kStreamAlignment = 64;

/// One-dimensional loops over a streaming buffer run in blocks of this many
/// iterations, so that each block (and the vector loop LLVM makes of it)
/// starts on an aligned element.
constexpr int64_t kStreamBlock = 4096;

/// Whether `value` (a memref, or a view of one) is only ever stored to:
/// used by memref.store / vector.store as the buffer, or by views whose
/// results are only stored to.
bool isWriteOnly(Value value) {
  for (OpOperand &use : value.getUses()) {
    Operation *user = use.getOwner();
    if (auto store = dyn_cast<memref::StoreOp>(user)) {
      if (use.getOperandNumber() != store.getMemrefMutable().getOperandNumber())
        return false;
      continue;
    }
    if (auto store = dyn_cast<vector::StoreOp>(user)) {
      if (use.getOperandNumber() != store.getBaseMutable().getOperandNumber())
        return false;
      continue;
    }
    auto view = dyn_cast<ViewLikeOpInterface>(user);
    if (!view || view.getViewSource() != value ||
        !llvm::all_of(user->getResults(), isWriteOnly))
      return false;
  }
  return true;
}

/// The streaming arguments of `kernel`: memrefs of at least `minBytes`
/// that only the kernel's stores use, in buffer groups whose every
/// argument is such a memref (no other argument reads the allocation).
/// Fills `groups` with their buffer groups.
SmallVector<BlockArgument> streamingArguments(func::FuncOp kernel,
                                              uint64_t minBytes,
                                              SmallVector<int64_t> &groups) {
  auto bufferGroups =
      kernel->getAttrOfType<DenseI64ArrayAttr>(kiln::kBufferGroupsAttr);
  if (!bufferGroups || kernel.getBody().empty())
    return {};
  ArrayRef<int64_t> groupOf = bufferGroups.asArrayRef();
  // Per argument: a large, write-only memref of a known group.
  SmallVector<bool> qualifies;
  for (BlockArgument argument : kernel.getArguments()) {
    unsigned index = argument.getArgNumber();
    auto type = dyn_cast<MemRefType>(argument.getType());
    bool large =
        type && type.hasStaticShape() && type.getLayout().isIdentity() &&
        type.getElementType().isIntOrFloat() &&
        static_cast<uint64_t>(
            type.getNumElements() *
            llvm::divideCeil(type.getElementTypeBitWidth(), 8)) >= minBytes;
    qualifies.push_back(index < groupOf.size() && groupOf[index] >= 0 &&
                        large && isWriteOnly(argument));
  }
  SmallVector<BlockArgument> arguments;
  for (BlockArgument argument : kernel.getArguments()) {
    unsigned index = argument.getArgNumber();
    if (!qualifies[index])
      continue;
    // Every argument of its group qualifies (none reads the allocation).
    bool wholeGroup = llvm::all_of(kernel.getArguments(), [&](auto other) {
      unsigned at = other.getArgNumber();
      return at >= groupOf.size() || groupOf[at] != groupOf[index] ||
             qualifies[at];
    });
    if (!wholeGroup)
      continue;
    arguments.push_back(argument);
    if (!llvm::is_contained(groups, groupOf[index]))
      groups.push_back(groupOf[index]);
  }
  return arguments;
}

/// Whether `op` stores to one of `buffers` (or a view of one).
bool storesTo(Operation *op, ArrayRef<BlockArgument> buffers) {
  WalkResult result = op->walk([&](Operation *inner) {
    Value memref;
    if (auto store = dyn_cast<memref::StoreOp>(inner))
      memref = store.getMemRef();
    else if (auto store = dyn_cast<vector::StoreOp>(inner))
      memref = store.getBase();
    if (memref && llvm::is_contained(buffers, kiln::viewedBuffer(memref)))
      return WalkResult::interrupt();
    return WalkResult::advance();
  });
  return result.wasInterrupted();
}

/// scf.parallel (i) = (0) to (n) step (1) { body }  ->
/// scf.parallel (b) = (0) to (ceil(n / B)) step (1) {
///   scf.for i = b * B to min(b * B + B, n) { body } }
/// for a one-dimensional loop with more than B iterations and no loops
/// inside (an elementwise kernel over a flat buffer): each block of
/// B = kStreamBlock iterations starts at a multiple of B, so its stores at
/// `i` start aligned (an outermost loop split among threads otherwise
/// starts each thread's range anywhere).
void blockLoop(scf::ParallelOp loop) {
  if (loop.getNumLoops() != 1 || !loop.getInitVals().empty())
    return;
  std::optional<int64_t> lower = getConstantIntValue(loop.getLowerBound()[0]);
  std::optional<int64_t> upper = getConstantIntValue(loop.getUpperBound()[0]);
  std::optional<int64_t> step = getConstantIntValue(loop.getStep()[0]);
  if (lower != 0 || step != 1 || !upper || *upper <= kStreamBlock)
    return;
  // Only a loop of one element per iteration: a loop over rows (with loops
  // inside) keeps its rows' parallelism.
  bool nested =
      loop.getBody()
          ->walk([](LoopLikeOpInterface) { return WalkResult::interrupt(); })
          .wasInterrupted();
  if (nested)
    return;
  int64_t n = *upper;
  OpBuilder b(loop);
  Location loc = loop.getLoc();
  auto constant = [&](OpBuilder &builder, int64_t value) {
    return arith::ConstantIndexOp::create(builder, loc, value);
  };
  Value zero = constant(b, 0), one = constant(b, 1);
  Value blocks = constant(b, llvm::divideCeil(n, kStreamBlock));
  auto blocked = scf::ParallelOp::create(
      b, loc, ValueRange{zero}, ValueRange{blocks}, ValueRange{one},
      [&](OpBuilder &nb, Location l, ValueRange ivs) {
        Value size = constant(nb, kStreamBlock);
        Value begin = arith::MulIOp::create(nb, l, ivs[0], size);
        Value end = arith::AddIOp::create(nb, l, begin, size);
        if (n % kStreamBlock != 0)
          end = arith::MinSIOp::create(nb, l, end, constant(nb, n));
        scf::ForOp::create(nb, l, begin, end, constant(nb, 1), ValueRange{},
                           [&](OpBuilder &ib, Location, Value i, ValueRange) {
                             IRMapping mapping;
                             mapping.map(loop.getInductionVars()[0], i);
                             for (Operation &op :
                                  loop.getBody()->without_terminator())
                               ib.clone(op, mapping);
                             scf::YieldOp::create(ib, l);
                           });
      });
  blocked->setAttrs(loop->getDiscardableAttrDictionary());
  loop.erase();
}

/// At the start of `block`: `llvm.intr.assume` that `buffer`'s aligned
/// pointer is 64-byte aligned (kiln-alignment-masks turns it into a mask
/// of the pointer). Not memref.assume_alignment: that op has no side
/// effects, and once expand-strided-metadata reads a view's base from the
/// buffer itself, nothing uses it and it is erased.
void assumeAligned(BlockArgument buffer, Block &block) {
  OpBuilder b = OpBuilder::atBlockBegin(&block);
  Location loc = buffer.getLoc();
  Value address =
      memref::ExtractAlignedPointerAsIndexOp::create(b, loc, buffer);
  Value integer = arith::IndexCastOp::create(b, loc, b.getI64Type(), address);
  Value pointer = LLVM::IntToPtrOp::create(
      b, loc, LLVM::LLVMPointerType::get(b.getContext()), integer);
  Value alignment = LLVM::ConstantOp::create(
      b, loc, b.getI64Type(), b.getI64IntegerAttr(kStreamAlignment));
  Value yes =
      LLVM::ConstantOp::create(b, loc, b.getI1Type(), b.getBoolAttr(true));
  LLVM::AssumeOp::create(b, loc, yes, LLVM::AssumeAlignTag(), pointer,
                         alignment);
}

struct KilnStreamingStoresPass
    : kiln::impl::KilnStreamingStoresBase<KilnStreamingStoresPass> {
  using KilnStreamingStoresBase::KilnStreamingStoresBase;

  void runOnOperation() override {
    getOperation().walk([&](func::FuncOp kernel) { runOnKernel(kernel); });
  }

  void runOnKernel(func::FuncOp kernel) {
    SmallVector<int64_t> groups;
    SmallVector<BlockArgument> buffers =
        streamingArguments(kernel, minBytes, groups);
    if (buffers.empty() || !kernel.getBody().hasOneBlock())
      return;
    Block &body = kernel.getBody().front();
    auto ret = dyn_cast<func::ReturnOp>(body.getTerminator());
    if (!ret || ret.getNumOperands() != 0)
      return; // a kernel returning vectors: left as it is
    for (auto loop : llvm::make_early_inc_range(body.getOps<scf::ParallelOp>()))
      if (storesTo(loop, buffers))
        blockLoop(loop);

    // Versioned on the alignment: the code that may use non-temporal
    // stores runs only when every streaming buffer starts 64-byte aligned
    // (the runtime allocates every buffer so; a caller of a compiled
    // object may not).
    SmallVector<Operation *> original;
    for (Operation &op : body.without_terminator())
      original.push_back(&op);
    OpBuilder b = OpBuilder::atBlockBegin(&body);
    Location loc = kernel.getLoc();
    Value aligned;
    for (BlockArgument buffer : buffers) {
      Value address =
          memref::ExtractAlignedPointerAsIndexOp::create(b, loc, buffer);
      Value low = arith::AndIOp::create(
          b, loc, address,
          arith::ConstantIndexOp::create(b, loc, kStreamAlignment - 1));
      Value isAligned =
          arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, low,
                                arith::ConstantIndexOp::create(b, loc, 0));
      aligned = aligned ? arith::AndIOp::create(b, loc, aligned, isAligned)
                        : isAligned;
    }
    auto version = scf::IfOp::create(b, loc, aligned, /*withElseRegion=*/true);
    Block *thenBlock = version.thenBlock(), *elseBlock = version.elseBlock();
    // The original ops into the else branch, a copy into the then branch.
    OpBuilder thenBuilder = OpBuilder::atBlockTerminator(thenBlock);
    IRMapping mapping;
    for (Operation *op : original) {
      thenBuilder.clone(*op, mapping);
      op->moveBefore(elseBlock->getTerminator());
    }
    // The then branch assumes the alignment, at its start (not inside a
    // parallel loop's body: an op without known memory effects there would
    // keep convert-scf-to-openmp's alloca scope from being inlined).
    for (BlockArgument buffer : buffers)
      assumeAligned(buffer, *thenBlock);
    kernel->setAttr(kiln::kStreamingGroupsAttr, b.getDenseI64ArrayAttr(groups));
  }
};

} // namespace

//===----------------------------------------------------------------------===//
// kiln-alignment-masks
//===----------------------------------------------------------------------===//

namespace {

/// The memref a descriptor is the conversion cast of (each use of a memref
/// argument gets its own cast), or the descriptor itself.
Value bufferOf(Value descriptor) {
  if (auto cast = descriptor.getDefiningOp<UnrealizedConversionCastOp>())
    if (cast->getNumOperands() == 1 &&
        isa<BaseMemRefType>(cast->getOperand(0).getType()))
      return cast->getOperand(0);
  return descriptor;
}

/// `llvm.intr.assume %true ["align"(%p, %a)]` where %p is a descriptor's
/// aligned pointer (`llvm.extractvalue %d[1]`, or an integer round trip
/// of it) becomes nothing, and each read of %d's aligned pointer the
/// assumption dominates is followed by `llvm.intr.ptrmask` of it with -a,
/// which its users read instead: the same address (the assumption says its
/// low bits are zero), whose alignment LLVM derives from the mask. The
/// assumption alone is lost when the OpenMP translation outlines a parallel
/// loop's body (no `llvm.assume` call reaches the outlined function), and
/// with it the alignment of the body's stores.
struct KilnAlignmentMasksPass
    : kiln::impl::KilnAlignmentMasksBase<KilnAlignmentMasksPass> {
  void runOnOperation() override {
    SmallVector<LLVM::AssumeOp> assumes;
    getOperation().walk(
        [&](LLVM::AssumeOp assume) { assumes.push_back(assume); });
    DominanceInfo dominance(getOperation());
    for (LLVM::AssumeOp assume : assumes) {
      std::optional<ArrayAttr> tags = assume.getOpBundleTags();
      if (!tags || tags->size() != 1 ||
          cast<StringAttr>((*tags)[0]).getValue() != "align")
        continue;
      OperandRange bundle = assume.getOpBundleOperands()[0];
      if (bundle.size() != 2)
        continue;
      // The pointer, possibly through an integer round trip (what
      // memref.extract_aligned_pointer_as_index leaves).
      Value address = bundle[0];
      if (auto toPointer = address.getDefiningOp<LLVM::IntToPtrOp>())
        if (auto toInteger =
                toPointer.getArg().getDefiningOp<LLVM::PtrToIntOp>())
          address = toInteger.getArg();
      auto pointer = address.getDefiningOp<LLVM::ExtractValueOp>();
      std::optional<int64_t> alignment = getConstantIntValue(bundle[1]);
      if (!pointer || pointer.getPosition() != ArrayRef<int64_t>{1} ||
          !alignment || !llvm::isPowerOf2_64(*alignment))
        continue;
      Value buffer = bufferOf(pointer.getContainer());
      // Every read of the buffer's aligned pointer the assumption
      // dominates (in the parallel loops' bodies too) is masked where it
      // is read: a masked pointer passed into an outlined body would
      // arrive there as a plain pointer again.
      SmallVector<LLVM::ExtractValueOp> reads;
      getOperation().walk([&](LLVM::ExtractValueOp extract) {
        if (extract.getPosition() == ArrayRef<int64_t>{1} &&
            bufferOf(extract.getContainer()) == buffer &&
            dominance.properlyDominates(assume.getOperation(), extract))
          reads.push_back(extract);
      });
      for (LLVM::ExtractValueOp extract : reads) {
        OpBuilder b(extract->getContext());
        b.setInsertionPointAfter(extract);
        Location loc = extract.getLoc();
        Value mask = LLVM::ConstantOp::create(b, loc, b.getI64Type(),
                                              b.getI64IntegerAttr(-*alignment));
        Value masked = LLVM::PtrMaskOp::create(b, loc, extract.getType(),
                                               extract.getResult(), mask);
        extract.getResult().replaceAllUsesExcept(masked,
                                                 masked.getDefiningOp());
      }
      assume.erase();
    }
  }
};

} // namespace
