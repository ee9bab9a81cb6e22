//===- FuseElementwise.cpp - Group elementwise chains into kernels --------===//
//
// -kiln-fuse-elementwise: every maximal group of ops that can run as one
// loop nest becomes a `kiln.fused` op, which the lowering turns into one
// kernel. Groups form around a root, the last op of the block not yet
// grouped, by pulling in producers from the latest to the earliest:
//
//  - an op with the Elementwise trait joins when all its users are in the
//    group; when it has users elsewhere, all after the root, and its
//    result has the root's shape, in a group that is one elementwise loop,
//    it joins as one more result of the group (computed and stored in the
//    same loop: one pass over its inputs); otherwise, if recomputing it in
//    the group reads no more bytes than storing its result would move (its
//    new inputs are at most twice its result: written once, read back),
//    the group gets a copy;
//  - an op with FusesProducers (reduction, softmax, gather) can be the
//    group's one anchor: as the root, or, if it also has FusesConsumers and
//    its result is used only by the group, under an elementwise root (the
//    root's chain is then the anchor's epilogue); the anchor's first operand
//    is then computed by the elementwise ops pulled in below it, indexed
//    reads of stored tensors (read in place) and views keeping the last dim
//    (a reshape of a value the chain computes, a permute of any: read
//    through);
//  - with row-groups (the CPU), reductions along the last dim whose results
//    the chain broadcasts back over the rows join the group as a row
//    group's, which also yields values of the rows' shape and per-row
//    values; a reduction anchor of rows of at least 1 KB becomes a row
//    group's first reduction to yield a value of its input chain or a
//    per-row value, or to take a second reduction of the same rows;
//  - splat constants are copied into every group that reads them.
//
// Then elementwise kernels of one iteration shape that read each other's
// results or the same inputs merge into one loop, and row groups of the same
// rows (with elementwise kernels of their shape) into one row group
// (mergeKernels).
//
// Keyed off traits only; no op names.
//
// With optimization remarks enabled (category `kiln-fuse`: kiln-opt
// --remarks-filter=kiln-fuse, kiln-run --remarks) each group of two or more ops
// reports what it holds (`FusedKernel`, passed), and each producer left
// out of a group says why (`NotFused`, missed).
//
//===----------------------------------------------------------------------===//

#include "kiln/Conversion/ReductionPlan.h"
#include "kiln/Dialect/Kiln/IR/KilnOps.h"
#include "kiln/Dialect/Kiln/Transforms/Passes.h"

#include "RecomputeBudget.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Dominance.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/IR/Remarks.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Transforms/CSE.h"
#include "mlir/Transforms/RegionUtils.h"
#include "llvm/ADT/SetVector.h"

#include <queue>

namespace kiln {
#define GEN_PASS_DEF_KILNFUSEELEMENTWISE
#include "kiln/Dialect/Kiln/Transforms/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;

namespace {

bool isElementwise(Operation *op) {
  return op->hasTrait<kiln::OpTrait::Elementwise>() && !isSplatConstant(op);
}

bool isAnchor(Operation *op) {
  return op->hasTrait<kiln::OpTrait::FusesProducers>();
}

constexpr llvm::StringLiteral kRemarkCategory = "kiln-fuse";

/// Remark options for `op`: the category and the enclosing function.
remark::RemarkOpts remarkOpts(llvm::StringRef name, Operation *op) {
  auto function = op->getParentOfType<func::FuncOp>();
  return remark::RemarkOpts::name(name)
      .category(kRemarkCategory)
      .function(function ? function.getSymName() : llvm::StringRef());
}

/// Reports that `producer` stays out of the group rooted at `root`;
/// `reason` is only formatted when remarks are on (the pass runs on every
/// compile, and most graphs have many kernel boundaries).
void remarkNotFused(Operation *producer, Operation *root,
                    llvm::function_ref<std::string()> reason) {
  if (!producer->getContext()->getRemarkEngine())
    return;
  if (auto r =
          remark::missed(producer->getLoc(), remarkOpts("NotFused", producer)))
    r << remark::reason("'{0}' is not fused into the kernel of {1}: {2}",
                        producer->getName().getStringRef(), describeOp(root),
                        reason());
}

using kiln::conversion::kRowInCacheMaxBytes;

/// The most results an elementwise kernel gets from extra results and
/// merging. Each result is one more stream of stores; measured on 4096x1024
/// f32 siblings `x * c_i` (1 thread), one loop against one kernel each:
/// 2 results 1.26 -> 0.91 ms, 4 2.60 -> 1.73, 8 5.47 -> 4.04, 16 10.9 ->
/// 11.0 (no gain left: the stores, not the reads, bound it); 16 in two
/// loops of 8: 12.3 -> 9.2.
constexpr unsigned kMaxKernelResults = 8;

/// The shortest rows (in bytes) whose reduction, as a group's anchor,
/// becomes a row group's to yield more or to share the rows with a second
/// reduction. A row group saves a read of the rows, but reduces each row
/// on its own, where the reduction's kernel vectorizes short rows better:
/// cross_entropy (row maxima, then sums of exps) over 65536x100 f32 took
/// 3.13 -> 3.54 ms at 1 thread as one row group, 32768x256 3.53 -> 2.75,
/// 8192x1000 3.02 -> 2.35; exp(x) returned and summed over 65536x100 the
/// same either way, 4096x4096 5.96 -> 5.50 (all in this machine's L3).
constexpr int64_t kMinAnchorRowBytes = 1024;

/// The shortest contiguous runs (in elements) an indexed read must make in
/// its input to be read in place by the kernel reading it: a reduction's
/// 32 lanes then load consecutive elements. Shorter runs leave it to its
/// own kernel, which prefetches scattered reads (a gather along dim 1 of
/// 4096x4096 f32 <- 4096x256, then row sums: 1.68 -> 2.24 ms at 1 thread
/// in place; softmax of 1024 of its columns, read three times, 4.3 -> 9.2)
/// or copies slices whole, which a reduction of short rows then vectorizes
/// across rows (the rows of 16 of an index_select of 32768 of 50000x16,
/// summed: 0.125 -> 0.171 ms in place) -- unless the reduction keeps the
/// last dim, along which the runs lie (readsInPlace).
constexpr int64_t kMinInPlaceRun = 32;

/// Whether `op` is a reduction over `dims` that keeps the last dim of its
/// input: its lowering (a column reduction) walks the reduced rows and
/// reads each row's contiguous columns as vectors.
bool keepsLastDim(Operation *op) {
  auto dims = op->getAttrOfType<DenseI64ArrayAttr>("dims");
  if (!op->hasTrait<kiln::OpTrait::Reduction>() || !dims || dims.empty() ||
      op->getNumOperands() != 1)
    return false;
  auto input = cast<RankedTensorType>(op->getOperand(0).getType());
  return input.getRank() > 0 &&
         !getReducedDimsMask(input, dims.asArrayRef()).back();
}

/// Whether `anchor`'s kernel reads `read` (an IndexedReadOpInterface op)
/// in place: `read` makes runs of at least kMinInPlaceRun elements, or
/// `anchor` keeps the last dim of its input (of `read`'s shape, or a view of
/// it with the same last dim), along which `read` makes runs of more than
/// one element (a sum over dim 0 of an index_select of rows, an embedding
/// bag, bags of selected rows summed): each selected row's columns
/// are then loaded as vectors, a few rows ahead prefetched, where storing
/// the selection would write and read it all again (rows of 16 f32
/// selected from 262144x16, 1000000 of them summed: 4.65 -> 2.60 ms at 1
/// thread in place; 32768 of 50000x16 0.065 -> 0.033; of 50000x2, 0.026
/// -> 0.015). Single elements (a gather along the last dim) stay in their
/// own kernel (gather along dim 1 of 4096x4096 <- 4096x256 summed over dim
/// 0: 1.82 ms stored, 2.41 in place).
bool readsInPlace(Operation *read, Operation *anchor) {
  int64_t run = cast<IndexedReadOpInterface>(read).getContiguousRun();
  if (run >= kMinInPlaceRun)
    return true;
  if (run <= 1 || !anchor || !keepsLastDim(anchor))
    return false;
  // The anchor's input is `read`'s elements, or a view of them keeping the
  // last dim (views join only then): bags of selected rows.
  auto input = cast<RankedTensorType>(anchor->getOperand(0).getType());
  auto selected = cast<RankedTensorType>(read->getResult(0).getType());
  return input.getNumElements() == selected.getNumElements() &&
         selected.getRank() > 0 &&
         input.getShape().back() == selected.getShape().back();
}

/// Whether rows of `n` elements of `elementType` hold kMinAnchorRowBytes.
bool rowsAreLong(int64_t n, Type elementType) {
  return n * std::max<int64_t>(elementType.getIntOrFloatBitWidth() / 8, 1) >=
         kMinAnchorRowBytes;
}

/// The elements of a row of `rows` spanning their last `run` dims.
int64_t rowLength(ArrayRef<int64_t> rows, int64_t run) {
  return getNumElements(rows.take_back(run));
}

/// Whether rows of `rows`'s shape spanning their last `run` dims,
/// `elementType` elements, suit a row group: at most kRowInCacheMaxBytes
/// each, and reduced by the lowering in one loop per row or, with
/// `maySplit` (reductions; not softmax, whose split kernels compute
/// otherwise), split into at most kRowGroupMaxSegments segments, which
/// the row group reduces in the same order (rowSegments: the unfused
/// kernel's bits).
bool fitsRowGroup(RankedTensorType rows, int64_t run, Type elementType,
                  bool maySplit) {
  int64_t n = rowLength(rows.getShape(), run);
  int64_t bytes = std::max<int64_t>(elementType.getIntOrFloatBitWidth() / 8, 1);
  if (n <= 0 || n * bytes > kRowInCacheMaxBytes)
    return false;
  std::optional<kiln::conversion::ReductionSplit> split =
      kiln::conversion::rowSegments(rows.getNumElements() / n, n, bytes);
  return split && (maySplit || split->segments == 1);
}

/// Whether `op` reduces a trailing run of dims (keepdim or not) of an input
/// of `rows`'s shape -- `run` dims, unless `run` is 0 (any number: the
/// last dim, or an instance norm's H and W) -- in one loop per row or in
/// few segments (fitsRowGroup), on rows of at most kRowInCacheMaxBytes
/// (sum, prod, amax, amin): as a group's anchor, it can turn the group into
/// a row group that also yields values of its input's chain or reduces
/// the same rows again.
bool reducesRowsOf(Operation *op, RankedTensorType rows, int64_t run) {
  if (!op->hasTrait<kiln::OpTrait::Reduction>() ||
      !op->hasTrait<kiln::OpTrait::FusesConsumers>() ||
      op->getNumResults() != 1 || op->getNumOperands() != 1 ||
      rows.getRank() == 0)
    return false;
  int64_t reduced = getReducedTrailingRun(op);
  if (!reduced || (run && reduced != run))
    return false;
  auto input = cast<RankedTensorType>(op->getOperand(0).getType());
  return input.getShape() == rows.getShape() &&
         fitsRowGroup(rows, reduced, input.getElementType(),
                      /*maySplit=*/true);
}

/// Whether `op` reduces the rows of `rows`'s shape (spanning `run` dims, or
/// any number if 0) with keepdim (its result broadcasts back over them): a
/// row group may take it.
bool isRowReduction(Operation *op, RankedTensorType rows, int64_t run) {
  auto keepdim = op->getAttrOfType<BoolAttr>("keepdim");
  return keepdim && keepdim.getValue() && reducesRowsOf(op, rows, run);
}

/// Whether `op` reduces the rows of `rows`'s shape without keepdim, and in
/// `members` (a group's) only values of a row's shape (the last dim
/// dropped) use it, directly or through each other: per-row values (a
/// cosine similarity's dot product and norms, each row's sum and maximum),
/// which a row group computes from the row's reductions once per row. (A
/// value of the rows' shape would broadcast it along the rows' columns; the
/// verifier rejects such a row group.)
bool isPerRowReduction(Operation *op, RankedTensorType rows, int64_t run,
                       const llvm::SmallPtrSetImpl<Operation *> &members) {
  auto keepdim = op->getAttrOfType<BoolAttr>("keepdim");
  if ((keepdim && keepdim.getValue()) || !reducesRowsOf(op, rows, run))
    return false;
  SmallVector<int64_t> row = getRowValueShape(
      rows.getShape(), getReducedTrailingRun(op), /*keepDim=*/false);
  return !findNonRowUser(
      op, row, [&](Operation *user) { return members.contains(user); });
}

/// Whether `op` normalizes each row of an input of `rows`'s shape along
/// the last dim into a result of that shape (softmax, log_softmax: one
/// operand, `dim` the last), in one loop per row, on rows of at most
/// kRowInCacheMaxBytes, the rows of a group whose reductions span `run`
/// dims, which must be that one: a row group may take it, computing its
/// row maximum and sum with the row's other reductions and its elements
/// where the chain reads them.
bool isRowNormalization(Operation *op, RankedTensorType rows, int64_t run) {
  if (run != 1 || op->hasTrait<kiln::OpTrait::Reduction>() ||
      !op->hasTrait<kiln::OpTrait::FusesProducers>() ||
      !op->hasTrait<kiln::OpTrait::FusesConsumers>() ||
      op->getNumResults() != 1 || op->getNumOperands() != 1 ||
      rows.getRank() == 0)
    return false;
  auto dim = op->getAttrOfType<IntegerAttr>("dim");
  int64_t rank = rows.getRank();
  if (!dim || (dim.getInt() != rank - 1 && dim.getInt() != -1) ||
      op->getOperand(0).getType() != op->getResult(0).getType() ||
      cast<RankedTensorType>(op->getResult(0).getType()).getShape() !=
          rows.getShape())
    return false;
  return fitsRowGroup(
      rows, 1,
      cast<RankedTensorType>(op->getResult(0).getType()).getElementType(),
      /*maySplit=*/false);
}

/// `rows`'s shape with the last `run` dims 1: a per-row value broadcast
/// back.
SmallVector<int64_t> rowShape(RankedTensorType rows, int64_t run) {
  return getRowValueShape(rows.getShape(), run, /*keepDim=*/true);
}

ArrayRef<int64_t> shapeOf(Value v) {
  return cast<RankedTensorType>(v.getType()).getShape();
}

/// One group being formed.
struct Group {
  Operation *root;
  Operation *anchor = nullptr;
  /// A row group's reductions (broadcast back over the rows of the root).
  SmallVector<Operation *> rowReductions;
  /// Ops moved into the group (erased afterwards).
  llvm::SmallPtrSet<Operation *, 16> members;
  /// Ops copied into the group (they keep other users outside).
  llvm::SmallPtrSet<Operation *, 8> copies;
  /// Members whose results the group also yields, for their users after
  /// the root: in an elementwise group, of the root's shape; in a row
  /// group, of the rows' shape or a row's (per-row values).
  SmallVector<Operation *> outputs;
  /// The shape a row group reduces the rows of (its reductions' input):
  /// the root's, or the anchor's input when the anchor became the group's
  /// first row reduction.
  RankedTensorType rows;
  /// The trailing dims of `rows` a row spans (those its first row
  /// reduction reduces; 0 before it has one).
  int64_t run = 0;
  /// Whether the anchor's chain holds an indexed read (the group then
  /// stays anchored: a row group does not evaluate them).
  bool indexedReads = false;
  /// Whether the group holds a view (likewise; a row group evaluates its
  /// rows' chain itself, and an anchor under an elementwise root would
  /// take the view into its epilogue).
  bool views = false;

  bool contains(Operation *op) const {
    return members.contains(op) || copies.contains(op);
  }
  /// Whether the group already reads `v` from outside.
  bool reads(Value v) const {
    for (Operation *user : v.getUsers())
      if (contains(user))
        return true;
    return false;
  }
};

class Fuser {
public:
  Fuser(Block &block, size_t maxGroupOps, size_t maxRowReductions,
        bool rowGroups)
      : block(block), maxGroupOps(maxGroupOps),
        maxRowReductions(maxRowReductions), rowGroups(rowGroups) {}

  void run() {
    cancelPermuteRoundTrips(block);
    if (rowGroups) {
      refineRowGroupReshapes(block);
      formColumnGroups(block, maxGroupOps,
                       block.getParentOp()->getContext()->getRemarkEngine()
                           ? &columnRefusals
                           : nullptr);
    }
    llvm::SmallPtrSet<Operation *, 32> visited;
    while (true) {
      Operation *root = nullptr;
      for (Operation &op : llvm::reverse(block))
        if (!visited.contains(&op) && (isElementwise(&op) || isAnchor(&op))) {
          root = &op;
          break;
        }
      if (!root)
        break;
      visited.insert(root);
      // Per-row results need the group to become a row group; when it does
      // not, it forms again without them. The first try is quiet when
      // remarks are on, and then forms again either way, so that each
      // remark is made once; without remarks a well-formed try is the group.
      Group group;
      if (rowGroups) {
        bool remarks = root->getContext()->getRemarkEngine();
        quiet = remarks;
        Group trial = form(root, /*rowOutputs=*/true);
        quiet = false;
        bool wellFormed = isWellFormed(trial);
        if (wellFormed && !remarks)
          group = std::move(trial);
        else
          group = form(root, /*rowOutputs=*/wellFormed);
      } else {
        group = form(root, /*rowOutputs=*/false);
      }
      if (group.members.size() + group.copies.size() > 1) {
        remarkFused(group);
        erased.clear();
        materialize(group);
        for (Operation *op : erased) {
          visited.erase(op);
          columnRefusals.erase(op);
        }
      }
    }
    // Originals of copies that every user recomputed are now dead.
    for (Operation &op : llvm::make_early_inc_range(llvm::reverse(block)))
      if (isOpTriviallyDead(&op))
        op.erase();
    mergeKernels();
    // Constants whose users all moved into merged kernels.
    for (Operation &op : llvm::make_early_inc_range(llvm::reverse(block)))
      if (isSplatConstant(&op) && op.use_empty())
        op.erase();
    collapseRowDims();
    // A reshape of a reshape is one reshape (the same row-major elements):
    // the views refineRowGroupReshapes and the collapse leave, read once.
    for (Operation &op : llvm::make_early_inc_range(block)) {
      auto reshape = dyn_cast<ReshapeOp>(op);
      if (!reshape)
        continue;
      if (auto inner = reshape.getInput().getDefiningOp<ReshapeOp>())
        reshape.getInputMutable().assign(inner.getInput());
      if (reshape.getInput().getType() == reshape.getType()) {
        reshape.replaceAllUsesWith(reshape.getInput());
        reshape.erase();
      }
    }
    for (Operation &op : llvm::make_early_inc_range(llvm::reverse(block)))
      if (isa<ReshapeOp>(op) && op.use_empty())
        op.erase();
  }

private:
  /// remarkNotFused, unless the group is only being tried.
  void notFused(Operation *producer, Operation *root,
                llvm::function_ref<std::string()> reason) const {
    if (!quiet)
      remarkNotFused(producer, root, reason);
  }

  /// Position of `op` in the block (ops are only ever removed while a group
  /// forms, so positions stay ordered).
  bool before(Operation *a, Operation *b) const {
    return a->isBeforeInBlock(b);
  }

  /// Whether a group formed with per-row results is one kernel: they need
  /// a row group.
  static bool isWellFormed(const Group &group) {
    if (group.rowReductions.empty())
      return llvm::all_of(group.outputs, [&](Operation *output) {
        return shapeOf(output->getResult(0)) ==
               shapeOf(group.root->getResult(0));
      });
    // Each per-row result is of a row spanning the group's dims (one taken
    // before the first reduction joined may be of another run).
    ArrayRef<int64_t> rows = group.rows.getShape();
    SmallVector<int64_t> kept = getRowValueShape(rows, group.run, true),
                         dropped = getRowValueShape(rows, group.run, false);
    return llvm::all_of(group.outputs, [&](Operation *output) {
      ArrayRef<int64_t> shape = shapeOf(output->getResult(0));
      return shape == rows || shape == ArrayRef(kept) ||
             shape == ArrayRef(dropped);
    });
  }

  /// Makes the group's anchor, a reduction of the last dim of `rows`, its
  /// first row reduction.
  static void toRowGroup(Group &group) {
    group.rows = cast<RankedTensorType>(group.anchor->getOperand(0).getType());
    group.run = getReducedTrailingRun(group.anchor);
    group.rowReductions.push_back(group.anchor);
    group.anchor = nullptr;
  }

  /// Whether the group's anchor can become its first row reduction: rows
  /// of at least kMinAnchorRowBytes.
  bool anchorReducesRows(const Group &group) const {
    if (!rowGroups || !group.anchor || !group.rowReductions.empty() ||
        group.indexedReads || group.views)
      return false;
    auto rows = cast<RankedTensorType>(group.anchor->getOperand(0).getType());
    return reducesRowsOf(group.anchor, rows, 0) &&
           rowsAreLong(
               rowLength(rows.getShape(), getReducedTrailingRun(group.anchor)),
               rows.getElementType());
  }

  /// Whether the group's anchor, as a row reduction, could yield `p`: a
  /// value of the anchor's input's shape, or a per-row value (the anchor's
  /// result has a row's shape then, keepdim, so that the group is a valid
  /// kernel even if it stays one reduction and its epilogue).
  static bool yieldsRowsOf(const Group &group, Operation *p) {
    auto rows = cast<RankedTensorType>(group.anchor->getOperand(0).getType());
    if (p->getNumResults() != 1)
      return false;
    ArrayRef<int64_t> shape = shapeOf(p->getResult(0));
    SmallVector<int64_t> row =
        rowShape(rows, getReducedTrailingRun(group.anchor));
    return shape == rows.getShape() ||
           (shape == ArrayRef(row) &&
            shapeOf(group.anchor->getResult(0)) == ArrayRef(row));
  }

  Group form(Operation *root, bool rowOutputs) {
    Group group;
    group.root = root;
    group.members.insert(root);
    if (isAnchor(root))
      group.anchor = root;
    else if (root->getNumResults() == 1)
      group.rows = dyn_cast<RankedTensorType>(root->getResult(0).getType());
    // Candidates, latest first: when one is examined, every user it could
    // have inside the group has been decided already.
    auto later = [&](Operation *a, Operation *b) { return before(a, b); };
    std::priority_queue<Operation *, std::vector<Operation *>, decltype(later)>
        candidates(later);
    llvm::SmallPtrSet<Operation *, 16> queued;
    // The group member or copy whose operand each candidate is (the first
    // to push it), and what each recomputed chain costs (RecomputeBudget.h).
    llvm::DenseMap<Operation *, Operation *> pushedBy;
    RecomputeBudget budget;
    auto pushOperands = [&](Operation *op) {
      for (OpOperand &operand : op->getOpOperands()) {
        // An anchor computes only its first operand from fused producers
        // (gather's index, for one, is read as stored).
        if (isAnchor(op) && operand.getOperandNumber() != 0)
          continue;
        Operation *producer = operand.get().getDefiningOp();
        if (producer && producer->getBlock() == &block &&
            !isSplatConstant(producer) && queued.insert(producer).second) {
          candidates.push(producer);
          pushedBy[producer] = op;
        }
      }
    };
    pushOperands(root);
    while (!candidates.empty()) {
      Operation *p = candidates.top();
      candidates.pop();
      // A producer moves into the group only if every user moved in: a
      // copied user keeps its original outside, which still reads `p`.
      bool usedOnlyHere = llvm::all_of(p->getUsers(), [&](Operation *user) {
        return group.members.contains(user);
      });
      if (isElementwise(p)) {
        // A full group leaves the rest of the chain to the next one.
        if (group.members.size() + group.copies.size() >= maxGroupOps) {
          notFused(p, root, [&] {
            return llvm::formatv("the kernel is full (max-group-ops = {0}); "
                                 "its result is stored and the chain goes on "
                                 "in another kernel",
                                 maxGroupOps)
                .str();
          });
          continue;
        }
        if (usedOnlyHere) {
          group.members.insert(p);
        } else if (canYield(group, p, rowOutputs)) {
          group.members.insert(p);
          group.outputs.push_back(p);
        } else if (anchorReducesRows(group) && yieldsRowsOf(group, p) &&
                   canYieldAfterRoot(group, p)) {
          // A value of the anchor's input chain, or a per-row value, used
          // after the kernel: the group becomes a row group, which reduces
          // each row and then stores the row's values.
          toRowGroup(group);
          group.members.insert(p);
          group.outputs.push_back(p);
        } else if (budget.recompute(p, pushedBy.lookup(p),
                                    addedBytes(group, p))) {
          group.copies.insert(p);
        } else {
          notFused(p, root, [&] {
            Operation *user = pushedBy.lookup(p);
            Operation *chain = budget.chainOf(p, user);
            if (chain != p)
              return llvm::formatv(
                         "it has users outside the kernel, and recomputing "
                         "it as well would make the kernel's recomputation "
                         "of {0} read {1} bytes of new inputs, more than the "
                         "{2} bytes allowed ({3} times that value's size)",
                         describeOp(chain),
                         budget.costWith(p, user, addedBytes(group, p)),
                         RecomputeBudget::limit(chain, p),
                         RecomputeBudget::kChainBudget)
                  .str();
            return llvm::formatv("it has users outside the kernel, and "
                                 "recomputing it there would read {0} bytes "
                                 "of new inputs, more than the {1} bytes that "
                                 "storing its result costs (written once, "
                                 "read back)",
                                 addedBytes(group, p),
                                 2 * tensorByteSize(p->getResult(0)))
                .str();
          });
          continue;
        }
        pushOperands(p);
        continue;
      }
      // An indexed read of stored tensors (gather, index_select, take) in
      // the anchor's input chain: the kernel reads the selected elements
      // where it would read the stored result (a sum of index_select's
      // rows never stores them). Its operands are read as they are, not
      // fused; it is not recomputed for other users.
      if (group.anchor && group.rowReductions.empty() && usedOnlyHere &&
          isa<IndexedReadOpInterface>(p) && before(p, group.anchor) &&
          readsInPlace(p, group.anchor) && !selectsFromOwnChain(p) &&
          group.members.size() + group.copies.size() < maxGroupOps) {
        group.members.insert(p);
        group.indexedReads = true;
        continue;
      }
      // A view (a reshape or permute) that keeps the last dim, of a value
      // the chain computes (or any, for a view that copies on its own), in
      // the anchor's input chain or in an elementwise loop: the kernel
      // reads through it with index arithmetic, and the chain below it is
      // evaluated at the view's source position (a sum over the rows of an
      // index_select reshaped into bags reads the selected rows in place; a
      // softmax over heads permuted from [B, L, H, D] to [B, H, L, D], or
      // their sum with another tensor, never copies them). It is not
      // recomputed for other users.
      if (group.rowReductions.empty() && usedOnlyHere &&
          isa<ViewOpInterface>(p) &&
          (group.anchor ? before(p, group.anchor) : group.rows != nullptr) &&
          cast<ViewOpInterface>(p).keepsLastDim() && readsThrough(p) &&
          group.members.size() + group.copies.size() < maxGroupOps) {
        group.members.insert(p);
        group.views = true;
        pushOperands(p);
        continue;
      }
      // An anchor under an elementwise root: the root's chain becomes its
      // epilogue.
      if (!group.anchor && group.rowReductions.empty() &&
          group.outputs.empty() && isAnchor(p) &&
          p->hasTrait<kiln::OpTrait::FusesConsumers>() && usedOnlyHere &&
          p->getNumResults() == 1 &&
          cast<RankedTensorType>(p->getResult(0).getType()).getShape() ==
              cast<RankedTensorType>(root->getResult(0).getType()).getShape() &&
          llvm::all_of(group.members, [](Operation *member) {
            return isElementwise(member);
          })) {
        group.anchor = p;
        group.members.insert(p);
        pushOperands(p);
        continue;
      }
      // A row group: a reduction over the rows (the root's, or the
      // anchor's input's), broadcast back (or a softmax of them, once the
      // group has a row reduction). One used after the kernel as well is
      // one more (per-row) result. A second reduction of the anchor's rows
      // turns the group into a row group.
      bool yields = !usedOnlyHere && canYieldAfterRoot(group, p);
      if (anchorReducesRows(group) && (usedOnlyHere || yields)) {
        auto anchorRows =
            cast<RankedTensorType>(group.anchor->getOperand(0).getType());
        int64_t anchorRun = getReducedTrailingRun(group.anchor);
        if (isRowReduction(p, anchorRows, anchorRun) ||
            isRowNormalization(p, anchorRows, anchorRun) ||
            isPerRowReduction(p, anchorRows, anchorRun, group.members))
          toRowGroup(group);
      }
      RankedTensorType rows = group.rows;
      if (rowGroups && !group.anchor && !group.views && rows &&
          (usedOnlyHere || yields) &&
          (isRowReduction(p, rows, group.run) ||
           isPerRowReduction(p, rows, group.run, group.members) ||
           (!group.rowReductions.empty() &&
            isRowNormalization(p, rows, group.run))) &&
          llvm::all_of(group.members, [&](Operation *member) {
            return isElementwise(member) ||
                   llvm::is_contained(group.rowReductions, member);
          })) {
        // A row group evaluates each reduction's input chain at every
        // element of the row, the values of the reductions before it
        // included: reductions whose inputs depend on one another (a
        // softmax of a softmax's result) evaluate a chain that grows with
        // each, quadratic in code and work. Beyond max-row-reductions the
        // value is stored and another kernel reduces it.
        if (group.rowReductions.size() >= maxRowReductions) {
          notFused(p, root, [&] {
            return llvm::formatv("the row group holds its most reductions "
                                 "(max-row-reductions = {0}); this one's "
                                 "result is stored and read",
                                 maxRowReductions)
                .str();
          });
          continue;
        }
        group.rowReductions.push_back(p);
        if (!group.run)
          group.run = getReducedTrailingRun(p);
        group.members.insert(p);
        if (yields)
          group.outputs.push_back(p);
        pushOperands(p);
        continue;
      }
      notFused(p, root,
                     [&] { return whyNotAnchor(group, p, usedOnlyHere); });
    }
    keepComputedViews(group);
    return group;
  }

  /// Whether a kernel gains by reading through the view `p`: it copies on
  /// its own (a permute), or it views a value the kernel's chain may
  /// compute (an elementwise op's or an indexed read's result, or another
  /// view's).
  bool readsThrough(Operation *p) const {
    if (!cast<ViewOpInterface>(p).isFreeAlone())
      return true;
    Operation *producer = p->getOperand(0).getDefiningOp();
    return producer && producer->getBlock() == &block &&
           !isSplatConstant(producer) &&
           (isElementwise(producer) ||
            isa<IndexedReadOpInterface, ViewOpInterface>(producer));
  }

  /// Leaves out of the group its views that move no data on their own
  /// whose operand the group did not compute after all (its producer
  /// stayed out): such a view of a stored tensor costs nothing, and a
  /// kernel reading it as stored keeps the stored-input fast paths.
  void keepComputedViews(Group &group) {
    if (!group.views)
      return;
    group.views = false;
    for (Operation &op : block) { // views of views, the inner one first
      if (!group.members.contains(&op) || !isa<ViewOpInterface>(op))
        continue;
      Operation *producer = op.getOperand(0).getDefiningOp();
      if (!cast<ViewOpInterface>(op).isFreeAlone() ||
          (producer && group.contains(producer))) {
        group.views = true;
        continue;
      }
      group.members.erase(&op);
      notFused(&op, group.root, [] {
        return std::string("it is a view of a tensor stored before the "
                           "kernel, which reads it in place as stored");
      });
    }
  }

  /// Whether `p`, an indexed read, would take its input's elementwise
  /// chain into a kernel of its own (as its anchor): the chain is then
  /// evaluated only at the selected positions, and storing the selection
  /// costs less than storing the whole chain for an indexed read in place.
  bool selectsFromOwnChain(Operation *p) const {
    if (!isAnchor(p))
      return false;
    Operation *producer = p->getOperand(0).getDefiningOp();
    return producer && producer->getBlock() == &block &&
           isElementwise(producer) && producer->hasOneUse();
  }

  /// Why `p` (not elementwise) could not join the group as its anchor.
  std::string whyNotAnchor(const Group &group, Operation *p,
                           bool usedOnlyHere) const {
    if (auto view = dyn_cast<ViewOpInterface>(p)) {
      if (!group.rowReductions.empty() || (!group.anchor && !group.rows))
        return "it is a view (reshape, permute), which joins an elementwise "
               "loop or the input chain of a reduction, softmax, selection "
               "or gather, not a row group; its result is stored";
      if (!usedOnlyHere)
        return "it has users outside the kernel, and a view joins a "
               "kernel's chain only as its one user (it is not recomputed)";
      if (!view.keepsLastDim())
        return "it does not keep the last dim, along which the kernel "
               "loads vectors (read through it, the elements would be "
               "loaded one at a time); its result is stored";
      if (!readsThrough(p))
        return "it is a view of a tensor stored before the kernel, which "
               "reads it in place as stored";
      return "the kernel is full (max-group-ops); its result is stored";
    }
    if (isa<IndexedReadOpInterface>(p) && group.anchor) {
      if (!usedOnlyHere)
        return "it has users outside the kernel, and an indexed read joins a "
               "kernel's chain only as its one user (it is not recomputed)";
      if (!readsInPlace(p, group.anchor))
        return llvm::formatv(
                   "it reads runs of {0} contiguous element(s), fewer than "
                   "{1}, and not along a last dim the consumer keeps: its "
                   "own kernel (which prefetches scattered reads, or copies "
                   "short slices for a vectorized consumer) is faster",
                   cast<IndexedReadOpInterface>(p).getContiguousRun(),
                   kMinInPlaceRun)
            .str();
      if (selectsFromOwnChain(p))
        return "its input's elementwise chain fuses into its own kernel, "
               "evaluated only at the selected positions (storing the "
               "selection costs less than storing the whole chain)";
      if (group.anchor->isBeforeInBlock(p))
        return llvm::formatv("it feeds the epilogue of {0}, which evaluates "
                             "only elementwise ops",
                             describeOp(group.anchor))
            .str();
      return "the kernel is full (max-group-ops); its result is stored";
    }
    if (!isAnchor(p) && !isa<IndexedReadOpInterface>(p))
      return "it is neither elementwise nor a reduction, softmax, selection "
             "or gather; its result is stored";
    if (!isAnchor(p))
      return "it is an indexed read, which joins only the chain of a "
             "reduction, softmax, selection or gather; its result is stored";
    if (group.anchor)
      return llvm::formatv("the kernel already holds {0}, and a kernel holds "
                           "one reduction, softmax, selection or gather",
                           describeOp(group.anchor));
    if (!p->hasTrait<kiln::OpTrait::FusesConsumers>())
      return "its results are computed by a runtime kernel, which takes no "
             "elementwise epilogue";
    if (!group.outputs.empty())
      return "the kernel also yields a value of its elementwise loop for "
             "users after it, and a reduction, softmax or gather takes only "
             "one result";
    if (!usedOnlyHere)
      return "its result has users outside the kernel";
    if (p->getNumResults() != 1 ||
        cast<RankedTensorType>(p->getResult(0).getType()).getShape() !=
            cast<RankedTensorType>(group.root->getResult(0).getType())
                .getShape())
      return std::string(
                 "the elementwise chain after it has another shape (it is "
                 "broadcast back), so every result must exist before the "
                 "chain runs") +
             (columnRefusals.count(p)
                  ? "; nor is it a column group with the chain: " +
                        columnRefusals.lookup(p)
                  : std::string());
    return "the kernel has a member that is not elementwise";
  }

  /// Whether `p`, used outside the group, can join it as one more result:
  /// the group is one elementwise loop over the root's shape (no anchor, no
  /// row reductions), `p`'s result has that shape, so the loop computes each
  /// of its elements once; or the group is (or, with `rowOutputs`, may
  /// become) a row group, and `p`'s result has the rows' shape (computed
  /// with the row's results) or a row's (once per row). The store is the
  /// one a kernel of its own would make; its inputs are read once, with the
  /// group's.
  bool canYield(const Group &group, Operation *p, bool rowOutputs) const {
    if (group.anchor || !group.rows || p->getNumResults() != 1 ||
        group.root->getNumResults() != 1)
      return false;
    ArrayRef<int64_t> shape = shapeOf(p->getResult(0));
    if (shape == group.rows.getShape())
      return canYieldAfterRoot(group, p);
    // A row's value (keepdim): of the group's rows, or, before a row
    // reduction joined, of rows spanning any number of trailing dims
    // (isWellFormed checks it against the group's).
    bool rowValue = false;
    if (!group.rowReductions.empty())
      rowValue = shape == ArrayRef(rowShape(group.rows, group.run));
    else if (rowOutputs)
      for (int64_t run = 1; run <= group.rows.getRank() && !rowValue; ++run)
        rowValue = shape == ArrayRef(rowShape(group.rows, run));
    return rowValue && canYieldAfterRoot(group, p);
  }

  /// Whether the group has room for one more result and every user of
  /// `p` outside the group comes after the root, where the fused op will
  /// stand (a user before it would see the value before it exists, or
  /// close a cycle through the group's inputs).
  bool canYieldAfterRoot(const Group &group, Operation *p) const {
    if (group.outputs.size() + group.root->getNumResults() + 1 >
            kMaxKernelResults ||
        p->getNumResults() != 1)
      return false;
    return llvm::all_of(p->getUsers(), [&](Operation *user) {
      if (group.members.contains(user))
        return true;
      Operation *ancestor = block.findAncestorOpInBlock(*user);
      return ancestor && before(group.root, ancestor);
    });
  }

  /// Bytes of the inputs `p` would add to the group.
  static int64_t addedBytes(const Group &group, Operation *p) {
    int64_t added = 0;
    for (Value operand : p->getOperands())
      if (!isSplatConstant(operand.getDefiningOp()) && !group.reads(operand))
        added += tensorByteSize(operand);
    return added;
  }

  /// Reports what the group holds, at its root.
  void remarkFused(const Group &group) {
    auto r = remark::passed(group.root->getLoc(),
                            remarkOpts("FusedKernel", group.root));
    if (!r)
      return;
    // Op names in program order, repeats counted: "kiln.mul x2, kiln.add".
    SmallVector<std::pair<llvm::StringRef, int>> counts;
    for (Operation &op : block) {
      if (!group.contains(&op))
        continue;
      llvm::StringRef name = op.getName().getStringRef();
      auto it = llvm::find_if(counts, [&](auto &c) { return c.first == name; });
      if (it == counts.end())
        counts.push_back({name, 1});
      else
        ++it->second;
    }
    std::string ops;
    for (auto [name, count] : counts)
      ops += (ops.empty() ? "" : ", ") + name.str() +
             (count > 1 ? " x" + std::to_string(count) : "");
    size_t size = group.members.size() + group.copies.size();
    std::string how = !group.rowReductions.empty()
                          ? "a row group: each row's " +
                                std::to_string(group.rowReductions.size()) +
                                " reduction(s), then the elementwise chain, "
                                "while the row is in cache"
                      : !group.anchor
                          ? "one elementwise loop, no intermediate tensors"
                      : group.anchor == group.root
                          ? "the elementwise chain is evaluated where '" +
                                group.anchor->getName().getStringRef().str() +
                                "' reads its input"
                          : "the elementwise chain is the epilogue of " +
                                describeOp(group.anchor);
    if (group.indexedReads)
      how += "; indexed reads evaluated in place, their selections never "
             "stored";
    if (group.views)
      how += "; views (reshape, permute) read through";
    if (!group.outputs.empty())
      how +=
          ", storing " + std::to_string(group.outputs.size() + 1) + " results";
    r << remark::add("{0} ops in one kernel ({1}): {2}", size, how, ops)
      << remark::metric("ops", static_cast<int64_t>(size))
      << remark::metric("recomputed",
                        static_cast<int64_t>(group.copies.size()));
  }

  /// An empty kiln.fused at `builder`'s place reading `inputs`, each
  /// mapped to its block argument in `mapping`; `builder` is left in the
  /// region's block.
  static FusedOp createKernel(OpBuilder &builder, Location loc,
                              TypeRange resultTypes, ArrayRef<Value> inputs,
                              IRMapping &mapping) {
    auto fused = FusedOp::create(builder, loc, resultTypes, inputs);
    Block *body = builder.createBlock(&fused.getBody());
    for (Value input : inputs)
      mapping.map(input, body->addArgument(input.getType(), input.getLoc()));
    return fused;
  }

  void materialize(Group &group) {
    // The group's ops in program order.
    SmallVector<Operation *> ops;
    for (Operation &op : block)
      if (group.contains(&op))
        ops.push_back(&op);
    // External inputs, in order of first use; splat constants are copied.
    llvm::SetVector<Value> inputs;
    llvm::SetVector<Operation *> constants;
    for (Operation *op : ops)
      for (Value operand : op->getOperands()) {
        Operation *def = operand.getDefiningOp();
        if (def && group.contains(def))
          continue;
        if (isSplatConstant(def))
          constants.insert(def);
        else
          inputs.insert(operand);
      }
    Operation *root = group.root;
    OpBuilder builder(root);
    SmallVector<Type> resultTypes(root->getResultTypes());
    for (Operation *output : group.outputs)
      resultTypes.push_back(output->getResult(0).getType());
    IRMapping mapping;
    FusedOp fused = createKernel(builder, root->getLoc(), resultTypes,
                                 inputs.getArrayRef(), mapping);
    for (Operation *constant : constants)
      builder.clone(*constant, mapping);
    for (Operation *op : ops)
      builder.clone(*op, mapping);
    SmallVector<Value> yielded;
    for (Value result : root->getResults())
      yielded.push_back(mapping.lookup(result));
    for (Operation *output : group.outputs)
      yielded.push_back(mapping.lookup(output->getResult(0)));
    YieldOp::create(builder, root->getLoc(), yielded);

    root->replaceAllUsesWith(
        fused.getResults().take_front(root->getNumResults()));
    // The extra results replace their ops for the users after the group.
    for (auto [i, output] : llvm::enumerate(group.outputs))
      output->getResult(0).replaceUsesWithIf(
          fused.getResult(root->getNumResults() + i), [&](OpOperand &use) {
            return !group.members.contains(use.getOwner());
          });
    for (Operation *op : llvm::reverse(ops))
      if (group.members.contains(op)) {
        erased.insert(op);
        op->erase();
      }
  }

  //===--------------------------------------------------------------------===//
  // Merging elementwise kernels
  //===--------------------------------------------------------------------===//

  /// The loop a kernel that may merge runs: an elementwise kernel (a
  /// kiln.fused of the elementwise form, or an elementwise op left on its
  /// own) over its results' shape, or a row group over its rows.
  struct KernelSpace {
    bool rowGroup;
    ArrayRef<int64_t> shape;
    Type elementType; // the rows' (a row group's)
    int64_t run = 1;  // the trailing dims a row spans (a row group's)
  };
  static std::optional<KernelSpace> spaceOf(Operation *op) {
    if (auto fused = dyn_cast<FusedOp>(op)) {
      switch (fused.getForm()) {
      case FusedOp::Form::Elementwise:
        return KernelSpace{false, kernelShape(op), Type()};
      case FusedOp::Form::RowGroup: {
        RankedTensorType rows = fused.getRowType();
        return KernelSpace{true, rows.getShape(), rows.getElementType(),
                           fused.getRowDims()};
      }
      case FusedOp::Form::Anchored:
      case FusedOp::Form::ColumnGroup:
        return std::nullopt;
      }
    }
    if (isElementwise(op) && op->getNumResults() == 1 &&
        isa<RankedTensorType>(op->getResult(0).getType()))
      return KernelSpace{false, kernelShape(op), Type()};
    return std::nullopt;
  }

  /// Whether kernels running `a` and `b` can be one: elementwise kernels of
  /// one shape (one loop), or a row group and a row group of the same rows
  /// or an elementwise kernel of the rows' shape (one pass per row, the
  /// elementwise ops in its chain), rows of at least kMinAnchorRowBytes (a
  /// row group's chain runs a row at a time, which shorter rows vectorize
  /// worse).
  static bool sameSpace(const KernelSpace &a, const KernelSpace &b) {
    if (a.shape != b.shape)
      return false;
    if (!a.rowGroup && !b.rowGroup)
      return true;
    // Row groups reduce rows spanning the same dims.
    if (a.rowGroup && b.rowGroup && a.run != b.run)
      return false;
    const KernelSpace &rows = a.rowGroup ? a : b;
    return !a.shape.empty() &&
           rowsAreLong(rowLength(a.shape, rows.run), rows.elementType);
  }

  /// The reductions (and softmaxes) of a kernel: its ops that are neither
  /// elementwise nor splat constants.
  static size_t kernelReductions(Operation *op) {
    auto isReduction = [](Operation *op) {
      return !isElementwise(op) && !isSplatConstant(op);
    };
    auto fused = dyn_cast<FusedOp>(op);
    if (!fused)
      return isReduction(op) ? 1 : 0;
    return llvm::count_if(
        fused.getBody().front().without_terminator(),
        [&](Operation &inner) { return isReduction(&inner); });
  }

  /// The ops of an elementwise kernel, splat constants left out.
  static size_t kernelSize(Operation *op) {
    auto fused = dyn_cast<FusedOp>(op);
    if (!fused)
      return 1;
    return llvm::count_if(
        fused.getBody().front().without_terminator(),
        [](Operation &inner) { return !isSplatConstant(&inner); });
  }

  /// The values an elementwise kernel reads from outside (splat constants,
  /// which a group copies, left out).
  static SmallVector<Value> kernelInputs(Operation *op) {
    if (auto fused = dyn_cast<FusedOp>(op))
      return SmallVector<Value>(fused.getInputs());
    SmallVector<Value> inputs;
    for (Value operand : op->getOperands())
      if (!isSplatConstant(operand.getDefiningOp()))
        inputs.push_back(operand);
    return inputs;
  }

  static ArrayRef<int64_t> kernelShape(Operation *op) {
    return cast<RankedTensorType>(op->getResult(0).getType()).getShape();
  }

  /// The results of `a` that an op other than `b` uses: a kernel merging
  /// them still yields these.
  static SmallVector<Value> usedBeyond(Operation *a, Operation *b) {
    SmallVector<Value> used;
    for (Value result : a->getResults())
      if (llvm::any_of(result.getUsers(),
                       [&](Operation *user) { return user != b; }))
        used.push_back(result);
    return used;
  }

  /// Whether `a`, a kernel before the kernel `b`, can run in `b`'s loop:
  /// the same iteration space, room for both, and no user of `a`'s results
  /// between them (the merged kernel stands where `b` is; everything `b`
  /// reads is defined before it, and a value between them that depends on
  /// `a` would be such a user or depend on one).
  /// `spaceB` is `b`'s space.
  bool canMerge(Operation *a, Operation *b, const KernelSpace &spaceB) const {
    if (a == b || a->getBlock() != &block || !before(a, b) ||
        kernelSize(a) + kernelSize(b) > maxGroupOps ||
        kernelReductions(a) + kernelReductions(b) > maxRowReductions)
      return false;
    std::optional<KernelSpace> spaceA = spaceOf(a);
    if (!spaceA || !sameSpace(*spaceA, spaceB))
      return false;
    // The merged kernel's results: b's and those of a used after b.
    if (b->getNumResults() + usedBeyond(a, b).size() > kMaxKernelResults)
      return false;
    for (Value result : a->getResults())
      for (Operation *user : result.getUsers()) {
        Operation *at = block.findAncestorOpInBlock(*user);
        if (!at || (at != b && before(at, b)))
          return false;
      }
    return true;
  }

  /// The latest kernel `b` can take in: one whose result `b` reads, or one
  /// that reads a value `b` reads (siblings: the value is then read once).
  /// Null also when `b` is no kernel that merges.
  Operation *partnerOf(Operation *b) const {
    std::optional<KernelSpace> spaceB = spaceOf(b);
    if (!spaceB)
      return nullptr;
    Operation *best = nullptr;
    auto consider = [&](Operation *a) {
      if (a && (!best || before(best, a)) && canMerge(a, b, *spaceB))
        best = a;
    };
    for (Value input : kernelInputs(b)) {
      consider(input.getDefiningOp());
      for (Operation *user : input.getUsers())
        consider(user);
    }
    return best;
  }

  /// Elementwise kernels that read what another reads, or what another
  /// computes, with the same iteration shape, become one loop: `where(m,
  /// x, 0)` and `where(m, g, 0)` of one mask read it once (or compute it in
  /// the loop, never storing it), `exp(x)` and `tanh(x)` returned together
  /// read x once. Row groups over the same rows, and elementwise kernels
  /// over them, become one row group likewise: a layer norm's forward and
  /// its gradient in one graph read each row once. Walks the block in
  /// order, each kernel taking in the latest earlier partner until none is
  /// left. The same scalar code runs and each reduction keeps its order, so
  /// the bits are the same; reads only shrink, and a result of the earlier
  /// kernel is stored only if used after the merged one.
  void mergeKernels() {
    Operation *op = block.empty() ? nullptr : &block.front();
    llvm::SmallPtrSet<Operation *, 4> refused;
    while (op) {
      Operation *partner = refused.contains(op) ? nullptr : partnerOf(op);
      if (!partner) {
        op = op->getNextNode();
        continue;
      }
      if (Operation *merged = merge(partner, op)) {
        op = merged;
        continue;
      }
      // The merged region would not be a valid row group (a per-row value
      // without keepdim broadcast over the rows): they stay apart.
      refused.insert(op);
    }
  }

  /// Row groups whose rows span several trailing dims (an instance norm's
  /// H and W) become row groups over fewer dims, each run of them along
  /// which every value is constant or varies alike collapsed into one
  /// (reshapes outside are views): the form the lowering builds. One whose
  /// region needs a value both per row and along the rows stays as it is, and
  /// the lowering reports it.
  void collapseRowDims() {
    SmallVector<FusedOp> groups;
    for (Operation &op : block)
      if (auto fused = dyn_cast<FusedOp>(op);
          fused && fused.getForm() == FusedOp::Form::RowGroup &&
          fused.getRowDims() > 1)
        groups.push_back(fused);
    IRRewriter rewriter(block.getParentOp()->getContext());
    for (FusedOp fused : groups) {
      RankedTensorType rows = fused.getRowType();
      int64_t run = fused.getRowDims();
      FailureOr<FusedOp> collapsed = fused.collapseRowDims(rewriter);
      if (failed(collapsed) || *collapsed == fused)
        continue;
      auto remark = remark::passed(
          collapsed->getLoc(),
          remarkOpts("CollapsedRowDims", collapsed->getOperation()));
      if (!remark)
        continue;
      ArrayRef<int64_t> shape = collapsed->getRowType().getShape();
      int64_t dims = collapsed->getRowDims();
      remark << remark::add(
          "row group over the last {0} dims of {1}: its rows are {2} of "
          "{3} elements, {4} (reshapes of its operands and results are "
          "views)",
          run, formatShape(rows.getShape()),
          dims == 1 ? std::string("one dim")
                    : llvm::formatv("{0} dims, {1}", dims,
                                    formatShape(shape.take_back(dims)))
                          .str(),
          getNumElements(shape.take_back(dims)), formatShape(shape));
    }
  }

  /// `aRows` and `rows`: whether `a`, and `a` or `b`, is a row group.
  void remarkMerged(Operation *a, Operation *b, bool aRows, bool rows) {
    if (!b->getContext()->getRemarkEngine())
      return;
    bool reads = llvm::any_of(a->getResults(), [&](Value result) {
      return llvm::is_contained(result.getUsers(), b);
    });
    std::string ops;
    auto fused = dyn_cast<FusedOp>(a);
    for (Operation &inner :
         fused ? fused.getBody().front().without_terminator()
               : llvm::make_range(Block::iterator(a),
                                  std::next(Block::iterator(a))))
      if (!isSplatConstant(&inner))
        ops += (ops.empty() ? "" : ", ") + inner.getName().getStringRef().str();
    std::string where;
    if (std::optional<std::string> at = kiln::filePosition(a->getLoc()))
      where = " at " + *at;
    if (auto r = remark::passed(b->getLoc(), remarkOpts("MergedKernels", b)))
      r << remark::reason(
          "the {0} kernel{1} ({2}) runs in this kernel's {3}: {4}",
          aRows ? "row group" : "elementwise", where, ops,
          rows ? "row group, each row read once for both" : "loop",
          reads ? "this kernel reads its result, which is no longer stored "
                  "unless used later"
                : "both read the same input, which is read once");
  }

  /// Clones the elementwise kernel `op` into `builder`'s block, its inputs
  /// looked up in `mapping`; returns the values of its results.
  static SmallVector<Value> cloneKernel(OpBuilder &builder, Operation *op,
                                        IRMapping &mapping) {
    auto fused = dyn_cast<FusedOp>(op);
    if (!fused) {
      for (Value operand : op->getOperands())
        if (Operation *def = operand.getDefiningOp();
            isSplatConstant(def) && !mapping.contains(operand))
          builder.clone(*def, mapping);
      return SmallVector<Value>(builder.clone(*op, mapping)->getResults());
    }
    Block &body = fused.getBody().front();
    for (auto [arg, input] : llvm::zip(body.getArguments(), fused.getInputs()))
      mapping.map(arg, mapping.lookup(input));
    for (Operation &inner : body.without_terminator())
      builder.clone(inner, mapping);
    SmallVector<Value> values;
    for (Value v : cast<YieldOp>(body.getTerminator()).getValues())
      values.push_back(mapping.lookup(v));
    return values;
  }

  /// One kernel at `b`'s place computing `a` and `b`: `b`'s results, then
  /// those of `a` used elsewhere than by `b`. Returns it, or null (and
  /// leaves `a` and `b`) when the merged region is not a valid kernel.
  Operation *merge(Operation *a, Operation *b) {
    bool aRows = spaceOf(a)->rowGroup;
    bool rows = aRows || spaceOf(b)->rowGroup;
    llvm::SetVector<Value> inputs;
    for (Value v : kernelInputs(a))
      inputs.insert(v);
    for (Value v : kernelInputs(b))
      if (v.getDefiningOp() != a)
        inputs.insert(v);
    SmallVector<Value> keptA = usedBeyond(a, b);
    SmallVector<Type> resultTypes(b->getResultTypes());
    for (Value result : keptA)
      resultTypes.push_back(result.getType());

    OpBuilder builder(b);
    IRMapping mapping;
    FusedOp fused = createKernel(builder, b->getLoc(), resultTypes,
                                 inputs.getArrayRef(), mapping);
    SmallVector<Value> aValues = cloneKernel(builder, a, mapping);
    // b reads a's results as the values the loop computes.
    for (auto [result, value] : llvm::zip(a->getResults(), aValues))
      mapping.map(result, value);
    SmallVector<Value> yielded = cloneKernel(builder, b, mapping);
    for (Value result : keptA)
      yielded.push_back(mapping.lookup(result));
    YieldOp::create(builder, b->getLoc(), yielded);
    // A row group's value without keepdim is the row's: where `b` read it
    // as an input broadcast against the rows (along their columns), the
    // merged region would compute it per row instead, and the verifier
    // rejects that. Quietly: the kernels then stay apart.
    if (rows) {
      ScopedDiagnosticHandler quietly(fused.getContext(),
                                      [](Diagnostic &) { return success(); });
      if (failed(verify(fused))) {
        fused.erase();
        return nullptr;
      }
    }
    remarkMerged(a, b, aRows, rows);

    b->replaceAllUsesWith(fused.getResults().take_front(b->getNumResults()));
    for (auto [i, result] : llvm::enumerate(keptA))
      result.replaceAllUsesWith(fused.getResult(b->getNumResults() + i));
    b->erase();
    a->erase();
    // Values both kernels computed (a producer each recomputed, a constant
    // each copied) are computed once.
    IRRewriter rewriter(fused);
    DominanceInfo dominance;
    eliminateCommonSubExpressions(rewriter, dominance, fused);
    return fused;
  }

  Block &block;
  size_t maxGroupOps;
  size_t maxRowReductions;
  bool rowGroups;
  /// Set while a group is only being tried (no remarks).
  bool quiet = false;
  /// Why each column reduction is no column group with its chain
  /// (formColumnGroups), when remarks are on; erased ops leave it.
  llvm::DenseMap<Operation *, std::string> columnRefusals;
  /// Ops erased by the last materialize() (their addresses may be reused
  /// by new ops, so they leave the visited set).
  llvm::SmallPtrSet<Operation *, 32> erased;
};

struct KilnFuseElementwisePass
    : kiln::impl::KilnFuseElementwiseBase<KilnFuseElementwisePass> {
  using Base::Base;

  void runOnOperation() override {
    getOperation()->walk([&](func::FuncOp function) {
      for (Block &block : function.getBody())
        Fuser(block, maxGroupOps, maxRowReductions, rowGroups).run();
    });
  }
};

} // namespace
