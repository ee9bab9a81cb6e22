//===- OuterParallelLoops.cpp - Parallel outer dim, sequential inner ------===//

#include "kiln/Dialect/Kiln/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/IR/Remarks.h"
#include "mlir/Interfaces/CallInterfaces.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"
#include "llvm/Support/FormatVariadic.h"

namespace kiln {
#define GEN_PASS_DEF_KILNOUTERPARALLELLOOPS
#include "kiln/Dialect/Kiln/Transforms/Passes.h.inc"
} // namespace kiln

using namespace mlir;

namespace {

/// scf.parallel (i0, i1, ...) { body }  ->
/// scf.parallel (i0) { scf.for i1 { ... { body } } }
struct SplitParallelLoop : OpRewritePattern<scf::ParallelOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(scf::ParallelOp op,
                                PatternRewriter &rewriter) const override {
    if (op.getNumLoops() < 2)
      return rewriter.notifyMatchFailure(op, "already one-dimensional");
    if (!op.getInitVals().empty())
      return rewriter.notifyMatchFailure(op, "has reductions");
    Location loc = op.getLoc();
    auto outer = scf::ParallelOp::create(
        rewriter, loc, op.getLowerBound().take_front(),
        op.getUpperBound().take_front(), op.getStep().take_front(),
        [&](OpBuilder &b, Location l, ValueRange outerIvs) {
          scf::buildLoopNest(
              b, l, op.getLowerBound().drop_front(),
              op.getUpperBound().drop_front(), op.getStep().drop_front(),
              [&](OpBuilder &ib, Location, ValueRange innerIvs) {
                IRMapping mapping;
                SmallVector<Value> ivs = op.getInductionVars();
                mapping.map(ivs.front(), outerIvs.front());
                for (auto [from, to] :
                     llvm::zip_equal(ArrayRef(ivs).drop_front(), innerIvs))
                  mapping.map(from, to);
                for (Operation &nested : op.getBody()->without_terminator())
                  ib.clone(nested, mapping);
              });
        });
    rewriter.replaceOp(op, outer.getResults());
    return success();
  }
};

/// Replaces `op` (no reductions) by the same iterations as scf.for loops.
void sequentialize(scf::ParallelOp op, PatternRewriter &rewriter) {
  scf::buildLoopNest(
      rewriter, op.getLoc(), op.getLowerBound(), op.getUpperBound(),
      op.getStep(), [&](OpBuilder &b, Location, ValueRange ivs) {
        IRMapping mapping;
        mapping.map(op.getInductionVars(), ivs);
        for (Operation &nested : op.getBody()->without_terminator())
          b.clone(nested, mapping);
      });
  rewriter.eraseOp(op);
}

/// An scf.parallel inside another one (e.g. the columns loop of a matmul
/// nested in its reduction loop) runs sequentially in the enclosing
/// thread: nested parallel regions would only add fork overhead.
struct SequentializeNestedParallel : OpRewritePattern<scf::ParallelOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(scf::ParallelOp op,
                                PatternRewriter &rewriter) const override {
    if (!op->getParentOfType<scf::ParallelOp>())
      return rewriter.notifyMatchFailure(op, "outermost parallel loop");
    if (!op.getInitVals().empty())
      return rewriter.notifyMatchFailure(op, "has reductions");
    sequentialize(op, rewriter);
    return success();
  }
};

/// An analysis remark `name` (category `kiln-lower`) at `op`, naming the
/// function it is in.
remark::detail::InFlightRemark loopRemark(scf::ParallelOp op, StringRef name) {
  auto function = op->getParentOfType<func::FuncOp>();
  return remark::analysis(
      op.getLoc(),
      remark::RemarkOpts::name(name)
          .category("kiln-lower")
          .function(function ? function.getSymName() : StringRef()));
}

/// Work counts saturate here (far above any threshold).
constexpr uint64_t kWorkCap = uint64_t(1) << 62;

uint64_t saturatingMul(uint64_t a, uint64_t b) {
  return a && b > kWorkCap / a ? kWorkCap : std::min(a * b, kWorkCap);
}
uint64_t saturatingAdd(uint64_t a, uint64_t b) {
  return std::min(a + b, kWorkCap);
}

/// The range [lo, hi] an index value takes, where the IR shows it: a
/// constant; an induction variable of an enclosing loop (its bounds'
/// ranges); +, - and min/max of such values (unsigned ones of non-negative
/// values); * and / by a non-negative constant; the remainder by a positive
/// constant. Only the work estimate uses it: a wrong range would only move
/// a loop between the calling thread and the workers. A column reduction's
/// last block (`min(256 - 128 * i, 128)` columns) is bounded this way.
/// Ranges are kept within +-2^40 (far beyond any memref's size), so the
/// arithmetic on them cannot overflow.
struct Range {
  int64_t lo, hi;
};
constexpr int64_t kRangeLimit = int64_t(1) << 40;

std::optional<Range> rangeOf(Value value, int depth = 0) {
  // Index arithmetic is shallow; the limit bounds the (tree) recursion.
  if (depth > 10)
    return std::nullopt;
  auto checked = [](int64_t lo, int64_t hi) -> std::optional<Range> {
    if (lo > hi || lo < -kRangeLimit || hi > kRangeLimit)
      return std::nullopt;
    return Range{lo, hi};
  };
  if (std::optional<int64_t> c = getConstantIntValue(value))
    return checked(*c, *c);
  if (auto arg = dyn_cast<BlockArgument>(value)) {
    Operation *owner = arg.getOwner()->getParentOp();
    Value lower, upper;
    if (auto loop = dyn_cast<scf::ForOp>(owner)) {
      if (arg != loop.getInductionVar())
        return std::nullopt;
      lower = loop.getLowerBound();
      upper = loop.getUpperBound();
    } else if (auto loop = dyn_cast<scf::ParallelOp>(owner)) {
      unsigned d = arg.getArgNumber();
      lower = loop.getLowerBound()[d];
      upper = loop.getUpperBound()[d];
    } else {
      return std::nullopt;
    }
    std::optional<Range> lb = rangeOf(lower, depth + 1);
    std::optional<Range> ub = rangeOf(upper, depth + 1);
    if (!lb || !ub)
      return std::nullopt;
    return checked(lb->lo, std::max(lb->lo, ub->hi - 1));
  }
  Operation *op = value.getDefiningOp();
  // Only these ops are bounded: the operands of others are not looked at.
  if (!isa_and_nonnull<arith::MinSIOp, arith::MinUIOp, arith::MaxSIOp,
                       arith::MaxUIOp, arith::AddIOp, arith::SubIOp,
                       arith::MulIOp, arith::DivUIOp, arith::DivSIOp,
                       arith::RemUIOp, arith::RemSIOp>(op))
    return std::nullopt;
  std::optional<Range> a = rangeOf(op->getOperand(0), depth + 1);
  std::optional<Range> b = rangeOf(op->getOperand(1), depth + 1);
  if (!a || !b)
    return std::nullopt;
  // The unsigned forms agree with the signed ones on non-negative values.
  bool nonNegative = a->lo >= 0 && b->lo >= 0;
  if (isa<arith::MinSIOp>(op) || (isa<arith::MinUIOp>(op) && nonNegative))
    return checked(std::min(a->lo, b->lo), std::min(a->hi, b->hi));
  if (isa<arith::MaxSIOp>(op) || (isa<arith::MaxUIOp>(op) && nonNegative))
    return checked(std::max(a->lo, b->lo), std::max(a->hi, b->hi));
  if (isa<arith::AddIOp>(op))
    return checked(a->lo + b->lo, a->hi + b->hi);
  if (isa<arith::SubIOp>(op))
    return checked(a->lo - b->hi, a->hi - b->lo);
  bool constantB = b->lo == b->hi;
  if (isa<arith::MulIOp>(op)) {
    // By a non-negative constant on either side (|a|, c <= 2^40: the
    // products fit in 128 bits and are checked against the limit).
    if (a->lo == a->hi && !constantB)
      std::swap(a, b);
    if (b->lo != b->hi || b->lo < 0)
      return std::nullopt;
    __int128 lo = __int128(a->lo) * b->lo, hi = __int128(a->hi) * b->lo;
    if (lo < -kRangeLimit || hi > kRangeLimit)
      return std::nullopt;
    return checked(int64_t(lo), int64_t(hi));
  }
  if (isa<arith::DivUIOp, arith::DivSIOp>(op) && constantB && b->lo > 0 &&
      a->lo >= 0)
    return checked(a->lo / b->lo, a->hi / b->lo);
  if (isa<arith::RemUIOp, arith::RemSIOp>(op) && constantB && b->lo > 0 &&
      a->lo >= 0)
    return checked(0, std::min(a->hi, b->lo - 1));
  return std::nullopt;
}

/// At most how many iterations a loop dim runs (its bounds' ranges and a
/// positive constant step), or nullopt.
std::optional<uint64_t> maxTrips(Value lower, Value upper, Value step) {
  std::optional<Range> lb = rangeOf(lower);
  std::optional<Range> ub = rangeOf(upper);
  std::optional<int64_t> st = getConstantIntValue(step);
  if (!lb || !ub || !st || *st <= 0)
    return std::nullopt;
  if (ub->hi <= lb->lo)
    return uint64_t(0);
  return (uint64_t(ub->hi - lb->lo) + uint64_t(*st) - 1) / uint64_t(*st);
}

/// Lanes of a vector type; 1 for anything else.
uint64_t lanesOf(Type type) {
  if (auto vector = dyn_cast<VectorType>(type))
    return std::max<int64_t>(vector.getNumElements(), 1);
  return 1;
}

/// What a memory access counts per lane against an arithmetic op per lane.
/// Measured on the development machine (Zen 5, 2 threads, data in cache):
/// with 1 the work a kernel ran per microsecond on one thread varied six
/// times between kernel kinds (60 000 for a transpose, 370 000 for a small
/// matmul's register-blocked FMAs); with 12 it is 275 000 to 580 000 for
/// elementwise ops, exp, transposes, row reductions, softmax, slice copies
/// and matmul alike.
constexpr uint64_t kMemoryAccessWeight = 12;

bool accessesMemory(Operation *op) {
  auto effects = dyn_cast<MemoryEffectOpInterface>(op);
  return effects && (effects.hasEffect<MemoryEffects::Read>() ||
                     effects.hasEffect<MemoryEffects::Write>());
}

std::optional<uint64_t> workOf(Block &block);

/// The operations one execution of `op` performs (see the pass
/// description), or nullopt when that is not known statically.
std::optional<uint64_t> workOf(Operation *op) {
  // A stack allocation in a worksharing loop is freed per iteration (its
  // body is an alloca scope); in a sequential loop it would pile up. A
  // linalg op left (none after convert-linalg-to-parallel-loops) runs its
  // body per element of its loops, which this count does not follow.
  if (isa<CallOpInterface, scf::WhileOp, memref::AllocaOp, linalg::LinalgOp>(
          op))
    return std::nullopt;
  // A terminator (yield, reduce) passes values on: no work.
  if (op->hasTrait<OpTrait::IsTerminator>())
    return uint64_t(0);
  if (auto copy = dyn_cast<memref::CopyOp>(op)) {
    auto type = dyn_cast<MemRefType>(copy.getSource().getType());
    if (!type || !type.hasStaticShape())
      return std::nullopt;
    // A read and a write per element.
    return saturatingMul(std::max<uint64_t>(type.getNumElements(), 1),
                         2 * kMemoryAccessWeight);
  }
  uint64_t trips = 1;
  if (auto loop = dyn_cast<scf::ForOp>(op)) {
    std::optional<uint64_t> n =
        maxTrips(loop.getLowerBound(), loop.getUpperBound(), loop.getStep());
    if (!n)
      return std::nullopt;
    trips = *n;
  } else if (auto loop = dyn_cast<scf::ParallelOp>(op)) {
    for (auto [lb, ub, st] : llvm::zip_equal(
             loop.getLowerBound(), loop.getUpperBound(), loop.getStep())) {
      std::optional<uint64_t> n = maxTrips(lb, ub, st);
      if (!n)
        return std::nullopt;
      trips = saturatingMul(trips, *n);
    }
  } else if (op->getNumRegions() == 0) {
    // One operation per lane of its widest vector operand or result.
    uint64_t lanes = 1;
    for (Type type : op->getOperandTypes())
      lanes = std::max(lanes, lanesOf(type));
    for (Type type : op->getResultTypes())
      lanes = std::max(lanes, lanesOf(type));
    return accessesMemory(op) ? lanes * kMemoryAccessWeight : lanes;
  }
  // Loops run their body `trips` times; other region ops (scf.if, scopes)
  // are counted as if every region ran.
  uint64_t body = 1;
  for (Region &region : op->getRegions())
    for (Block &block : region) {
      std::optional<uint64_t> work = workOf(block);
      if (!work)
        return std::nullopt;
      body = saturatingAdd(body, *work);
    }
  return saturatingMul(trips, body);
}

std::optional<uint64_t> workOf(Block &block) {
  uint64_t total = 0;
  for (Operation &op : block) {
    std::optional<uint64_t> work = workOf(&op);
    if (!work)
      return std::nullopt;
    total = saturatingAdd(total, *work);
  }
  return total;
}

/// An outermost scf.parallel with less known work than `minWork` runs its
/// iterations in order on the calling thread.
struct SequentializeSmallParallel : OpRewritePattern<scf::ParallelOp> {
  SequentializeSmallParallel(MLIRContext *context, uint64_t minWork)
      : OpRewritePattern(context, /*benefit=*/3), minWork(minWork) {}
  LogicalResult matchAndRewrite(scf::ParallelOp op,
                                PatternRewriter &rewriter) const override {
    if (op->getParentOfType<scf::ParallelOp>())
      return rewriter.notifyMatchFailure(op, "nested parallel loop");
    if (!op.getInitVals().empty())
      return rewriter.notifyMatchFailure(op, "has reductions");
    std::optional<uint64_t> work = workOf(op);
    if (!work || *work >= minWork)
      return rewriter.notifyMatchFailure(op, "unknown or enough work");
    remarkSequential(op, *work);
    sequentialize(op, rewriter);
    return success();
  }
  /// Says so (analysis `SequentialKernel`, category `kiln-lower`): the
  /// lowering's remark for the op says "in parallel" of the loop.
  void remarkSequential(scf::ParallelOp op, uint64_t work) const {
    if (!op->getContext()->getRemarkEngine())
      return;
    loopRemark(op, "SequentialKernel")
        << remark::add("the kernel's loop runs on the calling thread: about "
                       "{0} operations (a memory access counted as {1}) are "
                       "fewer than min-parallel-work ({2}), so starting "
                       "worker threads would cost more than they save",
                       work, kMemoryAccessWeight, minWork)
        << remark::metric("work", static_cast<int64_t>(work));
  }
  uint64_t minWork;
};

/// An outermost parallel loop whose first dim runs fewer iterations than
/// this shares its next dims with the threads too (a [1, N] or [2, N]
/// shape, where splitting the first dim alone left all but one or two
/// threads idle). 64 iterations keep any thread count up to 16 within a
/// quarter of an even split.
constexpr uint64_t kMinParallelTrips = 64;

/// When the last dim joins the parallel iterations, it goes in blocks of
/// about this much work (with the memory weight above; 4096 iterations of
/// an elementwise `exp` are about 200 000), at most kMaxBlock iterations
/// each: an elementwise body keeps an inner loop of consecutive elements,
/// which LLVM vectorizes, and a block starts at a multiple of its size
/// (a power of two: a block of a row that starts 64-byte aligned starts
/// aligned, as non-temporal stores need). An iteration of this much work or
/// more (a segment of a split reduction, a slice copy) is a block of its own.
constexpr uint64_t kBlockWork = 1 << 18;
constexpr int64_t kMaxBlock = 4096;

/// scf.parallel (i0, i1, ..., in) with few iterations of i0  ->
/// scf.parallel (t) over the iterations of (i0, ..., ik) row-major, the
/// last dim (when it joins) in blocks { (i0, ..., ik) from t by division;
/// scf.for over the dims after ik (and the block's part of in) { body } }
/// with k the first dim where the product of trip counts reaches
/// kMinParallelTrips (or the last). Iterations are independent, so any
/// grouping gives the same results.
struct CollapseSmallOuterDims : OpRewritePattern<scf::ParallelOp> {
  CollapseSmallOuterDims(MLIRContext *context, PatternBenefit benefit)
      : OpRewritePattern(context, benefit) {}
  LogicalResult matchAndRewrite(scf::ParallelOp op,
                                PatternRewriter &rewriter) const override {
    unsigned n = op.getNumLoops();
    if (n < 2)
      return rewriter.notifyMatchFailure(op, "one-dimensional");
    if (!op.getInitVals().empty())
      return rewriter.notifyMatchFailure(op, "has reductions");
    if (op->getParentOfType<scf::ParallelOp>())
      return rewriter.notifyMatchFailure(op, "nested parallel loop");
    SmallVector<int64_t> lower, step, trips;
    for (auto [lb, ub, st] : llvm::zip_equal(
             op.getLowerBound(), op.getUpperBound(), op.getStep())) {
      std::optional<int64_t> l = getConstantIntValue(lb);
      std::optional<int64_t> u = getConstantIntValue(ub);
      std::optional<int64_t> s = getConstantIntValue(st);
      if (!l || !u || !s || *s <= 0)
        return rewriter.notifyMatchFailure(op, "non-constant bounds");
      lower.push_back(*l);
      step.push_back(*s);
      trips.push_back(*u > *l ? llvm::divideCeil(*u - *l, *s) : 0);
    }
    if (uint64_t(trips[0]) >= kMinParallelTrips || llvm::is_contained(trips, 0))
      return rewriter.notifyMatchFailure(op, "enough outer iterations");
    // The last dim's block: iterations of kBlockWork or more (or of
    // unknown work) stand alone.
    std::optional<uint64_t> work = workOf(*op.getBody());
    int64_t block = 1;
    if (work && *work < kBlockWork)
      block = std::min<int64_t>(
          kMaxBlock,
          llvm::bit_floor(kBlockWork / std::max<uint64_t>(*work, 1)));
    block = std::min(block, trips[n - 1]);
    SmallVector<int64_t> parallelTrips(trips);
    parallelTrips[n - 1] = llvm::divideCeil(trips[n - 1], block);
    unsigned merged = 0;
    int64_t total = 1;
    while (merged < n && uint64_t(total) < kMinParallelTrips) {
      // Far beyond any buffer's size (an IR file's loop may claim it): the
      // count must not overflow.
      if (parallelTrips[merged] > (int64_t(1) << 62) / total)
        return rewriter.notifyMatchFailure(op, "too many iterations");
      total *= parallelTrips[merged++];
    }
    if (total == trips[0])
      return rewriter.notifyMatchFailure(op, "nothing to share");
    bool blocked = merged == n && block > 1;

    Location loc = op.getLoc();
    auto constant = [&](OpBuilder &b, int64_t value) -> Value {
      return arith::ConstantIndexOp::create(b, loc, value);
    };
    Value zero = constant(rewriter, 0), one = constant(rewriter, 1);
    auto outer = scf::ParallelOp::create(
        rewriter, loc, ValueRange{zero}, ValueRange{constant(rewriter, total)},
        ValueRange{one}, [&](OpBuilder &b, Location l, ValueRange ivs) {
          // Row-major position of t among the merged dims' iterations.
          SmallVector<Value> positions(merged);
          Value rest = ivs[0];
          for (unsigned d = merged; d-- > 0;) {
            if (parallelTrips[d] == 1) { // a unit dim: position 0
              positions[d] = constant(b, 0);
              continue;
            }
            Value size = constant(b, parallelTrips[d]);
            bool last = llvm::all_of(ArrayRef(parallelTrips).take_front(d),
                                     [](int64_t t) { return t == 1; });
            positions[d] =
                last ? rest : arith::RemUIOp::create(b, l, rest, size);
            if (!last)
              rest = arith::DivUIOp::create(b, l, rest, size);
          }
          auto indexOf = [&](unsigned d, Value position) -> Value {
            Value scaled = step[d] == 1
                               ? position
                               : arith::MulIOp::create(b, l, position,
                                                       constant(b, step[d]));
            return lower[d] == 0 ? scaled
                                 : arith::AddIOp::create(b, l, scaled,
                                                         constant(b, lower[d]));
          };
          IRMapping mapping;
          SmallVector<Value> oldIvs = op.getInductionVars();
          SmallVector<Value> innerLower, innerUpper, innerStep;
          for (unsigned d = 0; d < merged; ++d)
            if (!(blocked && d == n - 1))
              mapping.map(oldIvs[d], indexOf(d, positions[d]));
          for (unsigned d = merged; d < n; ++d) {
            innerLower.push_back(op.getLowerBound()[d]);
            innerUpper.push_back(op.getUpperBound()[d]);
            innerStep.push_back(op.getStep()[d]);
          }
          SmallVector<Value> innerIvs(oldIvs.begin() + merged, oldIvs.end());
          if (blocked) {
            // Positions [p * block, min(p * block + block, trips)) of the
            // last dim, as indices.
            Value begin = arith::MulIOp::create(b, l, positions[n - 1],
                                                constant(b, block));
            Value end = arith::AddIOp::create(b, l, begin, constant(b, block));
            if (trips[n - 1] % block != 0)
              end =
                  arith::MinUIOp::create(b, l, end, constant(b, trips[n - 1]));
            innerLower.push_back(indexOf(n - 1, begin));
            innerUpper.push_back(indexOf(n - 1, end));
            innerStep.push_back(op.getStep()[n - 1]);
            innerIvs.push_back(oldIvs[n - 1]);
          }
          scf::buildLoopNest(
              b, l, innerLower, innerUpper, innerStep,
              [&](OpBuilder &ib, Location, ValueRange loopIvs) {
                for (auto [from, to] : llvm::zip_equal(innerIvs, loopIvs))
                  mapping.map(from, to);
                for (Operation &nested : op.getBody()->without_terminator())
                  ib.clone(nested, mapping);
              });
        });
    outer->setAttrs(op->getDiscardableAttrDictionary());
    remarkShared(op, merged, total, blocked ? block : 1);
    rewriter.replaceOp(op, outer.getResults());
    return success();
  }

  /// Says so (analysis `ParallelDims`, category `kiln-lower`).
  void remarkShared(scf::ParallelOp op, unsigned merged, int64_t total,
                    int64_t block) const {
    if (!op->getContext()->getRemarkEngine())
      return;
    std::string blocks =
        block > 1 ? llvm::formatv(", the last in blocks of {0}", block).str()
                  : std::string();
    loopRemark(op, "ParallelDims")
        << remark::add("the kernel's first dim runs fewer than {0} "
                       "iterations, so the threads share its first {1} dims "
                       "({2} iterations{3})",
                       kMinParallelTrips, merged, total, blocks)
        << remark::metric("iterations", total);
  }
};

struct KilnOuterParallelLoopsPass
    : kiln::impl::KilnOuterParallelLoopsBase<KilnOuterParallelLoopsPass> {
  using KilnOuterParallelLoopsBase::KilnOuterParallelLoopsBase;
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    // A small loop runs on the calling thread as it is; a loop with few
    // outer iterations shares more dims before the rest become inner loops.
    patterns.add<SplitParallelLoop, SequentializeNestedParallel>(&getContext());
    patterns.add<CollapseSmallOuterDims>(&getContext(), /*benefit=*/2);
    if (minParallelWork > 0)
      patterns.add<SequentializeSmallParallel>(&getContext(), minParallelWork);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
