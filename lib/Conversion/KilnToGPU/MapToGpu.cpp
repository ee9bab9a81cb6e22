//===- MapToGpu.cpp - Bufferized loop nests to GPU kernels ----------------===//
//
// The GPU pipeline's bridge from the CPU lowering (linalg on memrefs) to the
// gpu dialect: every loop nest of a host function becomes a gpu.launch, and
// the host function keeps only allocation, views, launches and runtime calls
// (which take device pointers on this target).
//
//===----------------------------------------------------------------------===//

#include "kiln/Conversion/Passes.h"
#include "kiln/Dialect/Kiln/IR/KilnIndexMath.h"
#include "kiln/Dialect/Kiln/IR/KilnOps.h"
#include "kiln/Runtime/GpuErrorRecord.h"
#include "kiln/Support/Buffers.h"

#include "mlir/Dialect/Affine/Utils.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/SCF/Utils/Utils.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Interfaces/ViewLikeInterface.h"

#include <limits>

namespace kiln {
#define GEN_PASS_DEF_KILNMAPTOGPU
#include "kiln/Conversion/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;

namespace {

/// Threads per block of the generated kernels.
constexpr int64_t kBlockSize = 256;

/// The runtime function returning the device-visible error record.
constexpr llvm::StringLiteral kErrorRecordFn = "kiln_gpu_error_record";

/// Builds, at b's insertion point, a gpu.launch over the linear indices
/// [0, count): each thread takes `perThread` indices a block apart, and
/// `body(b, loc, indices)` builds its work. With one index per thread the
/// last block's threads past `count` do nothing; with more, `count` must
/// be a multiple of the block times `perThread`.
void buildLaunch(
    OpBuilder &b, Location loc, int64_t count,
    function_ref<void(OpBuilder &, Location, ArrayRef<Value>)> body,
    int64_t perThread = 1) {
  int64_t threads = std::min(count, kBlockSize);
  assert((perThread == 1 || count % (threads * perThread) == 0) &&
         "several indices per thread need whole blocks");
  int64_t blocks = llvm::divideCeil(count, threads * perThread);
  Value one = indexConstant(b, loc, 1);
  auto launch =
      gpu::LaunchOp::create(b, loc, indexConstant(b, loc, blocks), one, one,
                            indexConstant(b, loc, threads), one, one);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(&launch.getBody().front());
  Value first = arith::AddIOp::create(
      b, loc,
      arith::MulIOp::create(b, loc, launch.getBlockIds().x,
                            indexConstant(b, loc, threads * perThread)),
      launch.getThreadIds().x);
  SmallVector<Value> indices{first};
  for (int64_t u = 1; u < perThread; ++u)
    indices.push_back(arith::AddIOp::create(
        b, loc, first, indexConstant(b, loc, u * threads)));
  if (count % threads == 0) {
    body(b, loc, indices);
  } else {
    Value inRange = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult,
                                          first, indexConstant(b, loc, count));
    scf::IfOp::create(b, loc, inRange, [&](OpBuilder &then, Location l) {
      body(then, l, indices);
      scf::YieldOp::create(then, l);
    });
  }
  gpu::TerminatorOp::create(b, loc);
}

/// Clones the ops of a generic's `payload` (block arguments already in
/// `mapping`) at one point: linalg.index, also nested in the payload's
/// loops, becomes the point's index `ivs[dim]`.
void clonePayload(OpBuilder &b, Block &payload, IRMapping &mapping,
                  ArrayRef<Value> ivs) {
  for (Operation &op : payload.without_terminator()) {
    if (auto indexOp = dyn_cast<linalg::IndexOp>(op)) {
      mapping.map(indexOp.getResult(), ivs[indexOp.getDim()]);
      continue;
    }
    Operation *cloned = b.clone(op, mapping);
    SmallVector<linalg::IndexOp> nested;
    cloned->walk([&](linalg::IndexOp n) { nested.push_back(n); });
    for (linalg::IndexOp n : nested) {
      n.replaceAllUsesWith(ivs[n.getDim()]);
      n.erase();
    }
  }
}

/// Points per thread of the vectorized elementwise kernels.
constexpr int64_t kVectorWidth = 4;

/// How an operand of a vectorized kernel is read along the innermost dim.
enum class Access { Contiguous, Invariant };

/// The access of `operand` along loop dim `inner`, if the vectorized kernel
/// can read it: contiguous (the map's last result is `inner`, the memref
/// is dense and holds 32- or 64-bit elements) or invariant (the map does
/// not use `inner`).
std::optional<Access> innerAccess(linalg::GenericOp op, OpOperand &operand,
                                  unsigned inner) {
  auto type = dyn_cast<MemRefType>(operand.get().getType());
  if (!type)
    return Access::Invariant; // a scalar operand
  AffineMap map = op.getMatchingIndexingMap(&operand);
  if (!map.isFunctionOfDim(inner))
    return Access::Invariant;
  unsigned bits = type.getElementTypeBitWidth();
  if (!type.getLayout().isIdentity() || (bits != 32 && bits != 64) ||
      map.getNumResults() == 0)
    return std::nullopt;
  auto last = dyn_cast<AffineDimExpr>(map.getResults().back());
  if (!last || last.getPosition() != inner)
    return std::nullopt;
  for (AffineExpr expr : map.getResults().drop_back())
    if (expr.isFunctionOfDim(inner))
      return std::nullopt;
  // Rows must start 16-byte aligned: the innermost memref dim is a
  // multiple of the vector width.
  if (type.getShape().back() % kVectorWidth != 0)
    return std::nullopt;
  return Access::Contiguous;
}

/// The vectorized form of an elementwise generic: one thread per
/// kVectorWidth consecutive points of the innermost dim; contiguous
/// operands are loaded (and results stored) as one aligned vector, invariant
/// ones once; the payload runs once per point.
LogicalResult mapVectorized(linalg::GenericOp op, ArrayRef<int64_t> ranges,
                            int64_t count) {
  unsigned numLoops = ranges.size();
  if (numLoops == 0 || op.getNumReductionLoops() != 0 ||
      count < (int64_t(1) << 16))
    return failure();
  unsigned inner = numLoops - 1;
  if (ranges[inner] % kVectorWidth != 0)
    return failure();
  SmallVector<Access> accesses;
  for (OpOperand &operand : op->getOpOperands()) {
    std::optional<Access> access = innerAccess(op, operand, inner);
    if (!access)
      return failure();
    accesses.push_back(*access);
  }
  for (OpOperand &init : op.getDpsInitsMutable())
    if (accesses[init.getOperandNumber()] != Access::Contiguous)
      return failure();
  Block &payload = op.getRegion().front();
  OpBuilder b(op);
  Location loc = op.getLoc();
  SmallVector<int64_t> groups(ranges);
  groups[inner] /= kVectorWidth;
  buildLaunch(
      b, loc, count / kVectorWidth,
      [&](OpBuilder &tb, Location l, ArrayRef<Value> index) {
        SmallVector<Value> ivs = delinearize(tb, l, index[0], groups);
        ivs[inner] = arith::MulIOp::create(tb, l, ivs[inner],
                                           indexConstant(tb, l, kVectorWidth));
        // Loads: vectors for contiguous operands, scalars for invariant ones.
        SmallVector<IRMapping> lanes(kVectorWidth);
        for (OpOperand &operand : op->getOpOperands()) {
          BlockArgument arg = payload.getArgument(operand.getOperandNumber());
          if (arg.use_empty())
            continue;
          Value value = operand.get();
          auto type = dyn_cast<MemRefType>(value.getType());
          if (!type) {
            for (IRMapping &lane : lanes)
              lane.map(arg, value);
            continue;
          }
          SmallVector<Value> at =
              affine::expandAffineMap(tb, l,
                                      op.getMatchingIndexingMap(&operand), ivs)
                  .value();
          if (accesses[operand.getOperandNumber()] == Access::Invariant) {
            Value scalar = memref::LoadOp::create(tb, l, value, at);
            for (IRMapping &lane : lanes)
              lane.map(arg, scalar);
            continue;
          }
          auto vectorType =
              VectorType::get({kVectorWidth}, type.getElementType());
          unsigned bytes = kVectorWidth * type.getElementTypeBitWidth() / 8;
          Value vector = vector::LoadOp::create(tb, l, vectorType, value, at,
                                                /*nontemporal=*/false,
                                                llvm::MaybeAlign(bytes));
          for (int64_t e = 0; e < kVectorWidth; ++e)
            lanes[e].map(arg, vector::ExtractOp::create(tb, l, vector, e));
        }
        // The payload per point; results gathered into vectors and stored.
        SmallVector<SmallVector<Value>> results(op.getNumDpsInits());
        for (int64_t e = 0; e < kVectorWidth; ++e) {
          SmallVector<Value> laneIvs(ivs);
          laneIvs[inner] =
              arith::AddIOp::create(tb, l, ivs[inner], indexConstant(tb, l, e));
          clonePayload(tb, payload, lanes[e], laneIvs);
          auto yield = cast<linalg::YieldOp>(payload.getTerminator());
          for (auto [i, value] : llvm::enumerate(yield.getValues()))
            results[i].push_back(lanes[e].lookupOrDefault(value));
        }
        for (auto [init, values] :
             llvm::zip_equal(op.getDpsInitsMutable(), results)) {
          auto type = cast<MemRefType>(init.get().getType());
          auto vectorType =
              VectorType::get({kVectorWidth}, type.getElementType());
          unsigned bytes = kVectorWidth * type.getElementTypeBitWidth() / 8;
          Value vector =
              vector::FromElementsOp::create(tb, l, vectorType, values);
          SmallVector<Value> at =
              affine::expandAffineMap(tb, l, op.getMatchingIndexingMap(&init),
                                      ivs)
                  .value();
          vector::StoreOp::create(tb, l, vector, init.get(), at,
                                  /*nontemporal=*/false,
                                  llvm::MaybeAlign(bytes));
        }
      });
  op.erase();
  return success();
}

/// A linalg.generic on memrefs as a kernel: one thread per point of the
/// parallel dims (the innermost fastest), the reduction dims as sequential
/// loops in that thread. Operands are loaded through their indexing maps
/// and the payload is cloned.
LogicalResult mapGeneric(linalg::GenericOp op, bool vectorize) {
  OpBuilder b(op);
  Location loc = op.getLoc();
  SmallVector<int64_t> ranges = op.getStaticLoopRanges();
  if (llvm::any_of(ranges, ShapedType::isDynamic))
    return op.emitOpError("has a dynamic loop range; the GPU pipeline needs "
                          "static shapes");
  SmallVector<int64_t> parallelDims, reductionDims, parallelShape;
  for (auto [d, iterator] : llvm::enumerate(op.getIteratorTypesArray())) {
    if (iterator == utils::IteratorType::parallel) {
      parallelDims.push_back(d);
      parallelShape.push_back(ranges[d]);
    } else {
      reductionDims.push_back(d);
    }
  }
  int64_t count = ShapedType::getNumElements(parallelShape);
  if (count == 0) {
    op.erase();
    return success();
  }
  Block &payload = op.getRegion().front();
  // The payload at one point: its operands loaded through their indexing
  // maps (into `mapping`), then its ops cloned and its results stored.
  auto loadOperands = [&](OpBuilder &pb, Location pl, ArrayRef<Value> ivs,
                          IRMapping &mapping) {
    for (OpOperand &operand : op->getOpOperands()) {
      BlockArgument arg = payload.getArgument(operand.getOperandNumber());
      if (arg.use_empty())
        continue;
      Value value = operand.get();
      if (isa<MemRefType>(value.getType())) {
        SmallVector<Value> at =
            affine::expandAffineMap(pb, pl, op.getMatchingIndexingMap(&operand),
                                    ivs)
                .value();
        value = memref::LoadOp::create(pb, pl, value, at);
      }
      mapping.map(arg, value);
    }
  };
  auto computeAndStore = [&](OpBuilder &pb, Location pl, ArrayRef<Value> ivs,
                             IRMapping &mapping) {
    clonePayload(pb, payload, mapping, ivs);
    auto yield = cast<linalg::YieldOp>(payload.getTerminator());
    for (auto [value, init] :
         llvm::zip_equal(yield.getValues(), op.getDpsInitsMutable())) {
      SmallVector<Value> at =
          affine::expandAffineMap(pb, pl, op.getMatchingIndexingMap(&init), ivs)
              .value();
      memref::StoreOp::create(pb, pl, mapping.lookupOrDefault(value),
                              init.get(), at);
    }
  };
  auto pointIndices = [&](OpBuilder &pb, Location pl, Value index) {
    SmallVector<Value> ivs(ranges.size());
    for (auto [d, iv] : llvm::zip_equal(
             parallelDims, delinearize(pb, pl, index, parallelShape)))
      ivs[d] = iv;
    return ivs;
  };

  // With `vectorize`, elementwise kernels whose operands are contiguous
  // along the innermost dim (or constant along it) take four consecutive
  // points per thread with 16-byte vector loads and stores.
  if (vectorize && succeeded(mapVectorized(op, ranges, count)))
    return success();

  // Large elementwise kernels: each thread takes kUnroll points a block
  // apart and issues all their loads before any store (the buffers may
  // alias, so the compiler cannot move loads above stores itself): more
  // loads in flight per thread.
  constexpr int64_t kUnroll = 4;
  if (reductionDims.empty() && count >= (int64_t(1) << 20) &&
      count % (kBlockSize * kUnroll) == 0) {
    buildLaunch(
        b, loc, count,
        [&](OpBuilder &tb, Location l, ArrayRef<Value> indices) {
          SmallVector<SmallVector<Value>> ivs;
          SmallVector<IRMapping> mappings(indices.size());
          for (auto [index, mapping] : llvm::zip_equal(indices, mappings)) {
            ivs.push_back(pointIndices(tb, l, index));
            loadOperands(tb, l, ivs.back(), mapping);
          }
          for (auto [pointIvs, mapping] : llvm::zip_equal(ivs, mappings))
            computeAndStore(tb, l, pointIvs, mapping);
        },
        kUnroll);
    op.erase();
    return success();
  }

  buildLaunch(
      b, loc, count, [&](OpBuilder &tb, Location l, ArrayRef<Value> index) {
        SmallVector<Value> ivs = pointIndices(tb, l, index[0]);
        auto emitPoint = [&](OpBuilder &pb, Location pl) {
          IRMapping mapping;
          loadOperands(pb, pl, ivs, mapping);
          computeAndStore(pb, pl, ivs, mapping);
        };
        if (reductionDims.empty()) {
          emitPoint(tb, l);
          return;
        }
        SmallVector<Value> lbs, ubs, steps;
        for (int64_t d : reductionDims) {
          lbs.push_back(indexConstant(tb, l, 0));
          ubs.push_back(indexConstant(tb, l, ranges[d]));
          steps.push_back(indexConstant(tb, l, 1));
        }
        scf::buildLoopNest(tb, l, lbs, ubs, steps,
                           [&](OpBuilder &lb, Location ll, ValueRange loopIvs) {
                             for (auto [d, iv] :
                                  llvm::zip_equal(reductionDims, loopIvs))
                               ivs[d] = iv;
                             emitPoint(lb, ll);
                           });
      });
  op.erase();
  return success();
}

/// A bufferized scf.forall (the line-parallel scatters) as a kernel: one
/// thread per iteration, the innermost iteration dim fastest.
LogicalResult mapForall(scf::ForallOp op) {
  if (op.getNumResults() != 0)
    return op.emitOpError("is not bufferized");
  std::optional<SmallVector<int64_t>> lbs =
      getConstantIntValues(op.getMixedLowerBound());
  std::optional<SmallVector<int64_t>> ubs =
      getConstantIntValues(op.getMixedUpperBound());
  std::optional<SmallVector<int64_t>> steps =
      getConstantIntValues(op.getMixedStep());
  if (!lbs || !ubs || !steps ||
      llvm::any_of(*lbs, [](int64_t v) { return v != 0; }) ||
      llvm::any_of(*steps, [](int64_t v) { return v != 1; }))
    return op.emitOpError("needs static bounds from 0 in steps of 1 on the "
                          "GPU");
  int64_t count = ShapedType::getNumElements(*ubs);
  if (count > 0) {
    OpBuilder b(op);
    buildLaunch(b, op.getLoc(), count,
                [&](OpBuilder &tb, Location l, ArrayRef<Value> index) {
                  IRMapping mapping;
                  mapping.map(op.getInductionVars(),
                              delinearize(tb, l, index[0], *ubs));
                  for (Operation &nested : op.getBody()->without_terminator())
                    tb.clone(nested, mapping);
                });
  }
  op.erase();
  return success();
}

/// Elementwise copy between two memrefs of one shape (any layouts).
void buildCopyKernel(OpBuilder &b, Location loc, Value source, Value target) {
  ArrayRef<int64_t> shape = cast<MemRefType>(target.getType()).getShape();
  int64_t count = ShapedType::getNumElements(shape);
  if (count == 0)
    return;
  buildLaunch(
      b, loc, count, [&](OpBuilder &tb, Location l, ArrayRef<Value> index) {
        SmallVector<Value> at = delinearize(tb, l, index[0], shape);
        memref::StoreOp::create(
            tb, l, memref::LoadOp::create(tb, l, source, at), target, at);
      });
}

/// Whether `op` (and everything nested in it) may run on the host of a GPU
/// function: it neither reads nor writes tensor data.
bool staysOnHost(Operation *op) {
  auto local = [](Operation *nested) {
    if (isa<memref::AllocOp, memref::DeallocOp, memref::CastOp,
            memref::ExtractStridedMetadataOp,
            memref::ExtractAlignedPointerAsIndexOp, memref::DimOp, func::CallOp,
            func::ReturnOp, gpu::LaunchOp>(nested))
      return true;
    if (isa<ViewLikeOpInterface>(nested))
      return true;
    return isMemoryEffectFree(nested);
  };
  if (isa<gpu::LaunchOp>(op))
    return true;
  WalkResult result = op->walk([&](Operation *nested) {
    return local(nested) ? WalkResult::advance() : WalkResult::interrupt();
  });
  return !result.wasInterrupted();
}

/// Whether the buffers `a` and `b` view may overlap: unless their roots are
/// two different allocations or function arguments (every function is an
/// entry point by now -- calls were inlined -- and the runtime passes
/// distinct buffers).
bool mayAlias(Value a, Value b) {
  Value rootA = kiln::viewedBuffer(a), rootB = kiln::viewedBuffer(b);
  if (rootA == rootB)
    return true;
  auto distinct = [](Value root) {
    if (isa<BlockArgument>(root))
      return isa<func::FuncOp>(root.getParentRegion()->getParentOp());
    return isa_and_nonnull<memref::AllocOp, memref::AllocaOp>(
        root.getDefiningOp());
  };
  return !distinct(rootA) || !distinct(rootB);
}

/// Whether `copy` may run before `ops` (and everything nested in them)
/// instead of after: none of them writes what the copy reads or touches
/// what it writes. Ops whose effects are unknown, or on no particular
/// buffer, do not commute (but for index error reports).
bool copyCommutesWith(memref::CopyOp copy, ArrayRef<Operation *> ops) {
  for (Operation *op : ops) {
    WalkResult result = op->walk([&](Operation *nested) {
      // A report writes the error record, never a tensor's buffer.
      if (isa<ReportIndexErrorOp>(nested))
        return WalkResult::advance();
      auto effecting = dyn_cast<MemoryEffectOpInterface>(nested);
      if (!effecting)
        return nested->hasTrait<mlir::OpTrait::HasRecursiveMemoryEffects>()
                   ? WalkResult::advance()
                   : WalkResult::interrupt();
      SmallVector<MemoryEffects::EffectInstance> effects;
      effecting.getEffects(effects);
      for (const MemoryEffects::EffectInstance &effect : effects) {
        if (isa<MemoryEffects::Allocate, MemoryEffects::Free>(
                effect.getEffect()))
          continue;
        Value buffer = effect.getValue();
        bool writes = isa<MemoryEffects::Write>(effect.getEffect());
        if (!buffer || mayAlias(buffer, copy.getTarget()) ||
            (writes && mayAlias(buffer, copy.getSource())))
          return WalkResult::interrupt();
      }
      return WalkResult::advance();
    });
    if (result.wasInterrupted())
      return false;
  }
  return true;
}

namespace gpu_error_record = kiln::runtime::gpu_error_record;

/// Builds a kernel thread's report into the device's error record
/// (GpuErrorRecord.h), which keeps the least (site, index, size) reported,
/// as the CPU runtime does, whatever order the threads report in:
///
///   if (atomicMax(filter, INT64_MAX - key) <= INT64_MAX - key)  // not beaten
///     for (done = false; !done;)
///       if (done = atomicExch(lock, 1) == 0) {
///         fence acquire;
///         if (!reported || (site, index, size) < (recorded triple))
///           record (site, index, size), reported = 1;
///         fence release;
///         atomicExch(lock, 0);
///       }
///
/// The lock's holder releases it in the same iteration it takes it, and
/// every supported chip (sm_70 on) schedules a warp's threads
/// independently, so a lane spinning on the lock cannot keep the lane
/// holding it from going on. The record's words are only read and written
/// with atomics, which go to L2 and see every SM's updates; the fences
/// order each holder's accesses around the lock.
struct ErrorRecordUpdate {
  Value record;
  Location loc;

  void build(OpBuilder &b, int64_t site, Value index, Value size) {
    Value siteValue = i64(b, site);
    Value mine = arith::SubIOp::create(
        b, loc, i64(b, std::numeric_limits<int64_t>::max()),
        filterKey(b, site, index));
    Value best =
        atomic(b, arith::AtomicRMWKind::maxs, mine, gpu_error_record::kFilter);
    Value candidate =
        arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sle, best, mine);
    scf::IfOp::create(b, loc, candidate, [&](OpBuilder &cb, Location) {
      scf::WhileOp::create(
          cb, loc, TypeRange{cb.getI1Type()},
          ValueRange{arith::ConstantIntOp::create(cb, loc, 0, 1)},
          [&](OpBuilder &wb, Location, ValueRange done) {
            Value again = arith::XOrIOp::create(
                wb, loc, done[0], arith::ConstantIntOp::create(wb, loc, 1, 1));
            scf::ConditionOp::create(wb, loc, again, done);
          },
          [&](OpBuilder &wb, Location, ValueRange) {
            Value held = atomic(wb, arith::AtomicRMWKind::assign, i64(wb, 1),
                                gpu_error_record::kLock);
            Value acquired = arith::CmpIOp::create(
                wb, loc, arith::CmpIPredicate::eq, held, i64(wb, 0));
            scf::IfOp::create(wb, loc, acquired, [&](OpBuilder &hb, Location) {
              LLVM::FenceOp::create(hb, loc, LLVM::AtomicOrdering::acquire);
              updateIfLess(hb, siteValue, index, size);
              LLVM::FenceOp::create(hb, loc, LLVM::AtomicOrdering::release);
              atomic(hb, arith::AtomicRMWKind::assign, i64(hb, 0),
                     gpu_error_record::kLock);
              scf::YieldOp::create(hb, loc);
            });
            scf::YieldOp::create(wb, loc, acquired);
          });
      scf::YieldOp::create(cb, loc);
    });
  }

private:
  Value i64(OpBuilder &b, int64_t value) {
    return arith::ConstantIntOp::create(b, loc, value, 64);
  }

  Value atomic(OpBuilder &b, arith::AtomicRMWKind kind, Value value,
               gpu_error_record::Word word) {
    return memref::AtomicRMWOp::create(b, loc, kind, value, record,
                                       ValueRange{indexConstant(b, loc, word)});
  }

  /// (site << 48) + the index clamped to 48 bits and biased to
  /// non-negative; one key for every site from kFilterSiteLimit on.
  Value filterKey(OpBuilder &b, int64_t site, Value index) {
    constexpr int64_t bits = gpu_error_record::kFilterIndexBits;
    if (site >= gpu_error_record::kFilterSiteLimit)
      return i64(b, gpu_error_record::kFilterSiteLimit << bits);
    int64_t half = int64_t(1) << (bits - 1);
    Value clamped = arith::MinSIOp::create(
        b, loc, arith::MaxSIOp::create(b, loc, index, i64(b, -half)),
        i64(b, half - 1));
    return arith::AddIOp::create(b, loc, clamped,
                                 i64(b, (site << bits) + half));
  }

  /// Under the lock: records (site, index, size) when nothing is recorded
  /// or it is less than the recorded triple.
  void updateIfLess(OpBuilder &b, Value site, Value index, Value size) {
    using P = arith::CmpIPredicate;
    auto read = [&](gpu_error_record::Word word) {
      return atomic(b, arith::AtomicRMWKind::addi, i64(b, 0), word);
    };
    auto cmp = [&](P predicate, Value lhs, Value rhs) -> Value {
      return arith::CmpIOp::create(b, loc, predicate, lhs, rhs);
    };
    auto orI = [&](Value lhs, Value rhs) -> Value {
      return arith::OrIOp::create(b, loc, lhs, rhs);
    };
    auto andI = [&](Value lhs, Value rhs) -> Value {
      return arith::AndIOp::create(b, loc, lhs, rhs);
    };
    Value empty = cmp(P::eq, read(gpu_error_record::kReported), i64(b, 0));
    Value oldSite = read(gpu_error_record::kSite);
    Value oldIndex = read(gpu_error_record::kIndex);
    Value oldSize = read(gpu_error_record::kSize);
    Value less = orI(
        cmp(P::slt, site, oldSite),
        andI(cmp(P::eq, site, oldSite), orI(cmp(P::slt, index, oldIndex),
                                            andI(cmp(P::eq, index, oldIndex),
                                                 cmp(P::slt, size, oldSize)))));
    scf::IfOp::create(b, loc, orI(empty, less), [&](OpBuilder &ub, Location) {
      atomic(ub, arith::AtomicRMWKind::assign, site, gpu_error_record::kSite);
      atomic(ub, arith::AtomicRMWKind::assign, index, gpu_error_record::kIndex);
      atomic(ub, arith::AtomicRMWKind::assign, size, gpu_error_record::kSize);
      atomic(ub, arith::AtomicRMWKind::assign, i64(ub, 1),
             gpu_error_record::kReported);
      scf::YieldOp::create(ub, loc);
    });
  }
};

struct KilnMapToGpuPass : kiln::impl::KilnMapToGpuBase<KilnMapToGpuPass> {
  using KilnMapToGpuBase::KilnMapToGpuBase;
  void runOnOperation() override {
    ModuleOp module = getOperation();
    int64_t kernels = 0;
    for (auto func : module.getOps<func::FuncOp>()) {
      if (func.isExternal())
        continue;
      if (failed(mapFunction(func)))
        return signalPassFailure();
      if (func.isPublic())
        func.walk([&](Operation *op) {
          if (isa<gpu::LaunchOp>(op))
            ++kernels;
          else if (auto call = dyn_cast<func::CallOp>(op))
            kernels += call.getCallee().starts_with("kiln_rt_");
        });
    }
    module->setAttr(
        kKernelCountAttrName,
        IntegerAttr::get(IntegerType::get(&getContext(), 64), kernels));
  }

  LogicalResult mapFunction(func::FuncOp func) {
    if (!func.getBody().hasOneBlock())
      return func.emitOpError("has control flow between kernels; the GPU "
                              "pipeline expects one block");
    Block &body = func.getBody().front();
    SmallVector<Operation *> ops;
    for (Operation &op : body)
      ops.push_back(&op);
    // Ops already moved into a serial kernel.
    llvm::SmallPtrSet<Operation *, 8> inSerialKernel;
    for (Operation *op : ops) {
      if (inSerialKernel.count(op))
        continue;
      if (auto generic = dyn_cast<linalg::GenericOp>(op)) {
        if (!generic.hasPureBufferSemantics())
          return generic.emitOpError("is not bufferized");
        if (failed(mapGeneric(generic, vectorize)))
          return failure();
        continue;
      }
      if (auto copy = dyn_cast<memref::CopyOp>(op)) {
        OpBuilder b(copy);
        buildCopyKernel(b, copy.getLoc(), copy.getSource(), copy.getTarget());
        copy.erase();
        continue;
      }
      if (auto global = dyn_cast<memref::GetGlobalOp>(op)) {
        // Constant tensors live in the kernel module: copy one into a
        // device buffer, reading it inside the kernel.
        OpBuilder b(global);
        auto type = cast<MemRefType>(global.getType());
        auto bufferType =
            MemRefType::get(type.getShape(), type.getElementType());
        Value buffer = memref::AllocOp::create(b, global.getLoc(), bufferType);
        Value source = global.getResult();
        global.getResult().replaceAllUsesWith(buffer);
        buildCopyKernel(b, global.getLoc(), source, buffer);
        continue;
      }
      if (auto forall = dyn_cast<scf::ForallOp>(op)) {
        if (failed(mapForall(forall)))
          return failure();
        continue;
      }
      if (isa<linalg::LinalgOp>(op))
        return op->emitOpError("was not generalized before kiln-map-to-gpu");
      if (staysOnHost(op))
        continue;
      // Anything else that touches memory (sequential scatter loops, the
      // report of an up-front index check) runs on one GPU thread, in
      // program order, together with the ops after it that use its
      // results.
      if (failed(mapSerialGroup(op, inSerialKernel)))
        return failure();
    }
    sinkGlobals(func);
    lowerErrorReports(func);
    insertDeallocs(func);
    return success();
  }

  /// Moves `first` and the ops after it that are not kernels of their own
  /// and either touch memory or use the group's results into one kernel
  /// run by one thread. No value of the group may be needed outside it.
  /// Host ops between the group's ops and a later user of their values --
  /// when a single-position scatter's loop was folded away, the allocation
  /// of its result and the copy of its base into it, between the scattered
  /// value's computation and its store -- go before the group when they
  /// do not depend on it: an allocation, a view, a copy that commutes with
  /// the group (a kernel of its own, launched first).
  LogicalResult mapSerialGroup(Operation *first,
                               llvm::SmallPtrSetImpl<Operation *> &moved) {
    Block *block = first->getBlock();
    SmallVector<Operation *> group{first};
    llvm::SmallPtrSet<Operation *, 8> members{first};
    auto usesGroup = [&](Operation *op) {
      WalkResult result = op->walk([&](Operation *nested) {
        for (Value v : nested->getOperands()) {
          Operation *def = v.getDefiningOp();
          if (def && members.count(block->findAncestorOpInBlock(*def)))
            return WalkResult::interrupt();
        }
        return WalkResult::advance();
      });
      return result.wasInterrupted();
    };
    // Whether an op outside the group (so after it) uses its values.
    auto neededOutside = [&] {
      for (Operation *op : group)
        for (Operation *user : op->getUsers())
          if (!members.count(block->findAncestorOpInBlock(*user)))
            return true;
      return false;
    };
    // The kind of op checked first: the loads and stores a group is made
    // of are not, and need no walk of the group.
    auto hoistable = [&](Operation *op) {
      auto copy = dyn_cast<memref::CopyOp>(op);
      bool hostOp = op->getNumRegions() == 0 &&
                    !op->hasTrait<mlir::OpTrait::IsTerminator>() &&
                    staysOnHost(op) &&
                    (isa<memref::AllocOp>(op) || isMemoryEffectFree(op));
      if ((!copy && !hostOp) || usesGroup(op) || !neededOutside() ||
          !llvm::all_of(op->getOperands(), [&](Value v) {
            Operation *def = v.getDefiningOp();
            return !def || def->isBeforeInBlock(first);
          }))
        return false;
      return !copy || copyCommutesWith(copy, group);
    };
    for (Operation *next = first->getNextNode(); next;) {
      if (hoistable(next)) {
        Operation *hoisted = next;
        next = next->getNextNode();
        hoisted->moveBefore(first);
        continue;
      }
      if (isa<linalg::GenericOp, memref::CopyOp, memref::GetGlobalOp,
              func::ReturnOp, gpu::LaunchOp>(next))
        break;
      if (!usesGroup(next) && staysOnHost(next))
        break;
      group.push_back(next);
      members.insert(next);
      next = next->getNextNode();
    }
    for (Operation *op : group)
      for (Value result : op->getResults())
        for (Operation *user : result.getUsers())
          if (!members.count(first->getBlock()->findAncestorOpInBlock(*user)))
            return op->emitOpError(
                "computes a value the host needs; it cannot run on the GPU");
    OpBuilder b(first);
    buildLaunch(
        b, first->getLoc(), 1, [&](OpBuilder &tb, Location, ArrayRef<Value>) {
          for (Operation *op : group)
            op->moveBefore(tb.getInsertionBlock(), tb.getInsertionPoint());
        });
    moved.insert(group.begin(), group.end());
    return success();
  }

  /// Moves each memref.get_global used by kernels into the kernels that use
  /// it (the outlined kernel modules get a copy of the global).
  void sinkGlobals(func::FuncOp func) {
    SmallVector<memref::GetGlobalOp> globals;
    for (auto global : func.getBody().front().getOps<memref::GetGlobalOp>())
      globals.push_back(global);
    for (memref::GetGlobalOp global : globals) {
      SmallVector<OpOperand *> uses;
      for (OpOperand &use : global->getUses())
        uses.push_back(&use);
      for (OpOperand *use : uses) {
        auto launch = use->getOwner()->getParentOfType<gpu::LaunchOp>();
        if (!launch)
          continue;
        OpBuilder b(&launch.getBody().front(),
                    launch.getBody().front().begin());
        use->set(b.clone(*global)->getResult(0));
      }
      if (global->use_empty())
        global.erase();
    }
  }

  /// kiln.report_index_error inside kernels: each becomes a report into
  /// the device's error record (see ErrorRecordUpdate), which the host
  /// function obtains from the runtime once.
  void lowerErrorReports(func::FuncOp func) {
    SmallVector<ReportIndexErrorOp> reports;
    func.walk([&](ReportIndexErrorOp op) { reports.push_back(op); });
    if (reports.empty())
      return;
    auto module = func->getParentOfType<ModuleOp>();
    OpBuilder b(func.getBody());
    auto recordType =
        MemRefType::get({gpu_error_record::kWords}, b.getI64Type());
    auto callee = module.lookupSymbol<func::FuncOp>(kErrorRecordFn);
    if (!callee) {
      OpBuilder mb(module.getBodyRegion());
      callee = func::FuncOp::create(mb, module.getLoc(), kErrorRecordFn,
                                    mb.getFunctionType({}, {recordType}));
      callee.setPrivate();
      callee->setAttr("llvm.emit_c_interface", mb.getUnitAttr());
    }
    Value record = func::CallOp::create(b, func.getLoc(), callee, ValueRange{})
                       .getResult(0);
    for (ReportIndexErrorOp op : reports) {
      OpBuilder rb(op);
      ErrorRecordUpdate{record, op.getLoc()}.build(rb, op.getSite(),
                                                   op.getIndex(), op.getSize());
      op.erase();
    }
  }

  /// Frees every allocation of the host function after its last use (in
  /// program order; frees are stream-ordered like the launches). No
  /// allocation escapes: results are out-parameters.
  void insertDeallocs(func::FuncOp func) {
    Block &body = func.getBody().front();
    SmallVector<memref::AllocOp> allocs;
    for (auto alloc : body.getOps<memref::AllocOp>())
      allocs.push_back(alloc);
    for (memref::AllocOp alloc : allocs) {
      Operation *last = alloc;
      SmallVector<Value> worklist{alloc.getResult()};
      while (!worklist.empty()) {
        Value value = worklist.pop_back_val();
        for (Operation *user : value.getUsers()) {
          Operation *top = body.findAncestorOpInBlock(*user);
          if (top && last->isBeforeInBlock(top))
            last = top;
          if (isa<ViewLikeOpInterface>(user))
            for (Value result : user->getResults())
              worklist.push_back(result);
        }
      }
      if (isa<func::ReturnOp>(last))
        continue;
      OpBuilder b(last->getBlock(), std::next(Block::iterator(last)));
      memref::DeallocOp::create(b, alloc.getLoc(), alloc.getResult());
    }
  }
};

} // namespace
