//===- Lowering.h - Shared pieces of the kiln lowering ----------*- C++ -*-===//
//
// What the files of convert-kiln-to-linalg share: the kernel builders
// (the lane order of reductions, rows in cache, column blocks), the
// kernels' I/O (KernelIO: a stored input or a fused chain), the runtime
// calls and the patterns each file adds. Private to this directory.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_LIB_CONVERSION_KILNTOLINALG_LOWERING_H
#define KILN_LIB_CONVERSION_KILNTOLINALG_LOWERING_H

#include "../ErrorSites.h"
#include "kiln/Conversion/Passes.h"
#include "kiln/Conversion/ReductionPlan.h"
#include "kiln/Dialect/Kiln/IR/KilnIndexMath.h"
#include "kiln/Dialect/Kiln/IR/KilnOps.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/IR/Remarks.h"

#include <functional>
#include <optional>
#include <string>

namespace kiln::lowering {

using namespace mlir;
using kiln::conversion::ErrorSites;

//===----------------------------------------------------------------------===//
// Shared helpers (Common.cpp) and the kernels' common types
//===----------------------------------------------------------------------===//

/// "[1, 2]": dims for remark texts.
std::string dimList(ArrayRef<int64_t> dims);

/// A type as text, for remark texts.
std::string typeText(Type type);

/// The ranked tensor type of `value`.
RankedTensorType tensorType(Value value);

/// An i64 constant.
Value i64Constant(OpBuilder &b, Location loc, int64_t value);

/// A fresh tensor of `type` (a ranked tensor type), for an op to write.
Value emptyTensor(OpBuilder &b, Location loc, Type type);

/// One fresh tensor per type of `types` (a kernel's outputs).
SmallVector<Value> emptyTensors(OpBuilder &b, Location loc, TypeRange types);

/// A tensor of `type` filled with `value` (linalg.fill of a tensor.empty).
Value filledTensor(OpBuilder &b, Location loc, RankedTensorType type,
                   TypedAttr value);

/// Identity of a max (lowest value) / min (highest value) reduction.
TypedAttr extremeAttr(Builder &b, Type type, bool lowest);

/// `value` reshaped to `type` (same elements), or `value` itself.
Value reshapeTo(OpBuilder &b, Location loc, Value value, RankedTensorType type);

/// The indexing map reading an operand of `operandType` broadcast to a loop
/// nest over `resultType` (dims align at the end; size-1 dims read index 0).
AffineMap broadcastMap(RankedTensorType operandType,
                       RankedTensorType resultType, MLIRContext *ctx);

/// Whether the module being lowered targets the GPU (convert-kiln-to-linalg
/// {target=cuda} sets kTargetAttrName): reductions then split their lanes
/// across threads (buildGpuLaneReduction).
bool isGpuTarget(OpBuilder &b);

/// The CPU's widest vector register in bits for the module being lowered
/// (convert-kiln-to-linalg{vector-bits}: 512, 256 or 128).
int64_t cpuVectorBits(OpBuilder &b);

/// The private declaration of runtime function `name` in `anchor`'s
/// module, created on first use. Functions taking memrefs are called
/// through their C interface (`_mlir_ciface_<name>`); `cInterface = false`
/// calls `name` itself (scalar arguments and results).
func::FuncOp getOrDeclareRuntimeFunc(Operation *anchor, StringRef name,
                                     FunctionType type, OpBuilder &rewriter,
                                     bool cInterface = true);

/// The buffer of `tensor` (identity layout), read-only: for prefetches and
/// runtime calls that read it.
Value readOnlyBuffer(OpBuilder &b, Location loc, Value tensor);

/// The buffer of `tensor` with a strided layout (offset and strides known
/// at run time), read-only: a view of a stored tensor without a copy to
/// make it contiguous.
Value readOnlyStridedBuffer(OpBuilder &b, Location loc, Value tensor);

/// Row-major linearization of `indices` over `shape` (index type).
Value linearize(OpBuilder &b, Location loc, ValueRange indices,
                ArrayRef<int64_t> shape);

/// The indices of the enclosing linalg op's loops (linalg.index 0 .. rank-1).
SmallVector<Value> loopIndices(OpBuilder &b, Location loc, int64_t rank);

/// `rank` parallel iterators, for a linalg.generic.
SmallVector<utils::IteratorType> parallelIterators(int64_t rank);

/// Whether `type` has a dim of size 1 (and another dim: a tensor<1xT> is
/// left alone).
bool hasUnitDims(RankedTensorType type);

/// The reassociation that expands `from` (no unit dims) into `to`, a shape
/// with the same elements whose consecutive dims multiply to each of
/// `from`'s (unit dims join a neighbouring group; an empty dim's group ends
/// at an empty dim).
SmallVector<ReassociationIndices> expansionGroups(ArrayRef<int64_t> from,
                                                  ArrayRef<int64_t> to);

/// `value` (a tensor of `type`'s shape without its unit dims) as a tensor
/// of `type`: a view, which bufferization keeps in place.
Value expandUnitDims(OpBuilder &b, Location loc, Value value,
                     RankedTensorType type);

/// `value` without its unit dims (a view).
Value collapseUnitDims(OpBuilder &b, Location loc, Value value);

/// `value` (a tensor of rank 1 or more) as one dim: its elements in
/// row-major order (a view).
Value flatten(OpBuilder &b, Location loc, Value value);

/// The 1-D tensor `value` seen as `type` (the inverse of flatten).
Value unflatten(OpBuilder &b, Location loc, Value value, RankedTensorType type);

/// Fills the 1-D memref `buffer` of `size` elements: `value(p)` at each
/// position p below `length`, in order (a loop LLVM vectorizes), then
/// `pad` up to its end.
void fillBuffer(OpBuilder &b, Location loc, Value buffer, Value length,
                int64_t size, Value pad,
                function_ref<Value(OpBuilder &, Location, Value p)> value);

/// The positions, along each of `sizes` (row-major), of position `linear`
/// of their product. Each remainder is computed as linear - quotient *
/// size, not as a `remui`: a row-major address then sums quotient * size
/// and linear - quotient * size, which LLVM cancels back into the linear
/// position, so consecutive positions are seen to be consecutive in memory
/// and their loads vectorize (with `remui` they stayed 32 scalar loads).
SmallVector<Value> delinearizeIndex(OpBuilder &b, Location loc, Value linear,
                                    ArrayRef<int64_t> sizes);

/// Rewrites a `tensor.extract` of a stored tensor (defined outside every loop)
/// at indices that delinearizeIndex split from one position, over consecutive
/// dims, reads the tensor with those dims collapsed (a view) at that
/// position instead. LLVM folds quotient * size + (linear - quotient *
/// size) into `freeze(linear)`, whose address its loop vectorizer does not
/// see to be consecutive: a column reduction over a merged kept run (the
/// sum over dim 1 of [N, C, H, W] walks blocks of H x W) loaded each
/// vector as 16 scalar loads (2.09 -> 0.9 ms at 32x64x56x56 f32, 1 thread).
LogicalResult readDelinearizedAsCollapsed(tensor::ExtractOp op,
                                          RewriterBase &rewriter);

/// An scf.forall with one iteration per point of `grid` (linearized)
/// updating `shared`; moves `b` to the start of its body and returns the
/// point's coordinates in `coords`.
scf::ForallOp createGridForall(OpBuilder &b, Location loc,
                               ArrayRef<int64_t> grid, ValueRange shared,
                               SmallVector<Value> &coords);

/// In the body of `forall`, whose shared outputs are 1-D: positions
/// [offset, offset + length) of each, written by a generic whose element p
/// (of the slice) is `element(p)`'s value for that output, and put in place
/// by the forall's terminator.
void writeForallSlices(
    OpBuilder &b, Location loc, scf::ForallOp forall, Value offset,
    Value length,
    function_ref<SmallVector<Value>(OpBuilder &, Location, Value p)> element);

/// Views a tensor as an unranked memref for a runtime call.
Value asUnrankedBuffer(OpBuilder &b, Location loc, Value tensor);

/// Allocates an output buffer for a runtime call; returns {buffer, unranked}.
std::pair<Value, Value> allocOutput(OpBuilder &b, Location loc,
                                    RankedTensorType type);

/// A runtime call's output buffer as a tensor of `type` (restrict, writable).
Value asTensor(OpBuilder &b, Location loc, Value buffer, RankedTensorType type);

/// A generic over `resultType` whose body computes the element from the loop
/// indices (no inputs).
Value buildIndexedGeneric(
    OpBuilder &b, Location loc, RankedTensorType resultType,
    function_ref<Value(OpBuilder &, Location, ValueRange)> body);

/// Reports how the kernel built at `loc` runs: an optimization remark
/// (analysis `Kernel`, category `kiln-lower`; kiln-opt --remarks-filter,
/// kiln-run --remarks). `fmt` is an llvm::formatv format; nothing is
/// formatted unless remarks are enabled.
/// `near` is an op of the function (for its name), or null.
template <typename... Ts>
void remarkKernelNear(Operation *near, Location loc, const char *fmt,
                      Ts &&...ts) {
  if (!loc->getContext()->getRemarkEngine())
    return;
  func::FuncOp function;
  if (near)
    function = isa<func::FuncOp>(near) ? cast<func::FuncOp>(near)
                                       : near->getParentOfType<func::FuncOp>();
  remark::analysis(
      loc, remark::RemarkOpts::name("Kernel")
               .category("kiln-lower")
               .function(function ? function.getSymName() : StringRef()))
      << remark::add(fmt, std::forward<Ts>(ts)...);
}

/// remarkKernelNear for the function `b` builds in.
template <typename... Ts>
void remarkKernel(OpBuilder &b, Location loc, const char *fmt, Ts &&...ts) {
  Block *block = b.getInsertionBlock();
  remarkKernelNear(block ? block->getParentOp() : nullptr, loc, fmt,
                   std::forward<Ts>(ts)...);
}

/// Float maximum and minimum reductions on the CPU run on integer keys,
/// one integer max per element: the float's bits (sign flipped for a
/// minimum, which is then -max(-x)) with the other bits of negative values
/// flipped, so that signed integer order is the float order with -0 < +0;
/// then less the mantissa's all-ones, so that NaNs of either sign wrap
/// around to above +inf's key. The reduction is then IEEE maximum /
/// minimum exactly (NaN propagates, +0 beats -0) in any order: the loops
/// vectorize and split freely, and the bits never depend on the order.
/// LLVM's x86 lowering of a vector arith.maximumf is six instructions on
/// the accumulator's dependency chain (signed zeros, then NaN): amax over
/// dim 1 of 1024x1024 floats took 119 us, PyTorch 48. The GPU keeps
/// arith.maximumf (one max.NaN instruction).
struct ExtremeKeys {
  static bool applies(OpBuilder &b, Type elementType) {
    return isa<FloatType>(elementType) && !isGpuTarget(b);
  }
  /// The keys' type: an integer of the float's width (a vector of them
  /// for a vector of floats: the keys work on either).
  static Type keyType(Type floatType) {
    auto key = IntegerType::get(floatType.getContext(), width(floatType));
    if (auto vector = dyn_cast<VectorType>(floatType))
      return vector.clone(key);
    return key;
  }
  static unsigned width(Type type) {
    return getElementTypeOrSelf(type).getIntOrFloatBitWidth();
  }
  /// The key of -inf (of +inf for a minimum): the identity.
  static TypedAttr identity(Builder &b, Type floatType) {
    return b.getIntegerAttr(
        keyType(floatType),
        APInt::getSignedMinValue(floatType.getIntOrFloatBitWidth()));
  }
  /// `value` of the integer (or integer vector: splat) `type`.
  static Value constant(OpBuilder &b, Location loc, Type type,
                        const APInt &value) {
    TypedAttr element = b.getIntegerAttr(getElementTypeOrSelf(type), value);
    if (auto vector = dyn_cast<VectorType>(type))
      return arith::ConstantOp::create(b, loc,
                                       DenseElementsAttr::get(vector, element));
    return arith::ConstantOp::create(b, loc, element);
  }
  /// x ^ ((x >>s (width - 1)) & signed max): flips the bits below the
  /// sign of negative values (its own inverse; an AVX-512 shift and one
  /// ternary logic op).
  static Value flipNegatives(OpBuilder &b, Location loc, Value x) {
    Type type = x.getType();
    unsigned bits = width(type);
    Value sign = arith::ShRSIOp::create(
        b, loc, x, constant(b, loc, type, APInt(bits, bits - 1)));
    Value mask = arith::AndIOp::create(
        b, loc, sign, constant(b, loc, type, APInt::getSignedMaxValue(bits)));
    return arith::XOrIOp::create(b, loc, x, mask);
  }
  /// `bits` with the sign flipped for a minimum (-max(-x)).
  static Value orientSign(OpBuilder &b, Location loc, Value bits, bool isMax) {
    if (isMax)
      return bits;
    Type type = bits.getType();
    return arith::XOrIOp::create(
        b, loc, bits, constant(b, loc, type, APInt::getSignMask(width(type))));
  }
  /// The mantissa's all-ones: the keys' offset.
  static APInt offset(Type floatType) {
    const llvm::fltSemantics &semantics =
        cast<FloatType>(getElementTypeOrSelf(floatType)).getFloatSemantics();
    return APInt::getLowBitsSet(width(floatType),
                                APFloat::semanticsPrecision(semantics) - 1);
  }
  static Value encode(OpBuilder &b, Location loc, Value x, bool isMax) {
    Type floatType = x.getType();
    Type type = keyType(floatType);
    Value bits =
        orientSign(b, loc, arith::BitcastOp::create(b, loc, type, x), isMax);
    return arith::SubIOp::create(b, loc, flipNegatives(b, loc, bits),
                                 constant(b, loc, type, offset(floatType)));
  }
  static Value decode(OpBuilder &b, Location loc, Value key, Type floatType,
                      bool isMax) {
    Value bits = flipNegatives(
        b, loc,
        arith::AddIOp::create(
            b, loc, key, constant(b, loc, key.getType(), offset(floatType))));
    return arith::BitcastOp::create(b, loc, floatType,
                                    orientSign(b, loc, bits, isMax));
  }
  static Value merge(OpBuilder &b, Location loc, Value acc, Value key) {
    return arith::MaxSIOp::create(b, loc, acc, key);
  }
};

/// Reads the elements of a (possibly virtual) tensor at `indices`: a load
/// from a stored tensor, or a fused producer chain evaluated there.
using ElementReader =
    function_ref<SmallVector<Value>(OpBuilder &, Location, ValueRange indices)>;

/// `read` of a piece of a line along `dim` starting at position `start` of
/// it: position j of the piece is position start + j of the line (a split
/// row's segment or rest). The returned reader refers to `read`'s callable.
inline auto readFrom(ElementReader read, int64_t dim, Value start) {
  return [read, dim, start](OpBuilder &b, Location loc, ValueRange at) {
    SmallVector<Value> position(at.begin(), at.end());
    position[dim] = arith::AddIOp::create(b, loc, start, position[dim]);
    return read(b, loc, position);
  };
}

/// Prefetches what a kernel will read at `indices`: its stored input's
/// element, or the stored elements a fused producer chain reads there (an
/// indexed read's selected element). Empty: nothing to prefetch.
struct ElementPrefetch {
  std::function<void(OpBuilder &, Location, ValueRange indices)> at;
  /// Whether positions next to each other may lie far apart in memory (an
  /// indexed read selects them), whatever the input's shape.
  bool scattered = false;

  explicit operator bool() const { return static_cast<bool>(at); }
  void operator()(OpBuilder &b, Location loc, ValueRange indices) const {
    at(b, loc, indices);
  }

  /// Prefetches (for reading) the element at the indices of each of
  /// `buffers`, memrefs of one shape; nothing when there are none.
  static ElementPrefetch ofBuffers(SmallVector<Value> buffers) {
    if (buffers.empty())
      return {};
    return {[buffers](OpBuilder &b, Location loc, ValueRange indices) {
      for (Value buffer : buffers)
        memref::PrefetchOp::create(b, loc, buffer, indices, /*isWrite=*/false,
                                   /*localityHint=*/3, /*isDataCache=*/true);
    }};
  }
};

/// Maps the accumulators of a reduction at one kept position (`kept`: the
/// indices of the kept dims) to the kernel's result elements: a fused
/// epilogue.
using ReductionFinalizer = function_ref<SmallVector<Value>(
    OpBuilder &, Location, ValueRange accumulators, ValueRange kept)>;

/// A float sum or product, computed in an order fixed by the IR (see
/// buildReduction): `term` is what one input element contributes (x, or
/// exp(x - max) in softmax), `merge` adds it to a partial result; both work
/// on scalars and on vectors.
struct LaneReduction {
  std::function<Value(OpBuilder &, Location, ValueRange elements,
                      ValueRange indices)>
      term;
  std::function<Value(OpBuilder &, Location, Value acc, Value term)> merge;
  /// Optional: called at the start of each main-loop step with its first
  /// position in the line (the step covers kReductionLanes positions).
  std::function<void(OpBuilder &, Location, Value first)> prefetch = nullptr;
  /// The result does not depend on the order of the merges (maxima and
  /// minima of keys): a line shorter than the lanes spreads over them too.
  bool orderFree = false;
};

/// Partial results per reduction in the lane scheme.
constexpr int64_t kReductionLanes = 32;

/// A lane's share of a long line is summed in blocks of at most this many
/// main-loop steps (32 x 1024 = 32768 elements of the line): each block's
/// lanes start from the identity, then merge into the running lanes
/// (laneBlocks). A lane of a line of n elements otherwise adds n / 32 terms
/// one after another into one accumulator, whose rounding error grows with
/// it: the f32 sum of |x|^3 over 33948801 normal values (a line no power
/// of two divides, so not split) came out 9.3e-4 below the exact value,
/// 1.6e-7 in blocks (PyTorch's cascade sum: 2e-8; its norm with p = 3
/// there, 2.4e-2). Lines of at most 32 x 1024 + 31 elements take one block:
/// the same operations as without blocks.
constexpr int64_t kLaneBlockSteps = 1024;

/// The blocks of a lane reduction's main loop of `steps` steps: {whole
/// blocks of kLaneBlockSteps steps, steps in the last, shorter block};
/// {0, 0} when the steps fit one block (no blocks: the lanes take the
/// steps directly).
inline std::pair<int64_t, int64_t> laneBlocks(int64_t steps) {
  if (steps <= kLaneBlockSteps)
    return {0, 0};
  return {steps / kLaneBlockSteps, steps % kLaneBlockSteps};
}

/// The body of a reduction: (elements, accumulators, input indices) ->
/// the new accumulators.
using ReductionBody = function_ref<SmallVector<Value>(
    OpBuilder &, Location, ValueRange, ValueRange, ValueRange)>;

/// How many rows ahead a column reduction prefetches its input when the
/// rows are stored in order (sum over dim 0 of 65536x256 f32 at 1 thread:
/// 1.86 ms 4 rows ahead, 1.94 8 ahead, 2.15 16 ahead).
constexpr int64_t kColumnPrefetchRows = 4;

/// The least distance (bytes) between consecutive reduced rows at which a
/// column reduction (or a softmax's packed tiles) prefetches its input
/// (unless an indexed read scatters the rows): closer rows stream in with
/// the hardware's prefetch, and the prefetches only cost (sum over dim 0 of
/// 100000x40 f32 x*y at 1 thread: 0.48 -> 0.65 ms prefetched); farther ones
/// gain (f32 at 1 thread, stored, split reductions, which did not prefetch
/// before: 65536x256, rows 1 KB apart, 2.16 -> 1.81 ms; 16384x1000 2.92 ->
/// 2.28).
constexpr int64_t kColumnPrefetchMinStride = 1024;

/// How a kernel reads its input and produces its results. By default it
/// loads the op's stored input and returns the op's result; as the anchor of
/// a kiln.fused group it evaluates the fused producer chain where it reads
/// (`read`) and applies the fused consumers to each result element
/// (`finish`), producing the group's results (`resultTypes`).
struct KernelIO {
  std::function<Value(OpBuilder &, Location, ValueRange indices)> read;
  std::function<SmallVector<Value>(OpBuilder &, Location, Value element,
                                   ValueRange resultIndices)>
      finish;
  SmallVector<Type> resultTypes;
  /// The stored input of a plain kernel (null when `read` evaluates a fused
  /// producer chain).
  Value stored;
  /// The stored tensors `read` reads (the input, or the fused group's
  /// operands): what a rows-in-cache kernel prefetches the next row of.
  SmallVector<Value> sources;
  /// Prefetches what `read` reads at some indices, for a fused producer
  /// chain (a stored input's buffer is made by `elementPrefetch`).
  ElementPrefetch prefetch;

  /// What a kernel reading this input prefetches: the stored input's
  /// element (its buffer made at `b`'s place, before the kernel), or the
  /// fused chain's `prefetch`.
  ElementPrefetch elementPrefetch(OpBuilder &b, Location loc) const {
    if (!stored)
      return prefetch;
    return ElementPrefetch::ofBuffers({readOnlyBuffer(b, loc, stored)});
  }

  /// The plain kernel of `op`: loads `input`, returns the op's results.
  static KernelIO plain(Operation *op, Value input) {
    KernelIO io;
    io.stored = input;
    io.sources = {input};
    io.read = [input](OpBuilder &b, Location l, ValueRange indices) {
      return Value(tensor::ExtractOp::create(b, l, input, indices));
    };
    io.resultTypes.assign(op->getResultTypes().begin(),
                          op->getResultTypes().end());
    return io;
  }
  SmallVector<Value> finishElement(OpBuilder &b, Location l, Value element,
                                   ValueRange resultIndices) const {
    if (!finish)
      return {element};
    return finish(b, l, element, resultIndices);
  }
  SmallVector<Type> resultElementTypes() const {
    SmallVector<Type> types;
    for (Type type : resultTypes)
      types.push_back(cast<RankedTensorType>(type).getElementType());
    return types;
  }
};

/// The rows of an scf.forall over rows (the rows-in-cache kernels): each
/// result's row at `coords` (`n` elements) as a slice of the forall's
/// shared output, written in place -- a fresh row tensor would be a buffer
/// per row, copied.
struct ResultRows {
  SmallVector<OpFoldResult> offsets, sizes, strides;
  SmallVector<Value> inits; // the slices, to write the rows into
  SmallVector<Type> types;  // tensor<n x element> (or the row's dims)

  ResultRows(OpBuilder &b, Location loc, scf::ForallOp forall,
             ArrayRef<Value> coords, TypeRange resultTypes, int64_t n)
      : ResultRows(b, loc, forall.getRegionIterArgs(), coords, resultTypes,
                   ArrayRef<int64_t>{n}) {}

  /// The rows of `shared` (some of a forall's shared outputs, of
  /// `resultTypes`), each of `row`'s shape (the outputs' last dims).
  ResultRows(OpBuilder &b, Location loc, ValueRange shared,
             ArrayRef<Value> coords, TypeRange resultTypes,
             ArrayRef<int64_t> row) {
    offsets.assign(coords.begin(), coords.end());
    offsets.append(row.size(), b.getIndexAttr(0));
    sizes.assign(coords.size(), b.getIndexAttr(1));
    for (int64_t size : row)
      sizes.push_back(b.getIndexAttr(size));
    strides.assign(coords.size() + row.size(), b.getIndexAttr(1));
    for (auto [t, output] : llvm::zip_equal(resultTypes, shared)) {
      auto rowType = RankedTensorType::get(
          row, cast<RankedTensorType>(t).getElementType());
      types.push_back(rowType);
      inits.push_back(tensor::ExtractSliceOp::create(b, loc, rowType, output,
                                                     offsets, sizes, strides));
    }
  }

  /// Puts `rows` back into the shared outputs (the forall's terminator) and
  /// returns the forall's results.
  SmallVector<Value> finish(OpBuilder &b, Location loc, scf::ForallOp forall,
                            ValueRange rows) const {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(forall.getTerminator().getBody());
    for (auto [row, shared] : llvm::zip_equal(rows, forall.getRegionIterArgs()))
      tensor::ParallelInsertSliceOp::create(b, loc, row, shared, offsets, sizes,
                                            strides);
    return SmallVector<Value>(forall.getResults());
  }
};

/// Elements per chunk of a softmax's exp pass that prefetches the next row
/// with 512-bit registers, and the shortest row taken in chunks (shorter
/// rows are not chunked, and prefetch no next row, at every width).
constexpr int64_t kExpChunk = 64;

/// Elements per chunk of a softmax's exp pass (keepExpsInRow) for the
/// module's register width (cpuVectorBits): kExpChunk with 512-bit
/// registers, one step of the 32 lanes (kReductionLanes) with 256 or 128.
/// A chunk's exps are computed together, then added to the lanes; 64 f32
/// are 8 AVX2 registers, which with the lane sums (4) and exp's constants
/// outnumber AVX2's 16, and the chunk loop spilled. The same lanes get the
/// same exps in the same order at every chunk size, so the same bits.
/// softmax over 4096x4096 f32 on a Zen 3 (AVX2), chunks of 64 -> 32
/// (medians of 9 alternating runs): 1 thread 12.2 -> 10.5 ms, 2 threads
/// 7.0 -> 6.6; rows in cache, 1 thread, 9.8-10.1 -> 8.5 ms per 16M
/// elements; f64 unchanged (40.9 against 41.4 ms, medians of 7).
int64_t expChunk(OpBuilder &b);

/// Inputs a rows-in-cache kernel prefetches the next row of, at most.
constexpr int64_t kMaxPrefetchedInputs = 2;

/// The next row of a rows-in-cache kernel's stored inputs, prefetched in
/// one of its passes over a row: chunk by chunk of softmax's exp pass
/// (keepExpsInRow), or step by step of a lane loop (lanePrefetch: the sum
/// of exps of log_softmax, a row group's last float sum). The passes over
/// a row in cache compute, and the first of them then waited on memory
/// for the row; the hardware's stream prefetch stops at the page the row
/// ends in.
/// Prefetching the lines of the chunk's position in the next row while it
/// computes overlaps the two: softmax over 4096x4096 f32, 1 thread 6.0-6.6
/// -> 4.4-4.9 ms, 2 threads 3.1-4.5 -> 2.3-3.3 (medians of alternating
/// runs; its output prefetched for writing as well measured slower).
struct NextRowPrefetch {
  SmallVector<int64_t> grid;
  SmallVector<Value> buffers; // grid x [n] views of the inputs
  SmallVector<int64_t> lineElements;
  SmallVector<Value> next; // the next row (the last row prefetches itself)

  /// For the row at `coords` of `grid`: every tensor of `candidates` of
  /// shape grid x (dims of n elements in all) (at most
  /// kMaxPrefetchedInputs), when there are rows after this one and a row
  /// holds a chunk.
  NextRowPrefetch(OpBuilder &b, Location loc, ArrayRef<Value> coords,
                  ArrayRef<int64_t> grid, int64_t n, ValueRange candidates)
      : NextRowPrefetch(b, loc, grid, n, candidates) {
    setRow(b, loc, coords);
  }

  /// The buffers alone (built outside a linalg.generic whose body then
  /// calls setRow with its indices). A candidate may be a strided view (a
  /// segment kernel's rows without the rest after their segments): its
  /// buffer keeps the view's layout and the grid's dims, which no view
  /// could merge into one, where a buffer of identity layout had been a
  /// copy of the input (softmax of 2x4000037 f32: 8.5 -> 3.6 ms at 1
  /// thread, 3.0 -> 1.6 at 2).
  NextRowPrefetch(OpBuilder &b, Location loc, ArrayRef<int64_t> grid, int64_t n,
                  ValueRange candidates)
      : grid(grid) {
    if (ShapedType::getNumElements(grid) < 2 || n < kExpChunk || isGpuTarget(b))
      return;
    int64_t g = grid.size();
    for (Value candidate : candidates) {
      auto type = dyn_cast<RankedTensorType>(candidate.getType());
      if (!type || type.getRank() <= g ||
          type.getShape().take_front(g) != grid ||
          ShapedType::getNumElements(type.getShape().drop_front(g)) != n ||
          buffers.size() == kMaxPrefetchedInputs)
        continue;
      Value rows = candidate;
      if (type.getRank() != g + 1) {
        // A row of several dims: one dim of n (the row is contiguous).
        SmallVector<ReassociationIndices> groups;
        for (int64_t d = 0; d < g; ++d)
          groups.push_back({d});
        groups.emplace_back();
        for (int64_t d = g; d < type.getRank(); ++d)
          groups.back().push_back(d);
        rows = tensor::CollapseShapeOp::create(b, loc, candidate, groups);
      }
      buffers.push_back(readOnlyStridedBuffer(b, loc, rows));
      lineElements.push_back(std::max<int64_t>(
          1, 64 / std::max<int64_t>(1, type.getElementTypeBitWidth() / 8)));
    }
  }

  /// The row after the one at `coords` (the last row prefetches itself).
  void setRow(OpBuilder &b, Location loc, ArrayRef<Value> coords) {
    if (buffers.empty())
      return;
    Value linear = arith::MinUIOp::create(
        b, loc,
        arith::AddIOp::create(b, loc, linearize(b, loc, coords, grid),
                              indexConstant(b, loc, 1)),
        indexConstant(b, loc, ShapedType::getNumElements(grid) - 1));
    next = delinearizeIndex(b, loc, linear, grid);
  }

  explicit operator bool() const { return !buffers.empty(); }

  /// Prefetches positions [c, c + count) of the next row.
  void operator()(OpBuilder &b, Location loc, Value c, int64_t count) const {
    for (auto [buffer, step] : llvm::zip_equal(buffers, lineElements))
      for (int64_t k = 0; k < count; k += step) {
        SmallVector<Value> at(next);
        at.push_back(
            arith::AddIOp::create(b, loc, c, indexConstant(b, loc, k)));
        memref::PrefetchOp::create(b, loc, buffer, at,
                                   /*isWrite=*/false, /*localityHint=*/3,
                                   /*isDataCache=*/true);
      }
  }
};

/// The runtime function returning the run's thread count (CPU).
constexpr llvm::StringLiteral kNumThreadsFn = "kiln_rt_num_threads";

//===----------------------------------------------------------------------===//
// Reductions (Reductions.cpp)
//===----------------------------------------------------------------------===//

/// How sum, prod, amax and amin (`OpTy`) combine elements: one
/// accumulator combined elementwise (float amax and amin on the CPU: on
/// ExtremeKeys). Shared by their kernels, the softmax's row maximum and the
/// row and column groups, which must compute the same bits.
template <typename OpTy> struct ReductionCombiner {
  static constexpr bool kIsMax = std::is_same_v<OpTy, AmaxOp>;
  static constexpr bool kIsExtreme = kIsMax || std::is_same_v<OpTy, AminOp>;

  /// Whether the accumulators are ExtremeKeys.
  static bool usesKeys(OpBuilder &b, Type elementType) {
    return kIsExtreme && ExtremeKeys::applies(b, elementType);
  }

  static TypedAttr identity(OpBuilder &b, Type type, bool keys) {
    if constexpr (std::is_same_v<OpTy, SumOp>)
      return getScalarAttr(b, type, 0.0);
    else if constexpr (std::is_same_v<OpTy, ProdOp>)
      return getScalarAttr(b, type, 1.0);
    else if (keys)
      return ExtremeKeys::identity(b, type);
    else
      return extremeAttr(b, type, /*lowest=*/kIsMax);
  }

  /// Two accumulators combined. Float sums and products are computed in a
  /// fixed order (the lanes of buildReduction), so they carry no
  /// reassociation flag; maxima and minima (keys, integers, or the GPU's
  /// NaN-propagating floats) are exactly associative, so LLVM may
  /// reassociate them freely (no bits change) and vectorizes them directly.
  static Value merge(OpBuilder &b, Location loc, Value acc, Value x,
                     bool keys) {
    if (keys)
      return ExtremeKeys::merge(b, loc, acc, x);
    bool isFloat = isa<FloatType>(getElementTypeOrSelf(x.getType()));
    auto reassoc = arith::FastMathFlags::reassoc;
    if constexpr (std::is_same_v<OpTy, SumOp>)
      return isFloat ? Value(arith::AddFOp::create(b, loc, acc, x))
                     : Value(arith::AddIOp::create(b, loc, acc, x));
    else if constexpr (std::is_same_v<OpTy, ProdOp>)
      return isFloat ? Value(arith::MulFOp::create(b, loc, acc, x))
                     : Value(arith::MulIOp::create(b, loc, acc, x));
    else if constexpr (kIsMax)
      return isFloat ? Value(arith::MaximumFOp::create(b, loc, acc, x, reassoc))
                     : Value(arith::MaxSIOp::create(b, loc, acc, x));
    else
      return isFloat ? Value(arith::MinimumFOp::create(b, loc, acc, x, reassoc))
                     : Value(arith::MinSIOp::create(b, loc, acc, x));
  }

  /// Element `x` combined into accumulator `acc`.
  static Value combine(OpBuilder &b, Location loc, Value x, Value acc,
                       bool keys) {
    if (keys)
      return ExtremeKeys::merge(b, loc, acc,
                                ExtremeKeys::encode(b, loc, x, kIsMax));
    return merge(b, loc, acc, x, /*keys=*/false);
  }

  /// The reduction's value from its final accumulator.
  static Value result(OpBuilder &b, Location loc, Value acc, Type elementType,
                      bool keys) {
    if (keys)
      return ExtremeKeys::decode(b, loc, acc, elementType, kIsMax);
    return acc;
  }

  /// The lane order's element term (the element itself) and merge.
  static LaneReduction laneReduction(bool keys) {
    return {[keys](OpBuilder &nb, Location l, ValueRange x, ValueRange) {
              return keys ? ExtremeKeys::encode(nb, l, x[0], kIsMax) : x[0];
            },
            [keys](OpBuilder &nb, Location l, Value acc, Value x) {
              return merge(nb, l, acc, x, keys);
            }};
  }

  /// Float sums and products use the fixed lane order.
  static bool needsLanes(Type elementType) {
    return isa<FloatType>(elementType) &&
           (std::is_same_v<OpTy, SumOp> || std::is_same_v<OpTy, ProdOp>);
  }
};

/// Whether a line of `size` elements (the innermost reduced dim) spreads
/// over the lanes; a shorter one goes to lane 0, reduced in order.
bool spreadsOverLanes(int64_t size);

/// Elements of `bitWidth` bits in a 512-bit vector, a 64-byte cache line
/// (at least 1; i1 counts as a byte).
inline int64_t elementsPerLine(int64_t bitWidth) {
  return std::max<int64_t>(1, 512 / std::max<int64_t>(8, bitWidth));
}

/// The lane that element `i` of a line of `size` elements (the innermost
/// reduced dim) goes to in the lane order: i % 32, or 0 in a line shorter
/// than the lanes (reduced in order).
Value laneOf(OpBuilder &b, Location loc, Value i, int64_t size);

/// The lane order's tail: `tail` (fewer than kReductionLanes terms, the
/// elements after the last whole step) merged into the first lanes of
/// `acc`, the other lanes kept. A whole vector of terms (`pad` past the
/// tail) is merged and a constant mask selects.
Value mergeLaneTail(OpBuilder &b, Location loc, Value acc, ValueRange tail,
                    Value pad, const LaneReduction &lanes);

/// The lane order's last step: the kReductionLanes partial results of
/// `acc` merged in a fixed tree (lanes 0-15 + lanes 16-31, then 0-7 + 8-15,
/// ...); returns lane 0's.
Value foldLanes(OpBuilder &b, Location loc, Value acc,
                const LaneReduction &lanes);

/// The loops of a lane reduction: a vector of kReductionLanes partial
/// results; lane j takes the elements j, j + 32, ... of the innermost
/// reduced dim (element i goes to lane i % 32; in a line shorter than 32,
/// all go to lane 0 in order: laneOf) -- in a line of more than
/// kLaneBlockSteps steps of 32, block by block (laneBlocks), each block's
/// partial results merged into the lanes --, then the lanes are merged in
/// a fixed tree (lanes 0-15 + lanes 16-31, then 0-7 + 8-15, ...).
Value buildLaneLoops(OpBuilder &b, Location loc, RankedTensorType inputType,
                     ArrayRef<int64_t> reducedDims,
                     SmallVectorImpl<Value> &indices, TypedAttr init,
                     ElementReader read, const LaneReduction &lanes);

/// planReductionSplit of ReductionPlan.h on `inputType`'s shape and
/// element size.
std::optional<kiln::conversion::ReductionSplit>
planReductionSplit(RankedTensorType inputType, ArrayRef<bool> mask);

/// Builds a reduction over the dims flagged in `mask` of a tensor of
/// `inputType` read through `read`, with the accumulators in registers: a
/// parallel linalg.generic over the kept dims whose body runs an scf.for
/// nest over the reduced dims (the last dim innermost) carrying the
/// accumulators. Kept dims become parallel (OpenMP) loops; each reduction
/// runs start to end in one thread, so its order never depends on the
/// thread count. `inits` are the scalar initial values; `body(b, loc,
/// elements, accumulators, indices)` returns the new accumulators, where
/// `indices` are the full input indices. Without `finalize` it returns one
/// tensor per accumulator in the reduced (non-keepdim) shape; with it, one
/// per element `finalize` returns, of `finalTypes`.
///
/// With `lanes` (float sums and products, which are not associative; one
/// accumulator), the order of the operations is fixed by the IR itself
/// rather than left to LLVM's vectorizer: a vector of kReductionLanes
/// partial results takes the elements of the innermost reduced dim
/// round-robin, and the lanes are merged in a fixed tree (buildLaneLoops).
/// The result then does not depend on the vector width LLVM picks, on the
/// loop body (a fused producer chain or a plain load), or on threads; and a
/// GPU warp of 32 threads can reproduce the order exactly.
///
/// On the CPU, a reduction that keeps the input's innermost dim walks the
/// reduced dims outside and contiguous columns inside instead
/// (buildColumnReduction: the same order per column; what `prefetch`
/// names is prefetched a few rows ahead). With `maySplit`, a reduction over few
/// kept positions with `lanes`, or with an `orderFree` merge (max, min,
/// integer sums: any order gives the same result), is split into segments
/// reduced in parallel (planReductionSplit, buildSplitReduction).
///
/// On the CPU, rows of 4 to 31 elements along the last dim (or a trailing
/// run of dims) with `lanes` take a row per lane of a vector instead, 16
/// f32 or 8 f64 rows at a time (buildLaneRowsReduction; the same order, so
/// the same bits). `stored`, when given, holds the input's elements in
/// row-major order (in the input's shape, or another: the coalesced
/// reduction passes the op's input on), which `read` extracts and which
/// are `lanes`' terms themselves: that kernel then reads it, flattened,
/// with vector loads.
///
/// With `explain` (the op's name), the plan chosen is reported as a
/// kiln-lower remark: for the reduction ops themselves, not the reductions
/// other kernels use.
SmallVector<Value>
buildReduction(OpBuilder &b, Location loc, RankedTensorType inputType,
               ElementReader read, ArrayRef<bool> mask,
               ArrayRef<TypedAttr> inits, ReductionBody body,
               ReductionFinalizer finalize = nullptr, TypeRange finalTypes = {},
               const LaneReduction *lanes = nullptr, bool maySplit = true,
               const LaneReduction *orderFree = nullptr,
               const ElementPrefetch &prefetch = {}, StringRef explain = {},
               Value stored = {});

/// Reads `inputs` (stored tensors of one shape) with tensor.extract.
SmallVector<Value> buildReduction(
    OpBuilder &b, Location loc, ValueRange inputs, ArrayRef<bool> mask,
    ArrayRef<TypedAttr> inits,
    function_ref<SmallVector<Value>(OpBuilder &, Location, ValueRange,
                                    ValueRange, ValueRange)>
        body,
    const LaneReduction *lanes = nullptr);

/// One row's reduction `OpTy` (sum, prod, amax, amin over the last dim of
/// `inputType`) of what `read` gives at `indices` (the row's coordinates,
/// then the position in the row): the operations of the reduction kernel
/// in its order -- the lane order for float sums and products, one loop
/// otherwise -- so the same bits. Rows the kernel splits (planReductionSplit
/// of ReductionPlan.h: few long rows) reduce each segment in the lane order
/// and merge the segments' partials as the split's last kernel does: a
/// lane loop over the segments whose elements are the partials, each
/// computed where that loop reads it (no partial is stored); then the
/// rest after the segments, in the lane order of a row of its own (the
/// split's rest kernel), merged last.
template <typename OpTy>
Value reduceRow(
    OpBuilder &b, Location loc, RankedTensorType inputType,
    SmallVector<Value> &indices, ElementReader read,
    std::function<void(OpBuilder &, Location, Value first)> prefetch = nullptr);

/// One reduced row of a block of column accumulators ([lane, column], as
/// buildColumnReduction and reduceColumnBlock keep them): for each of the
/// `width` columns c, acc[lane, c] = combine(acc[lane, c], c) -- a
/// contiguous loop, which LLVM vectorizes.
Value updateColumnLane(
    OpBuilder &b, Location loc, Value acc, Value lane, Value width,
    function_ref<Value(OpBuilder &, Location, Value old, Value c)> combine);

/// Column `c`'s value in a block of column accumulators of `laneCount`
/// lanes: the lanes merged in the fixed tree (mergeLaneTree), or lane 0's.
Value mergeColumnLanes(OpBuilder &b, Location loc, Value acc, Value c,
                       int64_t laneCount, const LaneReduction *lanes);

/// How a column reduction (buildColumnReduction) walks a block of columns
/// (columnScheme).
enum class ColumnScheme {
  /// Fewer columns than a 512-bit vector holds, over 32 lanes: groups of
  /// rows update consecutive lanes' accumulators.
  NarrowRows,
  /// Over 32 lanes, few elements per lane: the lanes one after another,
  /// in their merge tree's order, accumulators in registers.
  LanesInTreeOrder,
  /// One accumulator per column (no lanes, or every element in lane 0):
  /// the rows in order, accumulators in registers.
  RowsInRegisters,
  /// The rows in order, each into its lane's accumulators in memory (32
  /// lanes, or one, x the block's columns).
  AccumulatorsInMemory,
};

/// The walk a column reduction of `inputType` over `reducedDims` (the
/// innermost dim kept) takes: by the lanes (`hasLanes`: a float sum or
/// product), the columns, the elements per column, whether an indexed
/// read scatters the rows and what reading an element costs
/// (`readCost`, elementReadCost: called only when the rest leaves the
/// registers open, since it builds the read).
ColumnScheme columnScheme(RankedTensorType inputType,
                          ArrayRef<int64_t> reducedDims, bool hasLanes,
                          bool scattered, function_ref<int64_t()> readCost);

/// What `read` builds for one element of a rank-`rank` input, built at
/// `b`'s place inside an op of its own and erased: an operation counts 1, a
/// transcendental math op (exp, log, tanh, pow, ...: a long expansion
/// later) 16.
int64_t elementReadCost(OpBuilder &b, Location loc, int64_t rank,
                        ElementReader read);

/// A block of `block` columns from column `first` of a column reduction,
/// accumulators in registers (ColumnScheme::LanesInTreeOrder with `lanes`
/// and `treeOrder`, else RowsInRegisters with `lanes` or `body`); `indices`
/// holds the kept dims' indices. Rows are prefetched through `prefetch`
/// (when given) `rowsAhead` rows ahead, or, in tree order, the rows of the
/// lane kColumnPrefetchRows steps ahead. Returns the block's accumulators
/// as a [1, block] tensor.
Value buildColumnBlockInRegisters(
    OpBuilder &b, Location loc, RankedTensorType inputType,
    ArrayRef<int64_t> reducedDims, SmallVectorImpl<Value> &indices, Value first,
    int64_t block, TypedAttr init, ElementReader read, ReductionBody body,
    const LaneReduction *lanes, bool treeOrder, const ElementPrefetch *prefetch,
    int64_t rowsAhead);

/// The kernel of a sum, prod, amax or amin (`op`) reading through `io`.
SmallVector<Value> lowerReductionKernel(OpBuilder &b, Operation *op,
                                        const KernelIO &io);

/// The patterns of sum, prod, amax, amin and equal.
void populateReductionPatterns(RewritePatternSet &patterns);

//===----------------------------------------------------------------------===//
// softmax and log_softmax (Softmax.cpp)
//===----------------------------------------------------------------------===//

/// softmax's element exp(x - m) * s (`s` the reciprocal of the sum), or
/// log_softmax's x - m - s (`s` the log of the sum).
Value softmaxElement(OpBuilder &b, Location loc, Value x, Value m, Value s,
                     bool isLog);

/// The sum of exp(x - m) over a row (what `read` gives at `indices`) in
/// the lane order -- softmax's row sum, in its kernels' operations and
/// order -- as its reciprocal for softmax or its log for log_softmax (what
/// softmaxElement takes).
Value rowExpSum(
    OpBuilder &b, Location loc, RankedTensorType inputType,
    SmallVector<Value> &indices, ElementReader read, Value m, bool isLog,
    std::function<void(OpBuilder &, Location, Value first)> prefetch = nullptr);

/// `prefetch` as a lane loop's (LaneReduction::prefetch): each step's
/// kReductionLanes positions of the next row.
std::function<void(OpBuilder &, Location, Value)>
lanePrefetch(const NextRowPrefetch &prefetch);

/// A softmax's exps kept in its result's row: exp(x - m) for each position
/// j of the row (`x(j)`) into `into` (tensor<n x f>, a slice of the
/// result), and their sum in the lane order. Returns {the row of exps, the
/// reciprocal of their sum}.
///
/// A row of at least kExpChunk elements is computed in chunks of
/// expChunk(b) elements, each first prefetching its share of the next row
/// (`prefetch`, when given), then adding its exps to the lane partial sums --
/// element i to lane i % 32, in order, the tail into the first lanes:
/// buildLaneLoops' order, so the same bits -- while they are in registers. A
/// separate pass reading the row back waited on its two chains of adds (128
/// dependent adds each over 4096 f32); here they overlap the exps. softmax over
/// 4096x4096 f32 (medians of alternating runs): 1 thread 4.25-4.32 ->
/// 4.08-4.20 ms, 2 threads 2.11-2.32 -> 1.99-2.08; 128x4096, rows in L2,
/// 1 thread 0.115 -> 0.106 ms.
std::pair<Value, Value>
keepExpsInRow(OpBuilder &b, Location loc, Value into, Value m,
              function_ref<Value(OpBuilder &, Location, Value j)> x,
              function_ref<void(OpBuilder &, Location, Value j, int64_t count)>
                  prefetch = {});

/// The kernels of a softmax or log_softmax (`op`) reading through `io`.
SmallVector<Value> lowerSoftmaxKernel(OpBuilder &b, Operation *op,
                                      const KernelIO &io);

void populateSoftmaxPatterns(RewritePatternSet &patterns);

//===----------------------------------------------------------------------===//
// matmul (Matmul.cpp)
//===----------------------------------------------------------------------===//

void populateMatmulPatterns(RewritePatternSet &patterns);

//===----------------------------------------------------------------------===//
// Indexed reads and scatters (Indexing.cpp)
//===----------------------------------------------------------------------===//

/// Checks every element of `index` before a parallel indexing loop: a
/// min-reduction finds the first (row-major) element outside [lo, hi), and
/// that one is reported, so the message is the same for every thread
/// count. The loop itself then only clamps (see `clampIndex`), which keeps
/// it free of calls and vectorizable.
void checkIndicesUpFront(OpBuilder &b, Location loc, int64_t site, Value index,
                         int64_t lo, int64_t hi, int64_t reportedSize);

/// gather and index_select: result[ivs] = input[ivs with ivs[dim] replaced
/// by the index], after the up-front check of every index. `io` reads the
/// input and finishes each element (a fused group's epilogue).
SmallVector<Value> lowerGatherAlongDim(OpBuilder &b, Operation *op,
                                       RankedTensorType inputType, Value index,
                                       int64_t dimAttr, bool perSlice,
                                       ErrorSites &sites, const KernelIO &io);

/// The patterns of gather, index_select, take (each index checked, the
/// sites recorded in `sites`) and of scatter_add, index_add and put
/// (`sortedScatters`: sort the positions by target where that applies).
void populateIndexingPatterns(RewritePatternSet &patterns, ErrorSites &sites,
                              bool sortedScatters);

//===----------------------------------------------------------------------===//
// Runtime kernels (RuntimeKernels.cpp)
//===----------------------------------------------------------------------===//

/// Emits a call `kiln_rt_<name>_<type>(in, values, indices, k, dim, flag0,
/// flag1)` writing two new buffers of `resultTypes` (values, indices);
/// returns them as tensors.
SmallVector<Value> emitRuntimeCall(OpBuilder &b, Operation *anchor,
                                   Location loc, StringRef name, Value input,
                                   ArrayRef<Type> resultTypes, int64_t k,
                                   int64_t dim, bool flag0, bool flag1);

/// The runtime kernel an op calls: its name, (values, indices) types, k,
/// the normalized dim, the flags, and whether the dim stays in the results.
struct RuntimeKernel {
  StringRef name;
  SmallVector<Type> resultTypes;
  int64_t k = 0, dim = 0;
  bool flag0 = false, flag1 = false;
  bool flatten = false, dimKept = true;
};

std::optional<RuntimeKernel> getRuntimeKernel(Operation *op);

/// The patterns of topk, kthvalue, max/min with dim and argmax/argmin.
void populateRuntimeKernelPatterns(RewritePatternSet &patterns);

//===----------------------------------------------------------------------===//
// kiln.fused (FusedKernels.cpp)
//===----------------------------------------------------------------------===//

/// Lowers a kiln.fused group to one kernel (softmax: its three passes).
FailureOr<SmallVector<Value>> lowerFused(OpBuilder &b, FusedOp op,
                                         ErrorSites &sites);

} // namespace kiln::lowering

#endif // KILN_LIB_CONVERSION_KILNTOLINALG_LOWERING_H
