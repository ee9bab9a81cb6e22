//===- KilnRowGroups.cpp - Row groups over several trailing dims ----------===//
//
// A kiln.fused row group whose rows span the last k > 1 dims of its rows'
// shape -- an instance norm's reductions over H and W of [N, C, H, W] -- is
// the same computation on that shape with runs of those dims collapsed
// into one ([N, C, H*W]): every value the region computes along the rows is
// read at the collapsed position, and a per-row value at the row's. Dims
// collapse where every value along the rows is constant along all of them
// or along none: a group norm's per-channel weight [G, C/G, 1, 1] of rows
// [N, G, C/G, H, W] keeps the rows two dims, [N, G, C/G, H*W], the weight
// [G, C/G, 1] (not expanded along H and W). The lowering reduces a row
// as one run of elements either way (the same order); its chain runs over
// the row's dims. FusedOp::collapseRowDims rewrites row groups into that
// form.
//
//===----------------------------------------------------------------------===//

#include "kiln/Dialect/Kiln/IR/KilnOps.h"
#include "kiln/Dialect/Kiln/IR/KilnShapeInference.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/PatternMatch.h"

using namespace mlir;
using namespace kiln;

namespace {

/// Where a value of the region is evaluated: at the rows' positions (the
/// rows, values broadcast over them, keepdim results), or at a row's (the
/// per-row values of reductions without keepdim, and what is computed from
/// them).
enum World : unsigned { Rows = 1, PerRow = 2 };

class RowDimsCollapser {
public:
  RowDimsCollapser(FusedOp op)
      : op(op), rows(op.getRowType().getShape()), run(op.getRowDims()),
        rank(static_cast<int64_t>(rows.size())) {}

  /// The row's dims after the rewrite (planRuns): fewer than before, or
  /// as many (nothing to collapse).
  int64_t collapsedDims() const { return static_cast<int64_t>(runs.size()); }

  /// Which worlds each value of the region is needed in; fails when one is
  /// needed in both, or a reduction's result in the other world than its
  /// keepdim gives.
  LogicalResult analyze() {
    Block &body = op.getBody().front();
    auto yield = cast<YieldOp>(body.getTerminator());
    for (Value v : yield.getValues())
      needs[v] |= worldOfResult(v);
    for (Operation &inner : llvm::reverse(body.without_terminator())) {
      unsigned worlds = 0;
      for (Value result : inner.getResults())
        worlds |= needs.lookup(result);
      if (!worlds)
        continue;
      if (getReducedTrailingRun(&inner)) {
        auto keepdim = inner.getAttrOfType<BoolAttr>("keepdim");
        unsigned own = keepdim && keepdim.getValue() ? Rows : PerRow;
        if (worlds != own)
          return failure();
        needs[inner.getOperand(0)] |= Rows;
        continue;
      }
      for (Value operand : inner.getOperands())
        needs[operand] |= worlds;
    }
    planRuns();
    return success();
  }

  /// Leaves `rewriter` before the new op (a guard would restore it to
  /// before the erased one).
  FusedOp rewrite(RewriterBase &rewriter) {
    Block &body = op.getBody().front();
    auto yield = cast<YieldOp>(body.getTerminator());
    Location loc = op.getLoc();
    rewriter.setInsertionPoint(op);

    // The operands, once per world they are read in: along the rows,
    // collapsed.
    SmallVector<Value> inputs;
    SmallVector<std::pair<BlockArgument, unsigned>> args;
    for (auto [arg, input] : llvm::zip(body.getArguments(), op.getInputs())) {
      unsigned worlds = needs.lookup(arg);
      if (worlds & PerRow) {
        inputs.push_back(input);
        args.push_back({arg, PerRow});
      }
      if (worlds & Rows) {
        inputs.push_back(collapseInput(rewriter, loc, input));
        args.push_back({arg, Rows});
      }
    }
    SmallVector<Type> resultTypes;
    for (Value v : yield.getValues())
      resultTypes.push_back(retype(v.getType(), worldOfResult(v)));
    auto fused = FusedOp::create(rewriter, loc, resultTypes, inputs);
    fused->setDiscardableAttrs(op->getDiscardableAttrDictionary());
    Block *newBody = rewriter.createBlock(&fused.getBody());
    IRMapping maps[2]; // Rows, PerRow
    auto map = [&](unsigned world) -> IRMapping & {
      return maps[world == Rows ? 0 : 1];
    };
    for (auto [arg, world] : args)
      map(world).map(arg, newBody->addArgument(retype(arg.getType(), world),
                                               arg.getLoc()));

    // The region's ops in order, each once per world it is needed in.
    for (Operation &inner : body.without_terminator()) {
      unsigned worlds = 0;
      for (Value result : inner.getResults())
        worlds |= needs.lookup(result);
      // A reduction (of the group's run, verified) reads the rows and
      // reduces their one collapsed dim.
      if (getReducedTrailingRun(&inner)) {
        if (!worlds)
          continue;
        Operation *copy = rewriter.clone(inner, map(Rows));
        copy->setAttr(
            "dims",
            rewriter.getDenseI64ArrayAttr(llvm::to_vector(
                llvm::seq<int64_t>(rank - run, rank - run + collapsedDims()))));
        Value result = inner.getResult(0);
        copy->getResult(0).setType(retype(result.getType(), worlds));
        map(worlds).map(result, copy->getResult(0));
        continue;
      }
      for (unsigned world : {Rows, PerRow}) {
        if (!(worlds & world))
          continue;
        Operation *copy = rewriter.clone(inner, map(world));
        for (OpResult result : copy->getResults())
          result.setType(retype(result.getType(), world));
        // A splat constant's value takes its new type.
        if (auto value = copy->getAttrOfType<DenseElementsAttr>("value");
            value && world == Rows)
          copy->setAttr("value", value.resizeSplat(cast<ShapedType>(
                                     copy->getResult(0).getType())));
      }
    }
    SmallVector<Value> yielded;
    for (Value v : yield.getValues())
      yielded.push_back(map(worldOfResult(v)).lookupOrDefault(v));
    YieldOp::create(rewriter, yield.getLoc(), yielded);

    // The results in their shapes.
    rewriter.setInsertionPointAfter(fused);
    SmallVector<Value> results;
    for (auto [old, now] : llvm::zip(op.getResults(), fused.getResults()))
      results.push_back(
          old.getType() == now.getType()
              ? Value(now)
              : ReshapeOp::create(rewriter, loc, old.getType(), now)
                    .getResult());
    rewriter.replaceOp(op, results);
    rewriter.setInsertionPoint(fused);
    return fused;
  }

private:
  /// Whether a value of `shape` (aligned with the rows at the end) varies
  /// along the row's dim `i` (of the run).
  bool variesAlong(ArrayRef<int64_t> shape, int64_t i) const {
    int64_t pos = static_cast<int64_t>(shape.size()) - run + i;
    return pos >= 0 && shape[pos] != 1;
  }

  /// Splits the row's dims into runs of consecutive dims along which
  /// every value read along the rows is constant or varies alike (unit
  /// dims join the run before them, or the first).
  void planRuns() {
    ArrayRef<int64_t> rowDims = rows.take_back(run);
    SmallVector<bool> cutBefore(run, false);
    auto visit = [&](Value v) {
      if (!(needs.lookup(v) & Rows))
        return;
      ArrayRef<int64_t> shape = cast<RankedTensorType>(v.getType()).getShape();
      int64_t previous = -1;
      for (int64_t i = 0; i < run; ++i) {
        if (rowDims[i] == 1)
          continue;
        if (previous >= 0 &&
            variesAlong(shape, i) != variesAlong(shape, previous))
          cutBefore[i] = true;
        previous = i;
      }
    };
    Block &body = op.getBody().front();
    for (BlockArgument arg : body.getArguments())
      visit(arg);
    for (Operation &inner : body.without_terminator())
      for (Value result : inner.getResults())
        visit(result);
    runs.clear();
    for (int64_t i = 0; i < run; ++i) {
      if (runs.empty() || cutBefore[i])
        runs.emplace_back();
      runs.back().push_back(i);
    }
  }

  /// The world a result of the region is evaluated in (the verifier has
  /// checked its shape is the rows', or a row's with or without keepdim;
  /// rows of k > 1 dims give those different ranks).
  unsigned worldOfResult(Value v) const {
    return cast<RankedTensorType>(v.getType()).getRank() == rank - run ? PerRow
                                                                       : Rows;
  }

  /// The shape of a value of `shape` along the rows (broadcast against
  /// them, aligned at the end), with each run of the row's dims collapsed
  /// into one: 1 where the value is constant along the run's dims, their
  /// elements' count where it varies along them (planRuns: all alike).
  SmallVector<int64_t> collapsedShape(ArrayRef<int64_t> shape) const {
    int64_t q = static_cast<int64_t>(shape.size());
    if (q == 0)
      return {};
    int64_t outside = std::max<int64_t>(q - run, 0);
    SmallVector<int64_t> collapsed(shape.take_front(outside));
    for (const SmallVector<int64_t> &dims : runs) {
      int64_t size = 1;
      bool varies = false;
      for (int64_t i : dims) {
        size *= rows[rank - run + i];
        varies |= variesAlong(shape, i);
      }
      collapsed.push_back(varies ? size : 1);
    }
    return collapsed;
  }

  Type retype(Type type, unsigned world) const {
    if (world != Rows)
      return type;
    auto tensor = cast<RankedTensorType>(type);
    return RankedTensorType::get(collapsedShape(tensor.getShape()),
                                 tensor.getElementType());
  }

  /// `input` as the region reads it along the rows: reshaped to its
  /// collapsed shape (a view).
  Value collapseInput(RewriterBase &rewriter, Location loc, Value input) {
    auto type = cast<RankedTensorType>(input.getType());
    auto target = cast<RankedTensorType>(retype(type, Rows));
    if (target == type)
      return input;
    return ReshapeOp::create(rewriter, loc, target, input);
  }

  FusedOp op;
  ArrayRef<int64_t> rows;
  int64_t run, rank;
  DenseMap<Value, unsigned> needs;
  /// The row's dims (positions in the run) in the runs they collapse into.
  SmallVector<SmallVector<int64_t>> runs;
};

} // namespace

FailureOr<FusedOp> FusedOp::collapseRowDims(RewriterBase &rewriter) {
  if (getForm() != Form::RowGroup || getRowDims() == 1)
    return *this;
  RowDimsCollapser collapser(*this);
  if (failed(collapser.analyze()))
    return failure();
  if (collapser.collapsedDims() == getRowDims())
    return *this;
  return collapser.rewrite(rewriter);
}
