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
      : OpRewritePattern(context), minWork(minWork) {}
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
    auto function = op->getParentOfType<func::FuncOp>();
    remark::analysis(op.getLoc(), remark::RemarkOpts::name("SequentialKernel")
                                      .category("kiln-lower")
                                      .function(function ? function.getSymName()
                                                         : StringRef()))
        << remark::add("the kernel's loop runs on the calling thread: about "
                       "{0} operations (a memory access counted as {1}) are "
                       "fewer than min-parallel-work ({2}), so starting "
                       "worker threads would cost more than they save",
                       work, kMemoryAccessWeight, minWork)
        << remark::metric("work", static_cast<int64_t>(work));
  }
  uint64_t minWork;
};

struct KilnOuterParallelLoopsPass
    : kiln::impl::KilnOuterParallelLoopsBase<KilnOuterParallelLoopsPass> {
  using KilnOuterParallelLoopsBase::KilnOuterParallelLoopsBase;
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<SplitParallelLoop, SequentializeNestedParallel>(&getContext());
    if (minParallelWork > 0)
      patterns.add<SequentializeSmallParallel>(&getContext(), minParallelWork);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
