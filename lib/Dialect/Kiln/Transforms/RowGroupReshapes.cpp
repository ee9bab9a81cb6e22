//===- RowGroupReshapes.cpp - Row groups through reshapes -----------------===//
//
// A group norm as PyTorch users write it reshapes [N, C, H, W] to
// [N, G, C/G*H*W], normalizes the rows of the last dim, reshapes back and
// scales per channel:
//
//   %xr = kiln.reshape %x : [N, C, H, W] -> [N, G, K]
//   ... mean, variance, normalization over dim 2 of [N, G, K] ...
//   %yr = kiln.reshape %y : [N, G, K] -> [N, C, H, W]
//   %o  = kiln.mul %yr, %w : [N, C, H, W], [C, 1, 1]
//
// A row group stops at a view, so the scale was a kernel of its own, one
// more pass over the tensor. Both shapes are runs of the dims of their
// common refinement [N, G, C/G, H, W]: the normalization is the same
// computation on that shape, its reductions over dims 2, 3 and 4 (the
// reduction kernels coalesce those into one run of elements, so the same
// order and bits), and so is the scale, the weight seen as [G, C/G, 1, 1].
// refineRowGroupReshapes rewrites such graphs into the refined shape ahead
// of kiln-fuse-elementwise's grouping, which then forms one row group over
// rows of [C/G, H, W] (collapsed to [C/G, H*W] by FusedOp::collapseRowDims).
//
//===----------------------------------------------------------------------===//

#include "kiln/Dialect/Kiln/IR/KilnOps.h"
#include "kiln/Dialect/Kiln/IR/KilnShapeInference.h"
#include "kiln/Dialect/Kiln/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/Remarks.h"

using namespace mlir;
using namespace kiln;

namespace {

/// A shape `to` seen as runs of the dims of a finer shape `refined`: dim i
/// of `to` is the dims `groups[i]` of `refined` (consecutive; one dim of
/// size 1 for a unit dim).
struct Refinement {
  SmallVector<int64_t> to, refined;
  SmallVector<SmallVector<int64_t>> groups;

  /// The common refinement of `from` and `to` (the same elements' count):
  /// `to`'s dims cut where `from`'s dims end (unit dims of `from` are
  /// ignored). Nothing when a dim of one straddles a boundary of the
  /// other's without dividing it ([6, 4] and [4, 6]), or a dim is empty.
  static std::optional<Refinement> of(ArrayRef<int64_t> from,
                                      ArrayRef<int64_t> to) {
    if (llvm::is_contained(from, 0) || llvm::is_contained(to, 0) ||
        ShapedType::isDynamicShape(from) || ShapedType::isDynamicShape(to))
      return std::nullopt;
    SmallVector<int64_t> pieces;
    for (int64_t size : from)
      if (size != 1)
        pieces.push_back(size);
    Refinement r;
    r.to.assign(to.begin(), to.end());
    size_t k = 0;
    int64_t current = pieces.empty() ? 1 : pieces[0];
    for (int64_t size : to) {
      SmallVector<int64_t> group;
      if (size == 1) {
        group.push_back(r.refined.size());
        r.refined.push_back(1);
      }
      for (int64_t need = size; need > 1;) {
        if (k == pieces.size())
          return std::nullopt;
        int64_t piece = std::min(current, need);
        if (need % piece != 0 || current % piece != 0)
          return std::nullopt;
        group.push_back(r.refined.size());
        r.refined.push_back(piece);
        need /= piece;
        current /= piece;
        if (current == 1 && ++k < pieces.size())
          current = pieces[k];
      }
      r.groups.push_back(std::move(group));
    }
    if (k != pieces.size())
      return std::nullopt;
    return r;
  }

  /// `to` as runs of the dims of `refined`, a finer shape of the same
  /// elements: each dim of `to` the next dims of `refined` that multiply to
  /// it (unit dims of `refined` join the run they fall in or the last; a
  /// unit dim of `to` may have none). Nothing when `refined` does not
  /// refine `to`.
  static std::optional<Refinement> onto(ArrayRef<int64_t> refined,
                                        ArrayRef<int64_t> to) {
    Refinement r;
    r.to.assign(to.begin(), to.end());
    r.refined.assign(refined.begin(), refined.end());
    size_t u = 0;
    for (int64_t size : to) {
      SmallVector<int64_t> group;
      int64_t product = 1;
      while (product < size && u < refined.size()) {
        product *= refined[u];
        group.push_back(u++);
      }
      if (product != size)
        return std::nullopt;
      r.groups.push_back(std::move(group));
    }
    for (; u < refined.size(); ++u) {
      if (refined[u] != 1 || r.groups.empty())
        return std::nullopt;
      r.groups.back().push_back(u);
    }
    return r;
  }

  /// Whether `refined` is finer than `to` (some dim of `to` is cut).
  bool cuts() const { return refined.size() != to.size(); }

  /// A value of `shape` (broadcast against `to`, aligned at the end) in
  /// the refined shape: each dim's run of sizes, or ones where the value is
  /// broadcast along it. `starts` gets where each dim's run begins.
  /// Nothing when the shape does not broadcast to `to`.
  std::optional<SmallVector<int64_t>>
  shapeOf(ArrayRef<int64_t> shape,
          SmallVectorImpl<int64_t> *starts = nullptr) const {
    int64_t q = shape.size(), rank = to.size();
    if (q > rank)
      return std::nullopt;
    SmallVector<int64_t> result;
    for (int64_t i = 0; i < q; ++i) {
      int64_t d = rank - q + i;
      if (starts)
        starts->push_back(result.size());
      if (shape[i] != to[d] && shape[i] != 1)
        return std::nullopt;
      for (int64_t u : groups[d])
        result.push_back(shape[i] == to[d] ? refined[u] : 1);
    }
    return result;
  }

  std::optional<RankedTensorType> typeOf(Type type) const {
    auto tensor = dyn_cast<RankedTensorType>(type);
    if (!tensor)
      return std::nullopt;
    auto shape = shapeOf(tensor.getShape());
    if (!shape)
      return std::nullopt;
    return RankedTensorType::get(*shape, tensor.getElementType());
  }
};

/// Whether `op` reduces with keepdim over `dims` (sum, mean, prod, amax,
/// amin, norm): the ops whose dims a refinement maps.
bool isKeepdimReduction(Operation *op) {
  auto keepdim = op->getAttrOfType<BoolAttr>("keepdim");
  return op->hasTrait<kiln::OpTrait::Reduction>() &&
         op->getNumOperands() == 1 && op->getNumResults() == 1 &&
         op->getAttrOfType<DenseI64ArrayAttr>("dims") && keepdim &&
         keepdim.getValue();
}

/// The most ops a region may hold to be rewritten: a row group holds far
/// fewer, and each reshape's region is walked once, so a long chain with
/// many reshapes (graphs built with the API) stays linear.
constexpr size_t kMaxRegionOps = 1024;

bool isElementwiseOp(Operation *op) {
  return op->hasTrait<kiln::OpTrait::Elementwise>() && op->getNumOperands() > 0;
}

/// The ops after a value of a refinement's `to` shape that compute on it
/// elementwise or reduce it with keepdim, rewritten on the refined shape.
class RegionRefiner {
public:
  RegionRefiner(Value start, Refinement refinement)
      : start(start), r(std::move(refinement)) {}

  /// Which ops would be rewritten: each elementwise op or keepdim
  /// reduction, after `start` in its block, one of whose operands is
  /// `start` or a result of such an op, and whose operands and results
  /// all broadcast to the refinement's shape; and the reshapes of those
  /// values (`exits`).
  void plan() {
    llvm::SmallPtrSet<Value, 16> inRegion{start};
    llvm::SmallPtrSet<Operation *, 16> seen;
    SmallVector<Value> worklist{start};
    while (!worklist.empty()) {
      Value v = worklist.pop_back_val();
      for (Operation *op : v.getUsers()) {
        if (!seen.insert(op).second)
          continue;
        if (auto reshape = dyn_cast<ReshapeOp>(op)) {
          exits.push_back(reshape);
          continue;
        }
        if (!isElementwiseOp(op) && !isKeepdimReduction(op))
          continue;
        auto fits = [&](Type t) { return r.typeOf(t).has_value(); };
        if (!llvm::all_of(op->getOperandTypes(), fits) ||
            !llvm::all_of(op->getResultTypes(), fits) ||
            (isKeepdimReduction(op) && !refinedDims(op)))
          continue;
        if (isKeepdimReduction(op) && getReducedTrailingRun(op) &&
            cast<RankedTensorType>(op->getOperand(0).getType()).getRank() ==
                static_cast<int64_t>(r.to.size()))
          rowReductions = true;
        ops.push_back(op);
        if (ops.size() > kMaxRegionOps) {
          tooLarge = true;
          return;
        }
        for (Value result : op->getResults())
          if (inRegion.insert(result).second)
            worklist.push_back(result);
      }
    }
    // In the block's order, so that each op's operands are made first.
    llvm::sort(
        ops, [](Operation *a, Operation *b) { return a->isBeforeInBlock(b); });
  }

  /// Rewrites the planned ops on the refined shape (new ops before the old
  /// ones, which are erased); the exits reshape the refined values; other
  /// users of the region's values read them reshaped back (views).
  void rewrite(Value refinedStart) {
    IRMapping map;
    map.map(start, refinedStart);
    OpBuilder b(start.getContext());
    for (Operation *op : ops) {
      b.setInsertionPoint(op);
      for (Value operand : op->getOperands())
        if (!map.contains(operand))
          map.map(operand, refineOperand(b, op->getLoc(), operand));
      Operation *copy = b.clone(*op, map);
      for (OpResult result : copy->getResults())
        result.setType(*r.typeOf(result.getType()));
      if (isKeepdimReduction(op))
        copy->setAttr("dims", b.getDenseI64ArrayAttr(*refinedDims(op)));
      for (auto [old, now] : llvm::zip(op->getResults(), copy->getResults()))
        map.map(old, now);
    }
    // The exits read the refined values (a reshape of a reshape is one
    // reshape: the same row-major elements).
    for (ReshapeOp exit : exits)
      exit.getInputMutable().assign(map.lookupOrDefault(exit.getInput()));
    // Other users read the old shape back.
    for (Operation *op : llvm::reverse(ops)) {
      for (Value old : op->getResults()) {
        if (old.use_empty())
          continue;
        Value now = map.lookup(old);
        b.setInsertionPointAfterValue(now);
        old.replaceAllUsesWith(
            ReshapeOp::create(b, op->getLoc(), old.getType(), now).getResult());
      }
      op->erase();
    }
  }

  Value start;
  Refinement r;
  SmallVector<Operation *> ops;
  SmallVector<ReshapeOp> exits;
  bool rowReductions = false;
  bool tooLarge = false; // more than kMaxRegionOps: left as written

private:
  /// The dims a keepdim reduction reduces on the refined shape: the runs
  /// of its dims (all of them when it names none). Nothing when that would
  /// be none (it reduces only unit dims that have no run): an empty list
  /// would mean all dims.
  std::optional<SmallVector<int64_t>> refinedDims(Operation *op) const {
    auto input = cast<RankedTensorType>(op->getOperand(0).getType());
    SmallVector<int64_t> starts;
    if (!r.shapeOf(input.getShape(), &starts))
      return std::nullopt;
    int64_t q = input.getRank();
    ArrayRef<int64_t> named =
        op->getAttrOfType<DenseI64ArrayAttr>("dims").asArrayRef();
    SmallVector<int64_t> all;
    if (named.empty())
      all = llvm::to_vector(llvm::seq<int64_t>(0, q));
    SmallVector<int64_t> dims;
    for (int64_t d : named.empty() ? ArrayRef<int64_t>(all) : named) {
      int64_t dim = d < 0 ? d + q : d;
      int64_t length = r.groups[r.to.size() - q + dim].size();
      for (int64_t u = 0; u < length; ++u)
        dims.push_back(starts[dim] + u);
    }
    if (dims.empty())
      return std::nullopt;
    llvm::sort(dims);
    return dims;
  }

  /// An operand from outside the region on the refined shape: a splat
  /// constant made again, anything else reshaped (a view).
  Value refineOperand(OpBuilder &b, Location loc, Value operand) {
    auto type = cast<RankedTensorType>(operand.getType());
    RankedTensorType refined = *r.typeOf(type);
    if (refined == type)
      return operand;
    DenseElementsAttr splat;
    if (matchPattern(operand, m_Constant(&splat)) && splat.isSplat()) {
      Operation *copy = b.clone(*operand.getDefiningOp());
      copy->getResult(0).setType(refined);
      copy->setAttr("value", splat.resizeSplat(refined));
      return copy->getResult(0);
    }
    return ReshapeOp::create(b, loc, refined, operand);
  }
};

/// Rewrites, for each reshape whose result a row reduction reads through
/// an elementwise chain and whose region is reshaped back and then used
/// elementwise, the region and what follows the reshape back on the two
/// shapes' common refinement.
bool refineAt(ReshapeOp entry, llvm::DenseSet<Operation *> &erased) {
  auto from = entry.getInput().getType();
  auto to = entry.getResult().getType();
  std::optional<Refinement> r =
      Refinement::of(cast<RankedTensorType>(from).getShape(),
                     cast<RankedTensorType>(to).getShape());
  if (!r || !r->cuts())
    return false;
  RegionRefiner region(entry.getResult(), *r);
  region.plan();
  if (!region.rowReductions || region.ops.empty() || region.tooLarge)
    return false;
  // The reshapes back whose users the refined shape also serves (it is
  // finer than theirs) and that are used elementwise.
  SmallVector<std::pair<ReshapeOp, Refinement>> exits;
  for (ReshapeOp exit : region.exits) {
    auto shape = cast<RankedTensorType>(exit.getType()).getShape();
    std::optional<Refinement> back = Refinement::onto(r->refined, shape);
    if (!back)
      continue;
    RegionRefiner after(exit.getResult(), *back);
    after.plan();
    if (!after.ops.empty() && !after.tooLarge)
      exits.push_back({exit, *back});
  }
  if (exits.empty())
    return false;

  OpBuilder b(entry);
  b.setInsertionPointAfter(entry);
  auto refinedType = RankedTensorType::get(
      r->refined, cast<RankedTensorType>(to).getElementType());
  Value refinedStart =
      entry.getInput().getType() == refinedType
          ? entry.getInput()
          : ReshapeOp::create(b, entry.getLoc(), refinedType, entry.getInput())
                .getResult();
  region.rewrite(refinedStart);
  for (auto &[exit, back] : exits) {
    RegionRefiner after(exit.getResult(), back);
    after.plan();
    after.rewrite(exit.getInput());
  }
  if (auto remark = remark::passed(
          entry.getLoc(),
          remark::RemarkOpts::name("RefinedReshapes")
              .category("kiln-fuse")
              .function(entry->getParentOfType<func::FuncOp>().getSymName())))
    remark << remark::add(
        "the reshape of {0} to {1}, the row reductions after it, the "
        "reshape back and the elementwise ops after that computed on {2}, "
        "the shapes' common refinement (reshapes to it are views): one "
        "row group can hold them",
        formatShape(cast<RankedTensorType>(from).getShape()),
        formatShape(cast<RankedTensorType>(to).getShape()),
        formatShape(r->refined));
  for (auto &[exit, back] : exits)
    if (exit->use_empty()) {
      erased.insert(exit);
      exit->erase();
    }
  if (entry->use_empty()) {
    erased.insert(entry);
    entry->erase();
  }
  return true;
}

} // namespace

void kiln::refineRowGroupReshapes(Block &block) {
  SmallVector<ReshapeOp> reshapes;
  for (Operation &op : block)
    if (auto reshape = dyn_cast<ReshapeOp>(op))
      reshapes.push_back(reshape);
  llvm::DenseSet<Operation *> erased;
  for (ReshapeOp reshape : reshapes)
    if (!erased.contains(reshape))
      refineAt(reshape, erased);
}
