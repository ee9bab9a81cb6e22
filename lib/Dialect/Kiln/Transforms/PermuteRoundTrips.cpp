//===- PermuteRoundTrips.cpp - Permutes undone by their inverse ----------===//
//
// PyTorch code often computes on a permuted view and permutes the result
// back: ConvNeXt's channels-last layer norm of an NCHW tensor is
// `layer_norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)`. Each permute
// of a computed value is a transposed copy, and a row group stops at
// them. When every path from the permuted values to the inverse permute
// runs through elementwise ops and keepdim reductions, the ops compute the
// same elements on the unpermuted tensors: cancelPermuteRoundTrips
// rewrites them so (the inverse permute disappears, the permutes at the
// start are left to their other users or die), and the fuser sees the
// channels-first graph -- a layer norm over C of [N, C, H, W].
//
// Exact: elementwise ops compute each element from the same operands; a
// reduction reduces the same elements in the same order
// (getReducedDimsThroughPermute, ReductionOfPermute's rule).
//
//===----------------------------------------------------------------------===//

#include "kiln/Dialect/Kiln/IR/KilnOps.h"
#include "kiln/Dialect/Kiln/IR/KilnShapeInference.h"
#include "kiln/Dialect/Kiln/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/Remarks.h"

#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/SetVector.h"

using namespace mlir;
using namespace kiln;

namespace {

/// The longest chain of ops between a permute and its inverse that is
/// rewritten (the depth of RoundTrip::visit's recursion).
constexpr int64_t kMaxDepth = 1024;

/// A permutation's dims, normalized.
SmallVector<int64_t> permutationOf(PermuteOp op) {
  int64_t rank = op.getType().getRank();
  SmallVector<int64_t> perm;
  for (int64_t d : op.getDims())
    perm.push_back(*normalizeDim(d, rank));
  return perm;
}

/// Whether `v` is a splat constant whose value the rewrite can resize.
bool isResizableSplat(Value v) {
  Operation *def = v.getDefiningOp();
  return def && isSplatConstant(def) &&
         def->getAttrOfType<DenseElementsAttr>("value");
}

/// The chain between the permutes `perm` (of its leaves) and the
/// permute back (`exit`): what the rewrite clones onto the unpermuted
/// tensors.
class RoundTrip {
public:
  RoundTrip(PermuteOp exit, llvm::DenseSet<Operation *> &erased)
      : exit(exit), erased(erased), back(permutationOf(exit)) {
    rank = static_cast<int64_t>(back.size());
    // The permutation the chain's values carry is the inverse of the
    // exit's: v = permute(u, perm) with v's dim i being u's dim perm[i].
    perm.assign(rank, 0);
    for (int64_t i = 0; i < rank; ++i)
      perm[back[i]] = i;
  }

  /// Whether the chain above the exit can be computed unpermuted, every
  /// value of it used only inside it (so the permuted ops die).
  bool plan() {
    if (rank < 2 || !visit(exit.getInput()) || !chain.count(defOf(exit)))
      return false;
    for (Operation *op : chain)
      for (Operation *user : op->getUsers())
        if (user != exit && !chain.count(user))
          return false;
    return true;
  }

  /// Rewrites the chain onto the unpermuted tensors and replaces the exit.
  void rewrite() {
    OpBuilder b(exit);
    // In block order: operands before their users.
    SmallVector<Operation *> ops(chain.begin(), chain.end());
    llvm::sort(
        ops, [](Operation *x, Operation *y) { return x->isBeforeInBlock(y); });
    IRMapping map;
    for (Operation *op : ops) {
      b.setInsertionPoint(op);
      for (Value operand : op->getOperands())
        if (!map.contains(operand))
          map.map(operand, unpermuteLeaf(b, operand));
      Operation *copy = b.clone(*op, map);
      for (OpResult result : copy->getResults())
        result.setType(unpermutedType(result.getType()));
      if (auto dims = op->getAttrOfType<DenseI64ArrayAttr>("dims");
          dims && !dims.empty()) {
        SmallVector<int64_t> unpermuted;
        for (int64_t d : dims.asArrayRef())
          unpermuted.push_back(perm[*normalizeDim(d, rank)]);
        llvm::sort(unpermuted);
        copy->setAttr("dims", b.getDenseI64ArrayAttr(unpermuted));
      }
      map.map(op->getResults(), copy->getResults());
    }
    if (auto remark = remark::passed(
            exit.getLoc(),
            remark::RemarkOpts::name("CancelledPermutes")
                .category("kiln-fuse")
                .function(exit->getParentOfType<func::FuncOp>().getSymName())))
      remark << remark::add(
          "this permute undoes the permute of the {0} op(s) before it "
          "(elementwise ops and reductions with keepdim): they compute on "
          "the unpermuted tensors, and this permute is not copied",
          ops.size());
    exit.replaceAllUsesWith(map.lookup(exit.getInput()));
    erased.insert(exit);
    exit.erase();
    SetVector<Operation *> leaves;
    for (Operation *op : llvm::reverse(ops)) {
      for (Value operand : op->getOperands())
        if (isa_and_present<PermuteOp, ReshapeOp>(operand.getDefiningOp()))
          leaves.insert(operand.getDefiningOp());
      op->erase();
    }
    // The permutes at the start, and the views read through, unless other
    // ops read them.
    for (Operation *leaf : leaves)
      if (leaf->use_empty()) {
        erased.insert(leaf);
        leaf->erase();
      }
  }

private:
  static Operation *defOf(PermuteOp exit) {
    return exit.getInput().getDefiningOp();
  }

  /// `v`'s type before the permutation: u's dim perm[i] is v's dim i.
  RankedTensorType unpermutedType(Type type) const {
    auto tensor = cast<RankedTensorType>(type);
    SmallVector<int64_t> shape(rank);
    for (int64_t i = 0; i < rank; ++i)
      shape[perm[i]] = tensor.getDimSize(i);
    return RankedTensorType::get(shape, tensor.getElementType());
  }

  /// Whether `v`, a value of the chain, can be had unpermuted: computed
  /// by ops of the chain from values that can, or else a leaf
  /// (unpermuteLeaf). A value computed in the chain is preferred, so that
  /// what computes it is not left in the permuted world. The answer for a
  /// value that no op of the chain computes depends on the value alone and
  /// is kept (`settled`: each is explored once, not once per path to it);
  /// a chain deeper than kMaxDepth ops is not rewritten (the recursion's
  /// bound).
  bool visit(Value v, int64_t depth = 0) {
    if (Operation *op = v.getDefiningOp(); op && chain.count(op))
      return true;
    if (auto known = settled.find(v); known != settled.end())
      return known->second;
    if (depth > kMaxDepth)
      return false;
    size_t before = chain.size();
    if (visitOp(v, depth))
      return true;
    while (chain.size() > before)
      chain.pop_back();
    bool leaf = isLeaf(v);
    settled[v] = leaf;
    return leaf;
  }

  bool visitOp(Value v, int64_t depth) {
    Operation *op = v.getDefiningOp();
    if (!op || op->getBlock() != exit->getBlock() || op->getNumResults() != 1)
      return false;
    if (isa<PermuteOp>(op) && isLeaf(v))
      return false;
    auto type = dyn_cast<RankedTensorType>(v.getType());
    if (!type || type.getRank() != rank)
      return false;
    bool elementwise = op->hasTrait<kiln::OpTrait::Elementwise>() &&
                       isa<ScalarOpInterface>(op);
    if (!elementwise && !reducesAlike(op))
      return false;
    for (Value operand : op->getOperands())
      if (!visit(operand, depth + 1))
        return false;
    chain.insert(op);
    return true;
  }

  /// A sum, mean, product, amax or amin with keepdim that reduces the
  /// same elements in the same order read unpermuted.
  bool reducesAlike(Operation *op) const {
    if (!isa<SumOp, MeanOp, ProdOp, AmaxOp, AminOp>(op))
      return false;
    auto keepdim = op->getAttrOfType<BoolAttr>("keepdim");
    if (!keepdim || !keepdim.getValue())
      return false;
    auto input = cast<RankedTensorType>(op->getOperand(0).getType());
    auto dims = op->getAttrOfType<DenseI64ArrayAttr>("dims");
    SmallVector<bool> reducedInP = getReducedDimsMask(
        input, dims ? std::optional<ArrayRef<int64_t>>(dims.asArrayRef())
                    : std::nullopt);
    return getReducedDimsThroughPermute(input.getShape(), reducedInP, perm,
                                        reducesInAnyOrder(op))
        .has_value();
  }

  /// A value read unpermuted without computing: a permute by `perm`, a
  /// splat constant, or a value whose dims other than 1 (aligned at the
  /// end of the chain's rank) keep their order unpermuted (a per-channel
  /// weight [C] of [N, H, W, C] is [C, 1, 1] of [N, C, H, W]: a view).
  bool isLeaf(Value v) const {
    auto type = dyn_cast<RankedTensorType>(v.getType());
    if (!type || type.getRank() > rank)
      return false;
    return unpermutes(v) || isResizableSplat(v) || keepsOrder(type.getShape());
  }

  /// The input of `v` when `v` is a permute by `perm`.
  Value unpermutes(Value v) const {
    auto permute = v.getDefiningOp<PermuteOp>();
    if (!permute || permutationOf(permute) != ArrayRef(perm))
      return Value();
    return permute.getInput();
  }

  /// Whether a value of `shape`, broadcast against the chain's rank,
  /// keeps the order of its dims other than 1 unpermuted.
  bool keepsOrder(ArrayRef<int64_t> shape) const {
    int64_t offset = rank - static_cast<int64_t>(shape.size());
    int64_t last = -1;
    // Unpermuted dim j is permuted dim back[j].
    for (int64_t j = 0; j < rank; ++j) {
      int64_t i = back[j] - offset;
      if (i < 0 || shape[i] == 1)
        continue;
      if (i < last)
        return false;
      last = i;
    }
    return true;
  }

  /// A leaf's unpermuted value (isLeaf): the permute's input, a splat
  /// constant of the unpermuted shape, or a reshape (a view).
  Value unpermuteLeaf(OpBuilder &b, Value v) const {
    auto type = cast<RankedTensorType>(v.getType());
    if (Value input = unpermutes(v))
      return input;
    if (type.getRank() == 0)
      return v;
    SmallVector<int64_t> full(rank - type.getRank(), 1);
    llvm::append_range(full, type.getShape());
    RankedTensorType target =
        unpermutedType(RankedTensorType::get(full, type.getElementType()));
    if (isResizableSplat(v)) {
      Operation *copy = b.clone(*v.getDefiningOp());
      copy->getResult(0).setType(target);
      auto value = copy->getAttrOfType<DenseElementsAttr>("value");
      copy->setAttr("value", value.resizeSplat(target));
      return copy->getResult(0);
    }
    // A view of a view is one view of the first one's input (a reduction's
    // result reshaped by canonicalization: read where it is, its users then
    // the chain's ops).
    if (auto view = v.getDefiningOp<ReshapeOp>())
      v = view.getInput();
    if (target == v.getType())
      return v;
    return ReshapeOp::create(b, v.getLoc(), target, v);
  }

  PermuteOp exit;
  llvm::DenseSet<Operation *> &erased;
  /// The exit's permutation, and the one the chain's values carry, its
  /// inverse.
  SmallVector<int64_t> back, perm;
  int64_t rank = 0;
  llvm::SetVector<Operation *> chain;
  llvm::DenseMap<Value, bool> settled;
};

} // namespace

void kiln::cancelPermuteRoundTrips(Block &block) {
  SmallVector<PermuteOp> permutes;
  for (Operation &op : block)
    if (auto permute = dyn_cast<PermuteOp>(op))
      permutes.push_back(permute);
  llvm::DenseSet<Operation *> erased;
  for (PermuteOp exit : permutes) {
    if (erased.contains(exit))
      continue;
    RoundTrip trip(exit, erased);
    if (trip.plan())
      trip.rewrite();
  }
}
