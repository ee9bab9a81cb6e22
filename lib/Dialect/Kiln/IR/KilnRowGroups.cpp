//===- KilnRowGroups.cpp - Row groups over several trailing dims ----------===//
//
// A kiln.fused row group whose rows span the last k > 1 dims of its rows'
// shape -- an instance norm's reductions over H and W of [N, C, H, W] -- is
// the same computation on that shape with those dims collapsed into one
// ([N, C, H*W]): every value the region computes along the rows is read at
// the collapsed position, and a per-row value at the row's. The lowering
// builds row groups over the last dim only; FusedOp::collapseRowDims
// rewrites the others into that form.
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
        rank(static_cast<int64_t>(rows.size())),
        length(getNumElements(rows.take_back(run))) {}

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
    // collapsed (an operand broadcast along only some of the row's dims is
    // expanded along all of them first).
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
        copy->setAttr("dims", rewriter.getDenseI64ArrayAttr({rank - run}));
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
  /// The world a result of the region is evaluated in (the verifier has
  /// checked its shape is the rows', or a row's with or without keepdim;
  /// rows of k > 1 dims give those different ranks).
  unsigned worldOfResult(Value v) const {
    return cast<RankedTensorType>(v.getType()).getRank() == rank - run ? PerRow
                                                                       : Rows;
  }

  /// The shape of a value of `shape` along the rows (broadcast against
  /// them, aligned at the end), with the row's dims collapsed into one: 1
  /// where the value is constant along all of them, the row's length
  /// otherwise.
  SmallVector<int64_t> collapsedShape(ArrayRef<int64_t> shape) const {
    int64_t q = static_cast<int64_t>(shape.size());
    if (q == 0)
      return {};
    int64_t outside = std::max<int64_t>(q - run, 0);
    SmallVector<int64_t> collapsed(shape.take_front(outside));
    bool constant = llvm::all_of(shape.drop_front(outside),
                                 [](int64_t size) { return size == 1; });
    collapsed.push_back(constant ? 1 : length);
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
  /// collapsed shape; first expanded along the row's dims when it is
  /// broadcast along only some of them (a [W] weight of [N, C, H, W] rows).
  Value collapseInput(RewriterBase &rewriter, Location loc, Value input) {
    auto type = cast<RankedTensorType>(input.getType());
    ArrayRef<int64_t> shape = type.getShape();
    int64_t q = type.getRank();
    auto target = cast<RankedTensorType>(retype(type, Rows));
    if (target == type)
      return input;
    int64_t outside = std::max<int64_t>(q - run, 0);
    ArrayRef<int64_t> inRow = shape.drop_front(outside);
    if (getNumElements(inRow) != 1 &&
        getNumElements(inRow) != length) { // broadcast along some
      SmallVector<int64_t> expanded(shape.take_front(outside));
      llvm::append_range(expanded, rows.take_back(run));
      input = ExpandOp::create(
          rewriter, loc, RankedTensorType::get(expanded, type.getElementType()),
          input);
    }
    return ReshapeOp::create(rewriter, loc, target, input);
  }

  FusedOp op;
  ArrayRef<int64_t> rows;
  int64_t run, rank, length;
  DenseMap<Value, unsigned> needs;
};

} // namespace

FailureOr<FusedOp> FusedOp::collapseRowDims(RewriterBase &rewriter) {
  if (getForm() != Form::RowGroup || getRowDims() == 1)
    return *this;
  RowDimsCollapser collapser(*this);
  if (failed(collapser.analyze()))
    return failure();
  return collapser.rewrite(rewriter);
}
