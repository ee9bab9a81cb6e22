//===- MaskedRemainders.cpp - Loop remainders as masked vectors -----------===//
//
// LLVM's loop vectorizer runs an innermost loop in vectors of VF elements,
// interleaved IC times, and leaves the last (trip count mod VF * IC)
// iterations to a scalar loop: a row of 127 f32 ran 96 elements in vectors
// and 31 one by one. LLVM 22 cannot run the remainder as a masked vector
// (tail folding masks every iteration and gives up the interleaving). This
// pass does it before LLVM sees the loop: the loop keeps its scalar body
// for a trip count LLVM's vector loop covers exactly, the rest runs as
// whole vectors and one masked vector. Exact integer reductions (a row's
// maximum as integer keys) carry lane accumulators through those steps.
// The conditions and the reasons for each are in Passes.td.
//
//===----------------------------------------------------------------------===//

#include "kiln/Dialect/Kiln/Transforms/Passes.h"
#include "kiln/Support/Buffers.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/Remarks.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "llvm/ADT/TypeSwitch.h"

namespace kiln {
#define GEN_PASS_DEF_KILNMASKEDREMAINDERS
#include "kiln/Dialect/Kiln/Transforms/Passes.h.inc"
} // namespace kiln

using namespace mlir;

namespace {

/// The widest vector register, in bytes (AVX-512). LLVM's vectorizer picks
/// at most this many bytes of a loop's narrowest type per vector. With
/// AVX2's 32-byte registers, blocks and vectors of 32 bytes measured no
/// better on a Zen 3 (2000 rows at 1 thread, medians (minima) of 7
/// alternating runs, 64 -> 32 bytes: exp(x + b) over rows of 50 68 (55) ->
/// 70 (70) us, of 127 159 (120) -> 146 (139), softmax over rows of 100 169
/// -> 173, amax over rows of 127 35 -> 36), so the 64 bytes stay on every
/// host: they change how many iterations each part runs, not what an
/// iteration computes.
constexpr int64_t kVectorBytes = 64;

/// The most vectors per iteration LLVM's vectorizer interleaves on x86
/// (its own choice, or kiln's `llvm.loop.interleave.count` 4).
constexpr int64_t kMaxInterleave = 4;

/// How a value of the loop body varies across iterations.
enum class Shape {
  /// The same in every iteration (defined outside, or computed from such
  /// values only).
  Uniform,
  /// The induction variable plus a uniform offset: a unit-stride address.
  Affine,
  /// Anything else: one value per lane.
  Varying,
};

/// Bytes a lane of `type` takes in a vector register (i1: one, as a mask
/// lane in a byte register; index: eight).
std::optional<int64_t> laneBytes(Type type) {
  if (type.isIndex())
    return 8;
  if (type.isInteger(1))
    return 1;
  if (isa<IntegerType, FloatType>(type) &&
      type.getIntOrFloatBitWidth() % 8 == 0)
    return type.getIntOrFloatBitWidth() / 8;
  return std::nullopt;
}

/// Integer divisions fault on a zero divisor, which a masked-off lane may
/// hold (kiln-check-integer-division guards the active ones).
bool mayTrap(Operation *op) {
  return isa<arith::DivSIOp, arith::DivUIOp, arith::RemSIOp, arith::RemUIOp,
             arith::CeilDivSIOp, arith::CeilDivUIOp, arith::FloorDivSIOp>(op);
}

/// A memory access of the loop body.
struct Access {
  Operation *op;
  Value memref;
  ValueRange indices;
  bool isStore;
};

/// A value the loop carries that each iteration combines with one element
/// by an integer op that is associative and commutative, exactly (max, min,
/// wrapping sums and products, bitwise ops): a row's maximum as an integer
/// key. Lanes can combine in any order with the same result.
struct Reduction {
  /// The iter_arg's position.
  unsigned position;
  /// `acc <op> element` (either order), yielded as the next value.
  Operation *combine;
  Value element;
  vector::CombiningKind kind;
};

/// What the analysis of a loop found: the shape of each body value, the
/// accesses, the reductions (and their combining ops), the narrowest
/// element type the body accesses or reduces (which bounds the VF LLVM's
/// vectorizer picks, as its own analysis of the loop's types does) and the
/// widest type of a lane.
struct LoopPlan {
  DenseMap<Value, Shape> shapes;
  SmallVector<Access> accesses;
  SmallVector<Reduction> reductions;
  DenseSet<Operation *> combines;
  int64_t minBytes = kVectorBytes;
  int64_t maxBytes = 1;

  /// Values the analysis did not mark (defined outside the loop, or from
  /// such values only) are Uniform.
  Shape shapeOf(Value value) const {
    auto it = shapes.find(value);
    return it == shapes.end() ? Shape::Uniform : it->second;
  }
};

/// The kind of an exact reduction `op` computes, if it is one.
std::optional<vector::CombiningKind> combiningKind(Operation *op) {
  using Kind = vector::CombiningKind;
  return llvm::TypeSwitch<Operation *, std::optional<Kind>>(op)
      .Case([](arith::AddIOp) { return Kind::ADD; })
      .Case([](arith::MulIOp) { return Kind::MUL; })
      .Case([](arith::MaxSIOp) { return Kind::MAXSI; })
      .Case([](arith::MinSIOp) { return Kind::MINSI; })
      .Case([](arith::MaxUIOp) { return Kind::MAXUI; })
      .Case([](arith::MinUIOp) { return Kind::MINUI; })
      .Case([](arith::AndIOp) { return Kind::AND; })
      .Case([](arith::OrIOp) { return Kind::OR; })
      .Case([](arith::XOrIOp) { return Kind::XOR; })
      .Default([](Operation *) { return std::nullopt; });
}

/// The value `kind` leaves its other operand unchanged with, as a splat
/// of `type` (a vector of integers).
Value identity(OpBuilder &b, Location loc, vector::CombiningKind kind,
               VectorType type) {
  using Kind = vector::CombiningKind;
  unsigned width = type.getElementTypeBitWidth();
  APInt value = APInt::getZero(width);
  switch (kind) {
  case Kind::MUL:
    value = APInt(width, 1);
    break;
  case Kind::AND:
  case Kind::MINUI:
    value = APInt::getAllOnes(width);
    break;
  case Kind::MAXSI:
    value = APInt::getSignedMinValue(width);
    break;
  case Kind::MINSI:
    value = APInt::getSignedMaxValue(width);
    break;
  default:
    break;
  }
  return arith::ConstantOp::create(b, loc, type,
                                   DenseElementsAttr::get(type, value));
}

/// The exact reductions of `loop`'s iter_args (Reduction), or failure when
/// one is anything else.
FailureOr<SmallVector<Reduction>> matchReductions(scf::ForOp loop) {
  SmallVector<Reduction> reductions;
  auto yield = cast<scf::YieldOp>(loop.getBody()->getTerminator());
  for (auto [position, acc] : llvm::enumerate(loop.getRegionIterArgs())) {
    if (!isa<IntegerType>(acc.getType()) || !laneBytes(acc.getType()) ||
        !acc.hasOneUse())
      return failure();
    Operation *combine = *acc.getUsers().begin();
    std::optional<vector::CombiningKind> kind = combiningKind(combine);
    if (!kind || combine->getBlock() != loop.getBody() ||
        yield.getOperand(position) != combine->getResult(0) ||
        !combine->getResult(0).hasOneUse())
      return failure();
    Value element = combine->getOperand(combine->getOperand(0) == acc);
    if (element == acc)
      return failure();
    reductions.push_back(
        {static_cast<unsigned>(position), combine, element, *kind});
  }
  return reductions;
}

/// Whether the buffers `a` and `b` (the roots of two views) may overlap:
/// different buffer groups of the kernel's arguments (kiln-outline-kernels'
/// `kiln.buffer_groups`) or different allocations do not.
bool mayAlias(Value a, Value b, func::FuncOp function) {
  if (a == b)
    return true;
  auto isAllocation = [](Value value) {
    return value.getDefiningOp<memref::AllocOp>() ||
           value.getDefiningOp<memref::AllocaOp>();
  };
  auto argumentOf = [&](Value value) -> BlockArgument {
    auto argument = dyn_cast<BlockArgument>(value);
    if (argument && argument.getOwner() == &function.getBody().front())
      return argument;
    return {};
  };
  // An allocation of the kernel is no other allocation and no argument.
  if ((isAllocation(a) && (isAllocation(b) || argumentOf(b))) ||
      (isAllocation(b) && argumentOf(a)))
    return false;
  auto groups =
      function->getAttrOfType<DenseI64ArrayAttr>(kiln::kBufferGroupsAttr);
  BlockArgument first = argumentOf(a), second = argumentOf(b);
  if (!groups || !first || !second ||
      static_cast<int64_t>(groups.size()) != function.getNumArguments())
    return true;
  int64_t g = groups[first.getArgNumber()], h = groups[second.getArgNumber()];
  return g < 0 || h < 0 || g == h;
}

/// Records the memref access `op` makes: a load or a store whose last
/// index is Affine (the others Uniform) on a memref of unit innermost
/// stride, or a load whose indices are all Uniform. Returns the shape of
/// the value accessed (Uniform or Varying); anything else fails.
FailureOr<Shape> classifyAccess(Operation *op, Value memref, ValueRange indices,
                                bool isStore, LoopPlan &plan) {
  auto type = cast<MemRefType>(memref.getType());
  std::optional<int64_t> bytes = laneBytes(type.getElementType());
  // i1 buffers hold a byte per element, which a vector of i1 does not.
  if (!bytes || type.getElementType().isInteger(1) ||
      type.getElementType().isIndex())
    return failure();
  auto uniform = [&](Value index) {
    return plan.shapeOf(index) == Shape::Uniform;
  };
  if (llvm::all_of(indices, uniform) && !isStore) {
    plan.accesses.push_back({op, memref, indices, isStore});
    return Shape::Uniform;
  }
  if (indices.empty() || plan.shapeOf(indices.back()) != Shape::Affine ||
      !llvm::all_of(indices.drop_back(), uniform) ||
      !type.isLastDimUnitStride())
    return failure();
  plan.minBytes = std::min(plan.minBytes, *bytes);
  plan.maxBytes = std::max(plan.maxBytes, *bytes);
  plan.accesses.push_back({op, memref, indices, isStore});
  return Shape::Varying;
}

/// Whether every iteration of `loop` can run as a lane of a vector, and
/// how: an innermost `scf.for` of step 1 without results whose body holds
/// only loads, stores (unit stride along the induction variable), pure
/// elementwise scalar ops that cannot trap, and prefetches; no store may
/// touch an element another iteration reads or writes (a load and a store
/// of possibly overlapping buffers must use the same memref and indices).
std::optional<LoopPlan> planLoop(scf::ForOp loop, func::FuncOp function) {
  if (getConstantIntValue(loop.getStep()) != 1)
    return std::nullopt;
  LoopPlan plan;
  FailureOr<SmallVector<Reduction>> reductions = matchReductions(loop);
  if (failed(reductions))
    return std::nullopt;
  plan.reductions = std::move(*reductions);
  for (const Reduction &reduction : plan.reductions) {
    plan.combines.insert(reduction.combine);
    int64_t bytes = *laneBytes(reduction.element.getType());
    plan.minBytes = std::min(plan.minBytes, bytes);
    plan.maxBytes = std::max(plan.maxBytes, bytes);
  }
  Block *body = loop.getBody();
  plan.shapes[loop.getInductionVar()] = Shape::Affine;
  bool stores = false, fill = true;
  for (Operation &op : body->without_terminator()) {
    if (op.getNumRegions() != 0)
      return std::nullopt;
    if (plan.combines.contains(&op))
      continue;
    if (auto load = dyn_cast<memref::LoadOp>(op)) {
      FailureOr<Shape> shape = classifyAccess(
          &op, load.getMemref(), load.getIndices(), /*isStore=*/false, plan);
      if (failed(shape))
        return std::nullopt;
      plan.shapes[load.getResult()] = *shape;
      continue;
    }
    if (auto store = dyn_cast<memref::StoreOp>(op)) {
      if (failed(classifyAccess(&op, store.getMemref(), store.getIndices(),
                                /*isStore=*/true, plan)))
        return std::nullopt;
      stores = true;
      fill &= plan.shapeOf(store.getValueToStore()) == Shape::Uniform;
      continue;
    }
    if (isa<memref::PrefetchOp>(op))
      continue;
    // An offset of the induction variable: a unit-stride address.
    if (isa<arith::AddIOp, arith::SubIOp>(op) &&
        op.getResult(0).getType().isIndex()) {
      Shape lhs = plan.shapeOf(op.getOperand(0)),
            rhs = plan.shapeOf(op.getOperand(1));
      if ((lhs == Shape::Affine && rhs == Shape::Uniform) ||
          (isa<arith::AddIOp>(op) && lhs == Shape::Uniform &&
           rhs == Shape::Affine)) {
        plan.shapes[op.getResult(0)] = Shape::Affine;
        continue;
      }
    }
    // Computed from uniform values only (constants, sizes, offsets): the
    // same in every lane.
    if (isMemoryEffectFree(&op) && llvm::all_of(op.getOperands(), [&](Value v) {
          return plan.shapeOf(v) == Shape::Uniform;
        }))
      continue;
    if (!op.hasTrait<OpTrait::Elementwise>() ||
        !op.hasTrait<OpTrait::Vectorizable>() || !isMemoryEffectFree(&op) ||
        mayTrap(&op) || op.getNumResults() != 1)
      return std::nullopt;
    bool varying = false;
    for (Value operand : op.getOperands()) {
      if (!laneBytes(operand.getType()))
        return std::nullopt;
      varying |= plan.shapeOf(operand) != Shape::Uniform;
    }
    Type type = op.getResult(0).getType();
    std::optional<int64_t> bytes = laneBytes(type);
    if (!bytes)
      return std::nullopt;
    if (!varying)
      continue;
    plan.shapes[op.getResult(0)] = Shape::Varying;
    // Lanes of an Affine operand become a vector of indices.
    for (Value operand : op.getOperands())
      if (plan.shapeOf(operand) == Shape::Affine)
        plan.maxBytes = std::max<int64_t>(plan.maxBytes, 8);
    plan.maxBytes = std::max(plan.maxBytes, *bytes);
  }
  if (!stores && plan.reductions.empty())
    return std::nullopt;
  // A fill (every store stores the same value in every iteration, nothing
  // reduced) is left to LLVM, whose loop idioms make it a memset -- of the
  // row, or of a whole nest of contiguous rows -- with no remainder at all.
  // Masked, a zero fill of 8x64x33 f32 became 512 unrolled rows of a
  // 128-byte memset and a masked lane, which LLVM's instruction selection
  // took superlinear time over (8x64x47: 1.9 s to compile).
  if (fill && plan.reductions.empty())
    return std::nullopt;
  // Iterations run as lanes: every load of a lane happens before every
  // store of the vector step. Safe when no store writes what another
  // iteration reads or writes.
  for (const Access &store : plan.accesses) {
    if (!store.isStore)
      continue;
    Value root = kiln::viewedBuffer(store.memref);
    for (const Access &other : plan.accesses) {
      if (other.op == store.op ||
          !mayAlias(root, kiln::viewedBuffer(other.memref), function))
        continue;
      if (other.memref != store.memref ||
          !llvm::equal(other.indices, store.indices))
        return std::nullopt;
    }
  }
  return plan;
}

/// Emits the body of `loop` as one vector step of `lanes` iterations from
/// `start`: masked by `mask` when it is given (the last, partial step),
/// plain vector loads and stores otherwise (which, unlike the masked ones,
/// get kiln-alias-scopes' metadata). Returns the lanes' elements of each
/// reduction, not yet combined.
SmallVector<Value> emitVectorStep(OpBuilder &b, scf::ForOp loop,
                                  const LoopPlan &plan, Value start, Value mask,
                                  int64_t lanes) {
  Location loc = loop.getLoc();
  // Uniform values map to scalars, Affine ones to their first lane's index,
  // Varying ones to vectors.
  IRMapping mapping;
  mapping.map(loop.getInductionVar(), start);
  DenseMap<Value, Value> vectors;
  auto vectorOf = [&](Value original) -> Value {
    Value mapped = mapping.lookupOrDefault(original);
    if (plan.shapeOf(original) == Shape::Varying)
      return mapped;
    if (Value cached = vectors.lookup(original))
      return cached;
    auto type = VectorType::get({lanes}, original.getType());
    Value vector = vector::BroadcastOp::create(b, loc, type, mapped);
    if (plan.shapeOf(original) == Shape::Affine)
      vector = arith::AddIOp::create(b, loc, vector,
                                     vector::StepOp::create(b, loc, type));
    vectors[original] = vector;
    return vector;
  };
  auto indicesOf = [&](ValueRange indices) {
    SmallVector<Value> mapped;
    for (Value index : indices)
      mapped.push_back(mapping.lookupOrDefault(index));
    return mapped;
  };
  for (Operation &op : loop.getBody()->without_terminator()) {
    if (isa<memref::PrefetchOp>(op) || plan.combines.contains(&op))
      continue;
    if (auto load = dyn_cast<memref::LoadOp>(op)) {
      if (plan.shapeOf(load.getResult()) == Shape::Uniform) {
        b.clone(op, mapping);
        continue;
      }
      auto type = VectorType::get({lanes}, load.getType());
      // The buffer may be a view the body makes (cloned into the step).
      Value memref = mapping.lookupOrDefault(load.getMemref());
      SmallVector<Value> indices = indicesOf(load.getIndices());
      Value vector;
      if (mask) {
        Value zero = arith::ConstantOp::create(
            b, loc, type, cast<TypedAttr>(b.getZeroAttr(type)));
        vector = vector::MaskedLoadOp::create(b, loc, type, memref, indices,
                                              mask, zero);
      } else {
        vector = vector::LoadOp::create(b, loc, type, memref, indices);
      }
      mapping.map(load.getResult(), vector);
      continue;
    }
    if (auto store = dyn_cast<memref::StoreOp>(op)) {
      Value memref = mapping.lookupOrDefault(store.getMemref());
      SmallVector<Value> indices = indicesOf(store.getIndices());
      Value value = vectorOf(store.getValue());
      if (mask)
        vector::MaskedStoreOp::create(b, loc, memref, indices, mask, value);
      else
        vector::StoreOp::create(b, loc, value, memref, indices);
      continue;
    }
    Value result = op.getResult(0);
    if (plan.shapeOf(result) != Shape::Varying) {
      // Uniform, or an offset of the first lane's index.
      b.clone(op, mapping);
      continue;
    }
    IRMapping operands;
    for (Value operand : op.getOperands())
      operands.map(operand, vectorOf(operand));
    Operation *vectorOp = b.clone(op, operands);
    vectorOp->getResult(0).setType(VectorType::get({lanes}, result.getType()));
    mapping.map(result, vectorOp->getResult(0));
  }
  SmallVector<Value> elements;
  for (const Reduction &reduction : plan.reductions)
    elements.push_back(vectorOf(reduction.element));
  return elements;
}

/// Whether `value` depends on `iv` (through the ops that compute it).
bool dependsOn(Value value, Value iv) {
  SmallVector<Value> work{value};
  DenseSet<Value> seen;
  while (!work.empty()) {
    Value v = work.pop_back_val();
    if (v == iv)
      return true;
    if (!seen.insert(v).second)
      continue;
    if (Operation *def = v.getDefiningOp())
      llvm::append_range(work, def->getOperands());
  }
  return false;
}

/// Whether `loop` updates in place elements that an enclosing `scf.for`
/// revisits in each of its iterations (C[i, j] += A[i, k] * B[k, j] with
/// the k loop outside the j loop): each step's masked store would be read
/// back by the next step's masked load of the same bytes, which a store
/// cannot forward its data to, and the chain of updates would wait for
/// every store to reach the cache (a 1000x1000 by 1000x3 matmul, its
/// inner loop of 3: 0.22 -> 6.4 ms).
bool accumulatesAcrossOuterLoop(scf::ForOp loop, const LoopPlan &plan) {
  for (const Access &store : plan.accesses) {
    if (!store.isStore ||
        !llvm::any_of(plan.accesses, [&](const Access &other) {
          return !other.isStore && other.memref == store.memref &&
                 llvm::equal(other.indices, store.indices);
        }))
      continue;
    for (auto outer = loop->getParentOfType<scf::ForOp>(); outer;
         outer = outer->getParentOfType<scf::ForOp>())
      if (llvm::none_of(store.indices, [&](Value index) {
            return dependsOn(index, outer.getInductionVar());
          }))
        return true;
  }
  return false;
}

/// The trip count of `loop` when its bounds are constants (0 when the
/// upper bound is not above the lower one).
std::optional<int64_t> constantTripCount(scf::ForOp loop) {
  std::optional<int64_t> lower = getConstantIntValue(loop.getLowerBound());
  std::optional<int64_t> upper = getConstantIntValue(loop.getUpperBound());
  if (!lower || !upper)
    return std::nullopt;
  return std::max<int64_t>(*upper - *lower, 0);
}

/// Of `count` iterations, those left after LLVM's vector loop (multiples of
/// `block`) and the whole vectors of `lanes`: the last, partial step's.
int64_t lastStepLanes(int64_t count, int64_t block, int64_t lanes) {
  return count % block % lanes;
}

/// Says what becomes of `loop`'s iterations: a `MaskedRemainder` analysis
/// remark (category `kiln-lower`) at the loop, with the numbers of scalar,
/// vector and masked iterations when the trip count is a constant.
void remarkLoop(scf::ForOp loop, const LoopPlan &plan, int64_t lanes,
                int64_t block) {
  auto function = loop->getParentOfType<func::FuncOp>();
  auto opts = remark::RemarkOpts::name("MaskedRemainder")
                  .category("kiln-lower")
                  .function(function ? function.getSymName() : StringRef());
  std::string reductions =
      plan.reductions.empty()
          ? std::string()
          : llvm::formatv(", its {0} exact reduction(s) carried in one "
                          "accumulator per lane",
                          plan.reductions.size())
                .str();
  std::optional<int64_t> trip = constantTripCount(loop);
  if (!trip) {
    remark::analysis(loop.getLoc(), opts)
        << remark::add("a loop of the kernel: the iterations after the last "
                       "multiple of {0} run as vectors of {1} lanes, the last "
                       "one masked, not one at a time{2}",
                       block, lanes, reductions);
    return;
  }
  int64_t count = *trip;
  int64_t scalar = count / block * block;
  int64_t vectors = (count - scalar) / lanes;
  int64_t masked = lastStepLanes(count, block, lanes);
  std::string steps =
      llvm::formatv("{0} vector(s) of {1} lanes", vectors, lanes).str();
  // One lane left runs unmasked (maskRemainder).
  std::string last =
      masked == 1 ? std::string("one lane, unmasked")
                  : llvm::formatv("a masked vector of {0}", masked).str();
  if (masked)
    steps = vectors ? llvm::formatv("{0} and {1}", steps, last).str() : last;
  remark::analysis(loop.getLoc(), opts)
      << remark::add("a loop of the kernel over {0} iterations: {1} run in "
                     "LLVM's vector loop; the other {2}, which LLVM would "
                     "run one at a time, run as {3}{4}",
                     count, scalar, count - scalar, steps, reductions)
      << remark::metric("iterations", count) << remark::metric("lanes", lanes);
}

/// Splits `loop` into its scalar loop over the iterations LLVM's vector
/// loop covers without a remainder, vector steps over the whole vectors
/// left and one masked step over the rest.
void maskRemainder(scf::ForOp loop, const LoopPlan &plan) {
  // LLVM's vector loop steps by VF * IC iterations: at most a register of
  // the narrowest type, interleaved kMaxInterleave times. The vector steps
  // hold a register of the widest type, so no value takes more than one.
  int64_t lanes = kVectorBytes / plan.maxBytes;
  int64_t block = kMaxInterleave * kVectorBytes / plan.minBytes;
  remarkLoop(loop, plan, lanes, block);
  std::optional<int64_t> trip = constantTripCount(loop);
  Location loc = loop.getLoc();
  OpBuilder b(loop);
  Value lower = loop.getLowerBound(), upper = loop.getUpperBound();
  Value zero = arith::ConstantIndexOp::create(b, loc, 0);
  // The first multiple of `size` iterations of the `count` from `from`.
  auto wholeFrom = [&](Value from, Value count, int64_t size) {
    Value step = arith::ConstantIndexOp::create(b, loc, size);
    return arith::AddIOp::create(
        b, loc, from,
        arith::MulIOp::create(
            b, loc, arith::DivUIOp::create(b, loc, count, step), step));
  };
  Value count = arith::MaxSIOp::create(
      b, loc, arith::SubIOp::create(b, loc, upper, lower), zero);
  Value main = wholeFrom(lower, count, block);
  // The loop's results are now those of its first iterations; their users
  // get the results of the whole loop.
  SmallVector<SmallVector<OpOperand *>> users(loop.getNumResults());
  for (auto [i, result] : llvm::enumerate(loop.getResults()))
    for (OpOperand &use : result.getUses())
      users[i].push_back(&use);
  loop.getUpperBoundMutable().assign(main);
  b.setInsertionPointAfter(loop);
  Value left = arith::SubIOp::create(b, loc, upper, main);
  Value whole = wholeFrom(main, left, lanes);

  // Whole vectors: each reduction in a vector of lane accumulators.
  SmallVector<Value> identities;
  for (const Reduction &reduction : plan.reductions)
    identities.push_back(
        identity(b, loc, reduction.kind,
                 VectorType::get({lanes}, reduction.element.getType())));
  auto steps = scf::ForOp::create(b, loc, main, whole,
                                  arith::ConstantIndexOp::create(b, loc, lanes),
                                  identities);
  b.setInsertionPointToStart(steps.getBody());
  SmallVector<Value> elements = emitVectorStep(
      b, loop, plan, steps.getInductionVar(), /*mask=*/{}, lanes);
  if (!plan.reductions.empty()) {
    SmallVector<Value> next;
    for (auto [reduction, element, acc] :
         llvm::zip_equal(plan.reductions, elements, steps.getRegionIterArgs()))
      next.push_back(
          vector::makeArithReduction(b, loc, reduction.kind, element, acc));
    scf::YieldOp::create(b, loc, next);
  }
  b.setInsertionPointAfter(steps);
  // A constant trip count that leaves one iteration (or none) after the
  // whole vectors: that iteration as a plain step of one lane (a scalar
  // access), no mask. A masked step of one constant lane in each of 512
  // rows LLVM had unrolled made its instruction selection run for more than
  // 20 minutes (planLoop leaves fills alone now; 256 rows of a memset and a
  // one-lane masked store: 78 s, 128: 4.8 s). Rests of more
  // lanes stay masked: plain steps of that many lanes (vector<15xf32>, in
  // pieces) measured mixed (1 thread, 2000 rows: amax over rows of 127 11
  // -> 13 us, exp(x + b) 37 -> 38, log_softmax over rows of 50 69 -> 63).
  int64_t tail = trip ? lastStepLanes(*trip, block, lanes) : -1;
  if (tail == 0 || tail == 1) {
    SmallVector<Value> tailElements;
    if (tail)
      tailElements = emitVectorStep(b, loop, plan, whole, /*mask=*/{}, tail);
    for (auto [i, reduction] : llvm::enumerate(plan.reductions)) {
      Value result = vector::ReductionOp::create(
          b, loc, reduction.kind, steps.getResult(i),
          loop.getResult(reduction.position));
      if (tail)
        result = vector::ReductionOp::create(b, loc, reduction.kind,
                                             tailElements[i], result);
      for (OpOperand *use : users[reduction.position])
        use->set(result);
    }
    return;
  }
  // The rest: one masked step; its masked-off lanes hold the identities.
  // Then each reduction's lanes are combined, once, with the value of the
  // first iterations.
  Value rest = arith::SubIOp::create(b, loc, upper, whole);
  Value any =
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sgt, rest, zero);
  auto partial = scf::IfOp::create(b, loc, steps.getResultTypes(), any,
                                   /*withElseRegion=*/true);
  b.setInsertionPointToStart(partial.thenBlock());
  Value mask = vector::CreateMaskOp::create(
      b, loc, VectorType::get({lanes}, b.getI1Type()), ValueRange{rest});
  elements = emitVectorStep(b, loop, plan, whole, mask, lanes);
  if (plan.reductions.empty())
    return;
  SmallVector<Value> accs;
  for (auto [reduction, element, acc, neutral] : llvm::zip_equal(
           plan.reductions, elements, steps.getResults(), identities))
    accs.push_back(vector::makeArithReduction(
        b, loc, reduction.kind,
        arith::SelectOp::create(b, loc, mask, element, neutral), acc));
  scf::YieldOp::create(b, loc, accs);
  b.setInsertionPointToStart(partial.elseBlock());
  scf::YieldOp::create(b, loc, steps.getResults());
  b.setInsertionPointAfter(partial);
  for (auto [reduction, acc] :
       llvm::zip_equal(plan.reductions, partial.getResults())) {
    Value result = vector::ReductionOp::create(
        b, loc, reduction.kind, acc, loop.getResult(reduction.position));
    for (OpOperand *use : users[reduction.position])
      use->set(result);
  }
}

struct KilnMaskedRemainders
    : kiln::impl::KilnMaskedRemaindersBase<KilnMaskedRemainders> {
  void runOnOperation() override {
    getOperation()->walk([](func::FuncOp function) {
      SmallVector<std::pair<scf::ForOp, LoopPlan>> loops;
      function.walk([&](scf::ForOp loop) {
        // A constant trip count that is a multiple of the widest vector of
        // the narrowest type leaves LLVM whole vectors only.
        std::optional<int64_t> trip = constantTripCount(loop);
        std::optional<LoopPlan> plan = planLoop(loop, function);
        if (!plan)
          return;
        if (trip &&
            (*trip == 0 || *trip % (kVectorBytes / plan->minBytes) == 0))
          return;
        // Fewer iterations than a vector holds: LLVM unrolls the loop
        // fully and keeps its values in registers or scalar memory
        // accesses, which later loads of the same bytes take their data
        // from; from a masked store they cannot, and a row's next pass
        // waits for it (log_softmax over 4096x10 f32: 0.039 -> 0.129 ms
        // masked).
        if (trip && *trip < kVectorBytes / plan->maxBytes)
          return;
        if (accumulatesAcrossOuterLoop(loop, *plan))
          return;
        loops.emplace_back(loop, std::move(*plan));
      });
      for (auto &[loop, plan] : loops)
        maskRemainder(loop, plan);
    });
  }
};

} // namespace
