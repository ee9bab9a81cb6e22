//===- ColumnGroups.cpp - Reductions over a middle dim with their chain ---===//
//
// A layer norm over the channels of [N, C, H, W] (ConvNeXt's LayerNorm2d)
// reduces over C, a dim with kept dims after it, and its chain broadcasts
// the per-(n, h, w) statistics back over C. Kernel by kernel that is two
// column reductions and an elementwise loop, each reading the tensor from
// memory (a row group takes only reductions over trailing dims).
// formColumnGroups makes such a graph one kiln.fused column group on
// [O, C, T] -- the dims before the reduced run, the run, the dims after
// it, each run collapsed -- which the lowering computes a block of columns
// of T at a time: the block's C x B elements come from memory once, and
// the later reductions and the chain read them from cache. Values also
// used after the group (a layer norm's statistics kept for its gradient)
// are more results when they have the rows' shape or the columns'.
//
// Exact: each reduction reduces each column in the column reduction
// kernel's order (lanes by reduced index, kiln::conversion's plan), and
// every other value is the same scalar operation on the same operands.
//
//===----------------------------------------------------------------------===//

#include "kiln/Conversion/ReductionPlan.h"
#include "kiln/Dialect/Kiln/IR/KilnOps.h"
#include "kiln/Dialect/Kiln/IR/KilnShapeInference.h"
#include "kiln/Dialect/Kiln/Transforms/Passes.h"

#include "RecomputeBudget.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/Remarks.h"

#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/Support/FormatVariadic.h"

#include <queue>

using namespace mlir;
using namespace kiln;

namespace {

ArrayRef<int64_t> shapeOf(Value v) {
  return cast<RankedTensorType>(v.getType()).getShape();
}

/// An elementwise op of the fuser's kind (not a splat constant), of one
/// ranked result.
bool isElementwiseOp(Operation *op) {
  return op->hasTrait<kiln::OpTrait::Elementwise>() && !isSplatConstant(op) &&
         op->getNumResults() == 1 &&
         isa<RankedTensorType>(op->getResult(0).getType());
}

/// The dims a column group's shape splits into: [0, first) outer, [first,
/// last) the reduced run, [last, rank) the columns.
struct Split {
  int64_t first = 0, last = 0;
  bool operator==(const Split &other) const {
    return first == other.first && last == other.last;
  }
};

/// The split of a column reduction: a keepdim sum, prod, amax or amin
/// whose reduced dims of size > 1 are consecutive, with a kept dim of size
/// > 1 after them.
std::optional<Split> columnSplit(Operation *op) {
  if (!isa<SumOp, ProdOp, AmaxOp, AminOp>(op))
    return std::nullopt;
  auto keepdim = op->getAttrOfType<BoolAttr>("keepdim");
  if (!keepdim || !keepdim.getValue())
    return std::nullopt;
  auto type = cast<RankedTensorType>(op->getOperand(0).getType());
  auto dims = op->getAttrOfType<DenseI64ArrayAttr>("dims");
  SmallVector<bool> mask = getReducedDimsMask(
      type, dims ? std::optional<ArrayRef<int64_t>>(dims.asArrayRef())
                 : std::nullopt);
  ArrayRef<int64_t> shape = type.getShape();
  int64_t rank = type.getRank();
  Split split{-1, -1};
  for (int64_t d = 0; d < rank; ++d) {
    if (shape[d] == 1 || !mask[d])
      continue;
    if (split.first < 0)
      split.first = d;
    split.last = d + 1;
  }
  if (split.first < 0)
    return std::nullopt;
  bool columns = false;
  for (int64_t d = split.first; d < rank; ++d) {
    if (shape[d] == 1)
      continue;
    if (d < split.last && !mask[d])
      return std::nullopt; // a kept dim inside the run
    columns |= d >= split.last;
  }
  if (!columns)
    return std::nullopt; // a trailing run: a row group's
  return split;
}

/// `shape` (aligned with `space` at the end) as [O, C, T] of the split:
/// along each part, every dim of size > 1 of `space` is either kept
/// (collapsed) or 1 (broadcast); nothing when a part mixes them.
std::optional<SmallVector<int64_t>>
collapse(ArrayRef<int64_t> shape, ArrayRef<int64_t> space, Split split) {
  int64_t rank = space.size();
  int64_t offset = rank - static_cast<int64_t>(shape.size());
  if (offset < 0)
    return std::nullopt;
  SmallVector<int64_t> collapsed;
  for (auto [lo, hi] : {std::pair<int64_t, int64_t>{0, split.first},
                        {split.first, split.last},
                        {split.last, rank}}) {
    std::optional<bool> full;
    int64_t size = 1;
    for (int64_t d = lo; d < hi; ++d) {
      if (space[d] == 1)
        continue;
      int64_t own = d >= offset ? shape[d - offset] : 1;
      if (own != 1 && own != space[d])
        return std::nullopt;
      if (full && *full != (own != 1))
        return std::nullopt;
      full = own != 1;
      size *= space[d];
    }
    collapsed.push_back(full && *full ? size : 1);
  }
  return collapsed;
}

/// "[2] x [6] x [4, 5]": `space`'s dims before the run, in it and after
/// it, for refusal reasons.
std::string partsText(ArrayRef<int64_t> space, Split split) {
  std::string text;
  llvm::raw_string_ostream os(text);
  auto part = [&](int64_t lo, int64_t hi) {
    os << "[";
    llvm::interleaveComma(space.slice(lo, hi - lo), os);
    os << "]";
  };
  part(0, split.first);
  os << " x ";
  part(split.first, split.last);
  os << " x ";
  part(split.last, space.size());
  return text;
}

/// Rewrites `op`, a softmax or log_softmax over a dim with kept dims of
/// size > 1 after it, into the column reductions and chain it computes --
/// m = amax(x), s = sum(exp(x - m)) over the dim (keepdim), then
/// exp(x - m) * (1 / s), or (x - m) - log(s) -- when the softmax's own
/// packed tiles do not apply (kiln::conversion::packedTileBlock: a last
/// dim too short for pieces of 256 bytes) and a column group of them would
/// be formed (columnGroupPlan accepts its [O, C, T], the dims after the
/// softmax's collapsed): the group reads each block of columns from
/// memory once, where the softmax's three kernels (its column maxima, its
/// column sums, its elementwise pass) read the tensor three times, the
/// sums' exps into accumulators in memory (32x64x56x56 f32 over dim 1:
/// 25 -> 4 ms at 1 thread, 11.3 -> 2 at 2). The same operations in the
/// same order as those kernels (the column reductions' lane order, the
/// reciprocal once per column), so the same bits. Returns whether it
/// rewrote.
bool expandColumnSoftmax(Operation *op) {
  auto type = dyn_cast<RankedTensorType>(op->getOperand(0).getType());
  if (!type || !type.hasStaticShape())
    return false;
  int64_t rank = type.getRank();
  auto dimAttr = op->getAttrOfType<IntegerAttr>("dim");
  std::optional<int64_t> dim =
      dimAttr ? normalizeDim(dimAttr.getInt(), rank) : std::nullopt;
  // A rank-0 softmax (dim 0 or -1) has no dim to read a size from.
  if (!dim || rank == 0 || type.getDimSize(*dim) < 2)
    return false;
  ArrayRef<int64_t> shape = type.getShape();
  int64_t outer = 1, columns = 1;
  for (int64_t d = 0; d < *dim; ++d)
    outer *= shape[d];
  for (int64_t d = *dim + 1; d < rank; ++d)
    columns *= shape[d];
  if (columns < 2)
    return false; // the rows kernels' case
  int64_t rows = shape[*dim];
  int64_t bytes = type.getElementTypeBitWidth() / 8;
  // The softmax's packed tiles, where they apply, compute each exp once.
  if (kiln::conversion::packedTileBlock(rows, shape.back(), bytes))
    return false;
  if (kiln::conversion::columnGroupPlan(rows, columns, bytes).refusal !=
          kiln::conversion::ColumnGroupRefusal::None ||
      kiln::conversion::planReductionSplit({outer, rows, columns},
                                           {false, true, false}, bytes))
    return false;
  bool isLog = isa<LogSoftmaxOp>(op);
  Location loc = op->getLoc();
  OpBuilder b(op);
  SmallVector<int64_t> keptShape(shape);
  keptShape[*dim] = 1;
  auto keptType = RankedTensorType::get(keptShape, type.getElementType());
  DenseI64ArrayAttr dims = b.getDenseI64ArrayAttr({*dim});
  BoolAttr keep = b.getBoolAttr(true);
  Value x = op->getOperand(0);
  Value m = AmaxOp::create(b, loc, keptType, x, dims, keep);
  Value shifted = SubOp::create(b, loc, x, m);
  Value exps = ExpOp::create(b, loc, shifted);
  Value s = SumOp::create(b, loc, keptType, exps, dims, keep);
  Value result;
  if (isLog) {
    result = SubOp::create(b, loc, shifted, LogOp::create(b, loc, s));
  } else {
    auto scalarType = RankedTensorType::get({}, type.getElementType());
    Value one = ConstantOp::create(
        b, loc, scalarType,
        DenseElementsAttr::get(scalarType,
                               b.getFloatAttr(type.getElementType(), 1.0)));
    result = MulOp::create(b, loc, exps, DivOp::create(b, loc, one, s));
  }
  if (auto remark = remark::passed(
          loc, remark::RemarkOpts::name("ColumnSoftmax")
                   .category("kiln-fuse")
                   .function(op->getParentOfType<func::FuncOp>().getSymName())))
    remark << remark::add(
        "{0} over dim {1} of {2}: written as its column reductions and "
        "chain ({3}), for a column group over [{4}, {5}, {6}]",
        op->getName().getStringRef(), *dim, type,
        isLog ? "amax, sum of exp(x - m), x - m - log(s)"
              : "amax, sum of exp(x - m), exp(x - m) * (1 / s)",
        outer, rows, columns);
  op->getResult(0).replaceAllUsesWith(result);
  op->erase();
  return true;
}

class ColumnGrouper {
public:
  ColumnGrouper(Block &block, size_t maxGroupOps,
                llvm::DenseMap<Operation *, std::string> *refusals)
      : block(block), maxGroupOps(maxGroupOps), refusals(refusals) {}

  void run() {
    if (llvm::none_of(
            block, [](Operation &op) { return columnSplit(&op).has_value(); }))
      return;
    SmallVector<Operation *> roots;
    for (Operation &op : llvm::reverse(block))
      if (isElementwiseOp(&op))
        roots.push_back(&op);
    for (Operation *root : roots)
      if (!done.contains(root))
        tryRoot(root);
  }

private:
  /// Grows a group from `root` backwards: elementwise ops and column
  /// reductions of one split of the root's shape, each used only inside or
  /// also after the root (an output: a value of the rows' shape or the
  /// columns', a layer norm's statistics kept for its gradient). An output
  /// of another shape is read as an operand instead, and the group grows
  /// again.
  void tryRoot(Operation *root) {
    done.insert(root);
    llvm::SmallPtrSet<Operation *, 4> notOutputs;
    while (true) {
      std::optional<Operation *> rejected = grow(root, notOutputs);
      if (!rejected)
        return;
      notOutputs.insert(*rejected);
    }
  }

  /// One try of tryRoot's: nothing when done (formed or not), or an output
  /// of neither shape to leave out.
  std::optional<Operation *>
  grow(Operation *root, const llvm::SmallPtrSetImpl<Operation *> &notOutputs) {
    ArrayRef<int64_t> space = shapeOf(root->getResult(0));
    if (space.size() < 2)
      return std::nullopt;
    SmallVector<Operation *> outputs;
    llvm::SetVector<Operation *> members;
    // Members also computed outside for users before the root (their
    // originals stay; recomputed in the group instead of stored).
    llvm::SmallPtrSet<Operation *, 8> copies;
    // Values the members read, for the cost of a copy's new inputs.
    llvm::SmallPtrSet<Value, 16> read;
    members.insert(root);
    read.insert(root->operand_begin(), root->operand_end());
    std::optional<Split> split;
    SmallVector<Operation *> reductions;
    auto later = [](Operation *a, Operation *b) {
      return a->isBeforeInBlock(b);
    };
    std::priority_queue<Operation *, std::vector<Operation *>, decltype(later)>
        candidates(later);
    llvm::SmallPtrSet<Operation *, 16> queued;
    auto pushOperands = [&](Operation *op) {
      for (Value operand : op->getOperands()) {
        Operation *def = operand.getDefiningOp();
        if (def && def->getBlock() == &block && !isSplatConstant(def) &&
            queued.insert(def).second)
          candidates.push(def);
      }
    };
    pushOperands(root);
    while (!candidates.empty() && members.size() < maxGroupOps) {
      Operation *p = candidates.top();
      candidates.pop();
      // Used outside as well (a copy's original is outside): an output when
      // every such use is after the root (the kernel's place); else an
      // elementwise op is recomputed when that is cheaper than storing it,
      // and anything else is stored and read as an operand.
      bool inside = true, afterRoot = true;
      for (Operation *user : p->getUsers()) {
        if (members.contains(user) && !copies.contains(user))
          continue;
        inside = false;
        afterRoot &= root->isBeforeInBlock(user);
      }
      bool copy = false;
      if (!inside && (!afterRoot || notOutputs.contains(p))) {
        if (!isElementwiseOp(p) || !cheaperToRecompute(p, read))
          continue;
        copy = true;
      }
      if (isElementwiseOp(p)) {
        if (!isExpandableTo(shapeOf(p->getResult(0)), space))
          continue;
      } else {
        std::optional<Split> own = columnSplit(p);
        if (!own || shapeOf(p->getOperand(0)) != space ||
            (split && !(*split == *own)))
          continue;
        split = own;
        reductions.push_back(p);
      }
      members.insert(p);
      read.insert(p->operand_begin(), p->operand_end());
      if (copy)
        copies.insert(p);
      else if (!inside)
        outputs.push_back(p);
      pushOperands(p);
    }
    if (!split) {
      // No reduction below: neither below any of these ops.
      for (Operation *member : members)
        done.insert(member);
      return std::nullopt;
    }
    // Every value read or computed collapses to [O, C, T]; outputs are of
    // the rows' shape or the columns'.
    SmallVector<int64_t> rows = *collapse(space, space, *split);
    SmallVector<int64_t> columns(space);
    for (int64_t d = split->first; d < split->last; ++d)
      columns[d] = 1;
    for (Operation *output : outputs) {
      ArrayRef<int64_t> shape = shapeOf(output->getResult(0));
      if (shape != space && shape != ArrayRef<int64_t>(columns))
        return output;
    }
    // A member reading (or computing) `v`, which has no [O, C, T] view.
    auto noView = [&](Operation *member, StringRef verb, Value v) {
      refuse(reductions, [&] {
        return llvm::formatv("{0} {1} {2}, which varies along only part of "
                             "{3} (the dims before the reduced run, the run, "
                             "the dims after it)",
                             describeOp(member), verb, v.getType(),
                             partsText(space, *split))
            .str();
      });
      return std::nullopt;
    };
    for (Operation *member : members) {
      for (Value v : member->getOperands())
        if (!collapse(shapeOf(v), space, *split))
          return noView(member, "reads", v);
      if (!collapse(shapeOf(member->getResult(0)), space, *split))
        return noView(member, "computes", member->getResult(0));
    }
    // A block of columns holds the rows in cache, and the reductions are
    // not split (their kernels' order is the column reduction's).
    int64_t bytes = widestReducedElementBytes(reductions);
    if (rows[1] < 2)
      return std::nullopt;
    using kiln::conversion::ColumnGroupRefusal;
    kiln::conversion::ColumnGroupPlan plan =
        kiln::conversion::columnGroupPlan(rows[1], rows[2], bytes);
    if (plan.refusal != ColumnGroupRefusal::None) {
      refuse(reductions, [&] {
        switch (plan.refusal) {
        case ColumnGroupRefusal::NarrowRows:
          return llvm::formatv("its rows of [{0}, {1}, {2}] are {3} bytes, "
                               "narrower than a cache line",
                               rows[0], rows[1], rows[2], plan.pieceBytes)
              .str();
        case ColumnGroupRefusal::SmallPieces:
          return llvm::formatv(
                     "the largest block of columns of [{0}, {1}, {2}] (a "
                     "divisor of {2}, at most 512 bytes of a row and the "
                     "block in cache) is {3} bytes of each row, under {4}: "
                     "blocks that small lose to the separate kernels",
                     rows[0], rows[1], rows[2], plan.pieceBytes,
                     kiln::conversion::kColumnGroupMinPieceBytes)
              .str();
        default:
          return llvm::formatv(
                     "the {0} rows of [{1}, {0}, {2}] lie {3} bytes apart, a "
                     "multiple of 4 KB: every row's piece of a block falls "
                     "in the same cache sets, and each pass would read the "
                     "block from memory again",
                     rows[1], rows[0], rows[2], rows[2] * bytes)
              .str();
        }
      });
      return std::nullopt;
    }
    // Not reached with today's constants (a split needs 8192 rows or more,
    // a block's rows fit in 256 KB), but the bits depend on it.
    if (kiln::conversion::planReductionSplit(rows, {false, true, false},
                                             bytes)) {
      refuse(reductions, [&] {
        return llvm::formatv(
                   "the reduction kernel splits the {0} rows of [{1}, {0}, "
                   "{2}] into segments reduced in parallel (few columns), an "
                   "order a column group does not follow",
                   rows[1], rows[0], rows[2])
            .str();
      });
      return std::nullopt;
    }
    rewrite(root, members, copies, outputs, space, *split, rows);
    return std::nullopt;
  }

  /// Recomputing the elementwise op `p` in the group is cheaper than
  /// storing it when the inputs it adds (operands no member reads yet,
  /// splat constants aside) are at most twice the size of its result: a
  /// stored result is written once and read back (the elementwise fuser's
  /// rule for a value on its own, RecomputeBudget.h). `x - mean(x)` of a layer
  /// norm's gradient, also used by the weight's gradient before the group,
  /// reads x and a row of means.
  static bool cheaperToRecompute(Operation *p,
                                 const llvm::SmallPtrSetImpl<Value> &read) {
    int64_t added = 0;
    llvm::SmallPtrSet<Value, 4> counted;
    for (Value operand : p->getOperands())
      if (!isSplatConstant(operand.getDefiningOp()) &&
          !read.contains(operand) && counted.insert(operand).second)
        added += tensorByteSize(operand);
    return RecomputeBudget::cheaperToRecompute(p, added);
  }

  /// Records why the group of `reductions` is not formed (the first
  /// reason each gets), when the caller asked.
  void refuse(ArrayRef<Operation *> reductions,
              llvm::function_ref<std::string()> reason) {
    if (!refusals)
      return;
    std::string text = reason();
    for (Operation *reduction : reductions)
      refusals->try_emplace(reduction, text);
  }

  /// `members` (root the last) as one kiln.fused column group on `rows`,
  /// yielding the root's value, then the outputs'.
  void rewrite(Operation *root, const llvm::SetVector<Operation *> &members,
               const llvm::SmallPtrSetImpl<Operation *> &copies,
               ArrayRef<Operation *> outputs, ArrayRef<int64_t> space,
               Split split, ArrayRef<int64_t> rows) {
    Location loc = root->getLoc();
    OpBuilder b(root);
    auto collapsedType = [&](Type type) {
      auto ranked = cast<RankedTensorType>(type);
      return RankedTensorType::get(*collapse(ranked.getShape(), space, split),
                                   ranked.getElementType());
    };
    SmallVector<Operation *> ordered;
    for (Operation &op : block)
      if (members.contains(&op))
        ordered.push_back(&op);
    // Operands from outside, once each, viewed as [O, C, T].
    llvm::SetVector<Value> leaves;
    for (Operation *op : ordered)
      for (Value operand : op->getOperands()) {
        Operation *def = operand.getDefiningOp();
        if ((!def || !members.contains(def)) &&
            !(def && isSplatConstant(def) &&
              def->getAttrOfType<DenseElementsAttr>("value")))
          leaves.insert(operand);
      }
    SmallVector<Value> inputs;
    for (Value leaf : leaves) {
      RankedTensorType type = collapsedType(leaf.getType());
      inputs.push_back(type == leaf.getType()
                           ? leaf
                           : ReshapeOp::create(b, loc, type, leaf).getResult());
    }
    SmallVector<Value> results{root->getResult(0)};
    for (Operation *output : outputs)
      results.push_back(output->getResult(0));
    SmallVector<Type> types;
    for (Value result : results)
      types.push_back(collapsedType(result.getType()));
    auto fused = FusedOp::create(b, loc, types, inputs);
    Block *body = b.createBlock(&fused.getBody());
    IRMapping map;
    for (Value leaf : leaves)
      map.map(leaf, body->addArgument(collapsedType(leaf.getType()), loc));
    for (Operation *op : ordered) {
      for (Value operand : op->getOperands()) {
        if (map.contains(operand))
          continue;
        // A splat constant, at the collapsed shape.
        Operation *def = operand.getDefiningOp();
        Operation *copy = b.clone(*def);
        RankedTensorType type = collapsedType(operand.getType());
        copy->getResult(0).setType(type);
        copy->setAttr(
            "value",
            def->getAttrOfType<DenseElementsAttr>("value").resizeSplat(type));
        map.map(operand, copy->getResult(0));
      }
      Operation *copy = b.clone(*op, map);
      copy->getResult(0).setType(collapsedType(op->getResult(0).getType()));
      if (columnSplit(op))
        copy->setAttr("dims", b.getDenseI64ArrayAttr({1}));
    }
    SmallVector<Value> yielded;
    for (Value result : results)
      yielded.push_back(map.lookup(result));
    YieldOp::create(b, loc, yielded);
    b.setInsertionPointAfter(fused);
    for (auto [result, now] : llvm::zip_equal(results, fused.getResults())) {
      Value back = now;
      if (back.getType() != result.getType())
        back = ReshapeOp::create(b, loc, result.getType(), back);
      result.replaceAllUsesWith(back);
    }
    if (auto remark = remark::passed(
            loc,
            remark::RemarkOpts::name("ColumnGroup")
                .category("kiln-fuse")
                .function(root->getParentOfType<func::FuncOp>().getSymName())))
      remark << remark::add(
          "{0} ops in one kernel (a column group over [{1}, {2}, {3}]: each "
          "block of columns reduces over the middle dim, then the elementwise "
          "chain, while the block is in cache{4}{5})",
          ordered.size(), rows[0], rows[1], rows[2],
          outputs.empty()
              ? std::string()
              : ", storing " + std::to_string(results.size()) + " results",
          copies.empty() ? std::string()
                         : ", recomputing " + std::to_string(copies.size()) +
                               " op(s) that users before it also read");
    // Copies stay for their users before the group.
    for (Operation *op : llvm::reverse(ordered)) {
      if (copies.contains(op))
        continue;
      done.insert(op);
      if (refusals)
        refusals->erase(op);
      op->erase();
    }
  }

  Block &block;
  size_t maxGroupOps;
  llvm::DenseMap<Operation *, std::string> *refusals;
  /// Ops tried as roots, erased, or below a root that found no reduction.
  llvm::DenseSet<Operation *> done;
};

} // namespace

void kiln::formColumnGroups(
    Block &block, size_t maxGroupOps,
    llvm::DenseMap<Operation *, std::string> *refusals) {
  for (Operation &op : llvm::make_early_inc_range(block))
    if (isa<SoftmaxOp, LogSoftmaxOp>(op))
      expandColumnSoftmax(&op);
  ColumnGrouper(block, maxGroupOps, refusals).run();
}
