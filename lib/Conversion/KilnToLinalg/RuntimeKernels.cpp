//===- RuntimeKernels.cpp - Calls into the Kiln runtime -------------------===//
//
// topk, kthvalue, max/min with dim and argmax/argmin as calls of the
// runtime's kernels, with their remarks.
// See Passes.td (convert-kiln-to-linalg) for the overview.
//
//===----------------------------------------------------------------------===//

#include "Lowering.h"
// The GPU runtime's launch plan for topk/kthvalue (header-only, shared with
// lib/Runtime/Cuda.cpp and the device kernels), for the remarks.
#include "../../Runtime/Device/TopkPlan.h"

#include "kiln/Conversion/ReductionPlan.h"
#include "kiln/Conversion/VectorTranspose.h"
#include "kiln/Dialect/Kiln/IR/KilnIndexMath.h"
#include "kiln/Runtime/SelectionPlan.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/PatternMatch.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/raw_ostream.h"

#include <limits>
#include <numeric>

namespace kiln::lowering {

namespace {

/// The suffix of a runtime kernel for elements of `type`.
StringRef typeSuffix(Type type) {
  if (type.isF32())
    return "f32";
  if (type.isF64())
    return "f64";
  if (type.isInteger(32))
    return "i32";
  if (type.isInteger(1))
    return "i1";
  return "i64";
}

/// Reports the algorithm of the runtime kernel `fnName` on `inputType`
/// (SelectionPlan.h for the CPU's selection).
void remarkRuntimeKernel(Operation *op, Location loc, StringRef fnName,
                         RankedTensorType inputType, int64_t k, int64_t dim,
                         bool flatten) {
  if (!loc->getContext()->getRemarkEngine())
    return;
  int64_t rank = inputType.getRank();
  int64_t n = flatten || rank == 0 ? inputType.getNumElements()
                                   : inputType.getDimSize(dim);
  int64_t rows = n ? inputType.getNumElements() / n : 0;
  std::string what =
      (op->getName().getStringRef() + " of " + typeText(inputType) + ": " +
       fnName + ", " + Twine(rows) + " row(s) of " + Twine(n))
          .str();
  auto module = op->getParentOfType<ModuleOp>();
  auto target = module ? module->getAttrOfType<StringAttr>(kTargetAttrName)
                       : StringAttr();
  if (target && target.getValue() == "cuda") {
    // The runtime's launch plan (Device/TopkPlan.h) depends on the shape
    // only.
    using namespace kiln::runtime::device_kernels;
    std::string plan;
    if (isa<TopkOp>(op)) {
      long long chunks = topkChunks(rows, n, k);
      plan = chunks > 1
                 ? "too few rows to fill the GPU, so each row is split "
                   "into " +
                       std::to_string(chunks) +
                       " ranges: a block per range writes its k best, then "
                       "a block per row merges them"
                 : std::string("a block (512 threads) per row");
      plan += k > 2048 ? "; k > 2048: exact radix selection (8-bit digits), "
                         "the winners sorted in global scratch"
                       : "; a histogram of the top 11 bits finds the bucket "
                         "of the k-th, about k candidates are bitonic-sorted "
                         "in shared memory (exact radix selection if more "
                         "than 2048 tie into the bucket)";
    } else if (isa<KthvalueOp>(op)) {
      long long chunks = kthvalueChunks(rows, n);
      plan = chunks > 1
                 ? "too few rows to fill the GPU, so each row is split into " +
                       std::to_string(chunks) +
                       " ranges whose blocks add their 8-bit digit counts to "
                       "the row's histogram, digit by digit"
                 : std::string("a block per row: exact radix selection of "
                               "the k-th key (8-bit digits)");
      plan += ", then the lowest index holding it";
    } else {
      plan = "a (value, index) scan: a warp per contiguous row, a block "
             "per row when rows are few, a thread per position when the "
             "dim is strided; NaN greatest, the lowest index on ties";
    }
    remarkKernelNear(op, loc, "{0}{1}: GPU, {2}", what,
                     isa<TopkOp, KthvalueOp>(op) ? ", k = " + std::to_string(k)
                                                 : std::string(),
                     plan);
    return;
  }
  // topk k = 1, the largest, runs argmax's scans (kiln_rt_topk_*).
  bool argLike = isa<ArgmaxOp, ArgminOp, MaxOp, MinOp>(op) ||
                 (isa<TopkOp>(op) && k == 1 && cast<TopkOp>(op).getLargest());
  if (argLike) {
    int64_t inner = 1;
    for (int64_t d = dim + 1; !flatten && d < rank; ++d)
      inner *= inputType.getDimSize(d);
    Type element = inputType.getElementType();
    int64_t bytes = std::max<int64_t>(1, element.getIntOrFloatBitWidth() / 8);
    bool shortRows = inner == 1 && n <= kiln::runtime::argShortRow(bytes);
    bool contiguousFloat = inner == 1 && (element.isF32() || element.isF64());
    remarkKernelNear(
        op, loc,
        "{0}{1}: {2}; NaN greatest, the lowest index on ties; rows in "
        "parallel{3}",
        what, isa<TopkOp>(op) ? ", k = 1, the largest: argmax's scan" : "",
        shortRows ? "rows of at most " +
                        std::to_string(kiln::runtime::argShortRow(bytes)) +
                        " elements whole, one after another: the extreme in "
                        "whole vectors, folded across the lanes by a tree, "
                        "then the first index holding it (from cache)"
        : contiguousFloat ? "the extreme at memory speed, 64 bytes of lanes "
                            "per instruction, remembering the first "
                            "512-element block reaching it, then the first "
                            "index in that block (from cache)"
        : inner == 1      ? "a 16-lane scan of (value, index) pairs"
        : inner >= kiln::runtime::argColumnBlock(bytes)
            ? "a strided dim: blocks of " +
                  std::to_string(kiln::runtime::argColumnBlock(bytes)) +
                  " adjacent columns (" +
                  std::to_string(kiln::runtime::kArgColumnBlockBytes) +
                  " bytes of a row, the rows ahead prefetched), the rest 16 "
                  "at a time, each column a scan of (value, index) pairs"
            : std::string("a strided dim: 16 adjacent columns at a time, "
                          "each column a scan of (value, index) pairs"),
        inner == 1 && n >= 2 * kiln::runtime::kArgMinSegment
            ? "; with fewer rows than threads, each row is split into "
              "segments scanned in parallel and combined in order"
            : "");
    return;
  }
  using namespace kiln::runtime;
  bool f32 = inputType.getElementType().isF32();
  std::string plan =
      (f32 && useSortedCollector(k, n)
           ? "keeps the best k sorted"
           : "keeps a buffer of 2k+16 candidates compacted by a "
             "branch-free quickselect") +
      std::string(
          "; one pass per row behind a vectorized threshold test, rows in "
          "parallel");
  if (n >= kSelectionSplitLength)
    plan += "; with fewer rows than threads, rows are split into segments "
            "whose candidates merge";
  Type element = inputType.getElementType();
  bool packable = f32 || element.isF64() || element.isInteger(64);
  // Radix and sampled selection (selectionRowParts).
  std::string splitRows =
      std::string("; rows in parallel") +
      (n >= kSelectionSplitLength
           ? "; with fewer contiguous rows than threads, each row's passes "
             "are split across the threads"
           : "");
  int64_t innerPositions = 1;
  for (int64_t d = dim + 1; d < rank; ++d)
    innerPositions *= inputType.getDimSize(d);
  if (packable && useVerticalSelection(n, k, innerPositions, !f32))
    plan = std::string("vertical selection: 16 rows at a time (") +
           (innerPositions > 1 ? "side by side in memory"
                               : "copied side by side") +
           (f32 ? "), each element's (key, index) word inserted into the k "
                  "best words of the 16 rows, kept sorted in k vectors, by a "
                  "maximum and a minimum per vector"
                : "), each element's key and index inserted into the k best "
                  "of the 16 rows, kept sorted in k vectors of keys and k of "
                  "indices, by comparisons and blends") +
           "; blocks of rows in parallel";
  else if (packable && useBoundSelection(n, k, f32))
    plan = std::string("bound selection: one pass keeps the best of ") +
           (k <= 16 ? "32" : "64") +
           " interleaved lanes, whose k-th best bounds the answer from "
           "below; a second "
           "pass (the row in cache) collects the elements not worse than "
           "it, which are ranked; rows in parallel";
  else if (packable && useDirectSelection(n, k))
    plan = std::string("direct selection: every element packed as a (key, "
                       "index) word, the best k moved to the front by a "
                       "branch-free quickselect, then ") +
           (isa<TopkOp>(op) ? "sorted" : "the least of them taken") +
           "; rows in parallel";
  else if (!f32 && packable && useSampledSelection(n, k))
    plan =
        "sampled selection (keys sampled from the row bound the k-th "
        "best; one pass stores the keys between the bounds as (key, "
        "index) words and counts the ties at them" +
        std::string(isa<TopkOp>(op) ? ", then the k winners are sorted" : "") +
        ")" + splitRows;
  else if (f32 && radixSelectionFits(n, k))
    plan =
        "radix selection (a histogram of 32-bit keys finds the bucket of "
        "the k-th" +
        std::string(isa<TopkOp>(op) ? ", then the k winners are sorted" : "") +
        ")" + splitRows;
  remarkKernelNear(op, loc, "{0}, k = {1}: {2}", what, k, plan);
}

} // namespace

SmallVector<Value> emitRuntimeCall(OpBuilder &b, Operation *anchor,
                                   Location loc, StringRef name, Value input,
                                   ArrayRef<Type> resultTypes, int64_t k,
                                   int64_t dim, bool flag0, bool flag1) {
  RankedTensorType inputType = tensorType(input);
  auto valuesType = cast<RankedTensorType>(resultTypes[0]);
  auto indicesType = cast<RankedTensorType>(resultTypes[1]);
  Type elementType = inputType.getElementType();
  MLIRContext *ctx = b.getContext();
  auto unrankedIn = UnrankedMemRefType::get(elementType, 0);
  auto unrankedIdx = UnrankedMemRefType::get(b.getI64Type(), 0);
  Type i64 = b.getI64Type(), i1 = b.getI1Type();
  std::string fnName =
      ("kiln_rt_" + name + "_" + typeSuffix(elementType)).str();
  func::FuncOp fn = getOrDeclareRuntimeFunc(
      anchor, fnName,
      FunctionType::get(
          ctx, {unrankedIn, unrankedIn, unrankedIdx, i64, i64, i1, i1}, {}),
      b);
  remarkRuntimeKernel(anchor, loc, fnName, inputType, k, dim,
                      /*flatten=*/name == "argreduce" && flag1);
  Value in = asUnrankedBuffer(b, loc, input);
  auto [values, valuesArg] = allocOutput(b, loc, valuesType);
  auto [indices, indicesArg] = allocOutput(b, loc, indicesType);
  func::CallOp::create(
      b, loc, fn,
      ValueRange{in, valuesArg, indicesArg, i64Constant(b, loc, k),
                 i64Constant(b, loc, dim),
                 arith::ConstantIntOp::create(b, loc, flag0, 1),
                 arith::ConstantIntOp::create(b, loc, flag1, 1)});
  return {asTensor(b, loc, values, valuesType),
          asTensor(b, loc, indices, indicesType)};
}

namespace {

/// Replaces `op` with the runtime call; its results are the last
/// `op->getNumResults()` of (values, indices).
LogicalResult lowerRuntimeCall(Operation *op, StringRef name, Value input,
                               ArrayRef<Type> resultTypes, int64_t k,
                               int64_t dim, bool flag0, bool flag1,
                               PatternRewriter &rewriter) {
  SmallVector<Value> results =
      emitRuntimeCall(rewriter, op, op->getLoc(), name, input, resultTypes, k,
                      dim, flag0, flag1);
  rewriter.replaceOp(op, ArrayRef(results).take_back(op->getNumResults()));
  return success();
}

} // namespace

std::optional<RuntimeKernel> getRuntimeKernel(Operation *op) {
  RankedTensorType type = tensorType(op->getOperand(0));
  auto norm = [&](int64_t dim) { return *normalizeDim(dim, type.getRank()); };
  return llvm::TypeSwitch<Operation *, std::optional<RuntimeKernel>>(op)
      .Case([&](TopkOp topk) {
        return RuntimeKernel{"topk",
                             SmallVector<Type>(topk->getResultTypes()),
                             static_cast<int64_t>(topk.getK()),
                             norm(topk.getDim()),
                             topk.getLargest(),
                             topk.getSorted(),
                             false,
                             true};
      })
      .Case([&](KthvalueOp kth) {
        return RuntimeKernel{"kthvalue",
                             SmallVector<Type>(kth->getResultTypes()),
                             static_cast<int64_t>(kth.getK()),
                             norm(kth.getDim()),
                             false,
                             false,
                             false,
                             kth.getKeepdim()};
      })
      .Case<MaxOp, MinOp>([&](auto max) {
        return RuntimeKernel{"argreduce",
                             SmallVector<Type>(max->getResultTypes()),
                             0,
                             norm(max.getDim()),
                             isa<MaxOp>(op),
                             false,
                             false,
                             max.getKeepdim()};
      })
      .Case<ArgmaxOp, ArgminOp>([&](auto arg) -> std::optional<RuntimeKernel> {
        std::optional<uint64_t> dim = arg.getDim();
        auto valuesType = RankedTensorType::get(arg.getType().getShape(),
                                                type.getElementType());
        return RuntimeKernel{"argreduce",
                             {valuesType, arg.getType()},
                             0,
                             dim ? norm(static_cast<int64_t>(*dim)) : 0,
                             isa<ArgmaxOp>(op),
                             !dim.has_value(),
                             !dim.has_value(),
                             arg.getKeepdim()};
      })
      .Default([](Operation *) { return std::nullopt; });
}

namespace {

struct LowerTopk : OpRewritePattern<TopkOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(TopkOp op,
                                PatternRewriter &rewriter) const override {
    RankedTensorType type = tensorType(op.getInput());
    return lowerRuntimeCall(
        op, "topk", op.getInput(),
        {op.getValues().getType(), op.getIndices().getType()}, op.getK(),
        *normalizeDim(op.getDim(), type.getRank()), op.getLargest(),
        op.getSorted(), rewriter);
  }
};

struct LowerKthvalue : OpRewritePattern<KthvalueOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(KthvalueOp op,
                                PatternRewriter &rewriter) const override {
    RankedTensorType type = tensorType(op.getInput());
    // The runtime writes keepdim-shaped results; reshape afterwards.
    return lowerRuntimeCall(
        op, "kthvalue", op.getInput(),
        {op.getValues().getType(), op.getIndices().getType()}, op.getK(),
        *normalizeDim(op.getDim(), type.getRank()),
        /*unused=*/false, /*unused=*/false, rewriter);
  }
};
/// max/min with dim and argmax/argmin call the runtime's vectorized
/// (value, index) scan, `kiln_rt_argreduce_<type>`.
template <typename OpTy> struct LowerMaxMin : OpRewritePattern<OpTy> {
  using OpRewritePattern<OpTy>::OpRewritePattern;
  LogicalResult matchAndRewrite(OpTy op,
                                PatternRewriter &rewriter) const override {
    RankedTensorType type = tensorType(op.getInput());
    return lowerRuntimeCall(
        op, "argreduce", op.getInput(),
        {op.getValues().getType(), op.getIndices().getType()}, /*k=*/0,
        *normalizeDim(op.getDim(), type.getRank()), std::is_same_v<OpTy, MaxOp>,
        /*flatten=*/false, rewriter);
  }
};

template <typename OpTy> struct LowerArg : OpRewritePattern<OpTy> {
  using OpRewritePattern<OpTy>::OpRewritePattern;
  LogicalResult matchAndRewrite(OpTy op,
                                PatternRewriter &rewriter) const override {
    RankedTensorType type = tensorType(op.getInput());
    std::optional<uint64_t> dim = op.getDim();
    // The values the scan also produces are not used.
    auto valuesType =
        RankedTensorType::get(op.getType().getShape(), type.getElementType());
    return lowerRuntimeCall(
        op, "argreduce", op.getInput(), {valuesType, op.getType()},
        /*k=*/0,
        dim ? *normalizeDim(static_cast<int64_t>(*dim), type.getRank()) : 0,
        std::is_same_v<OpTy, ArgmaxOp>, /*flatten=*/!dim.has_value(), rewriter);
  }
};

/// kiln.equal where kiln-decompose kept it (the CPU, neither operand
/// computed by an op the fusion pass would read in place): a call of the
/// runtime's `kiln_rt_equal_<type>` (Equal.cpp), which compares both
/// operands across the threads and stops at the first difference, where
/// the fused sum of `a != b` reads both whole. The GPU
/// has no such kernel: kiln-decompose{target=cuda} writes every equal as
/// that sum, and one left to the GPU's lowering is an error.
struct LowerEqual : OpRewritePattern<EqualOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(EqualOp op,
                                PatternRewriter &rewriter) const override {
    rewriter.setInsertionPoint(op);
    if (isGpuTarget(rewriter))
      return op.emitOpError(
          "has no GPU kernel of its own: run kiln-decompose{target=cuda} "
          "first (kiln-gpu-pipeline does)");
    Location loc = op.getLoc();
    RankedTensorType lhsType = tensorType(op.getLhs());
    if (lhsType.getShape() != tensorType(op.getRhs()).getShape())
      return rewriter.notifyMatchFailure(op, "different shapes: folded");
    Type element = lhsType.getElementType();
    std::string fnName = ("kiln_rt_equal_" + typeSuffix(element)).str();
    auto unranked = UnrankedMemRefType::get(element, 0);
    func::FuncOp fn = getOrDeclareRuntimeFunc(
        op, fnName,
        FunctionType::get(rewriter.getContext(), {unranked, unranked},
                          {rewriter.getI1Type()}),
        rewriter);
    remarkKernelNear(op, loc,
                     "kiln.equal of {0}: {1}, both operands compared in "
                     "2 MB spans the threads take in turn from the front, "
                     "all stopping at the first difference",
                     typeText(lhsType), fnName);
    auto call = func::CallOp::create(
        rewriter, loc, fn,
        ValueRange{asUnrankedBuffer(rewriter, loc, op.getLhs()),
                   asUnrankedBuffer(rewriter, loc, op.getRhs())});
    rewriter.replaceOpWithNewOp<tensor::FromElementsOp>(op, op.getType(),
                                                        call.getResult(0));
    return success();
  }
};

} // namespace

void populateRuntimeKernelPatterns(RewritePatternSet &patterns) {
  patterns.add<LowerMaxMin<MaxOp>, LowerMaxMin<MinOp>, LowerArg<ArgmaxOp>,
               LowerArg<ArgminOp>, LowerTopk, LowerKthvalue, LowerEqual>(
      patterns.getContext());
}

} // namespace kiln::lowering
