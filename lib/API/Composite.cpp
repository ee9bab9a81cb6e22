//===- Composite.cpp - PyTorch functions written with Kiln's ops ----------===//
//
// transpose, squeeze, unsqueeze, flatten, narrow, split, chunk, cat,
// stack, sort, argsort, masked_fill, one_hot, var, std, logsumexp, linear,
// layer_norm, silu, leaky_relu, nll_loss, l1_loss and
// binary_cross_entropy_with_logits: each checks its arguments (PyTorch's
// refusals, at the caller's location) and records the ops of ops.md that
// compute it, through the public functions of Ops.cpp. The graph holds
// those ops only, so the functions fuse (a layer norm is one row group),
// lower and differentiate like code that writes them out.
//
//===----------------------------------------------------------------------===//

#include "Internal.h"
#include "kiln/Dialect/Kiln/IR/KilnShapeInference.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace kiln {

namespace detail {

std::string shapeText(const std::vector<int64_t> &shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

void requireDefined(const char *fn, const Tensor &x, SourceLocation where) {
  if (!x.defined())
    throw Error(std::string(fn) + ": undefined tensor", where);
}

void requireFloat(const char *fn, const Tensor &x, SourceLocation where) {
  requireDefined(fn, x, where);
  if (!isFloat(x.dtype()))
    throw Error(std::string(fn) +
                    ": expects a floating-point tensor (as "
                    "PyTorch does), got " +
                    dtypeName(x.dtype()),
                where);
}

int64_t wrapDim(const char *fn, int64_t dim, int64_t size,
                SourceLocation where) {
  // The dialect's rule (a rank-0 tensor takes -1 and 0), PyTorch's message.
  if (std::optional<int64_t> wrapped = kiln::normalizeDim(dim, size))
    return *wrapped;
  int64_t extent = std::max<int64_t>(size, 1);
  throw Error(std::string(fn) + ": dim " + std::to_string(dim) +
                  " is out of range (expected to be in range of [" +
                  std::to_string(-extent) + ", " + std::to_string(extent - 1) +
                  "])",
              where);
}

int64_t reducedCount(const char *fn, const Tensor &x,
                     const std::vector<int64_t> &dims, SourceLocation where) {
  const std::vector<int64_t> &shape = x.shape();
  int64_t rank = x.dim();
  if (dims.empty())
    return x.numel();
  std::vector<bool> seen(std::max<int64_t>(rank, 1), false);
  int64_t count = 1;
  for (int64_t dim : dims) {
    int64_t d = wrapDim(fn, dim, rank, where);
    if (seen[d])
      throw Error(std::string(fn) + ": dim " + std::to_string(d) +
                      " appears more than once in the list of dims",
                  where);
    seen[d] = true;
    count *= rank == 0 ? 1 : shape[d];
  }
  return count;
}

} // namespace detail

using namespace detail;

//===----------------------------------------------------------------------===//
// Shape
//===----------------------------------------------------------------------===//

Tensor transpose(const Tensor &x, int64_t dim0, int64_t dim1,
                 SourceLocation where) {
  requireDefined("transpose", x, where);
  int64_t rank = x.dim();
  int64_t a = wrapDim("transpose", dim0, rank, where);
  int64_t b = wrapDim("transpose", dim1, rank, where);
  if (rank < 2 || a == b)
    return x;
  std::vector<int64_t> dims(rank);
  for (int64_t d = 0; d < rank; ++d)
    dims[d] = d;
  std::swap(dims[a], dims[b]);
  return permute(x, dims, where);
}

Tensor squeeze(const Tensor &x, SourceLocation where) {
  requireDefined("squeeze", x, where);
  std::vector<int64_t> shape;
  for (int64_t size : x.shape())
    if (size != 1)
      shape.push_back(size);
  return shape.size() == x.shape().size() ? x : reshape(x, shape, where);
}

Tensor squeeze(const Tensor &x, int64_t dim, SourceLocation where) {
  requireDefined("squeeze", x, where);
  int64_t d = wrapDim("squeeze", dim, x.dim(), where);
  if (x.dim() == 0 || x.shape()[d] != 1)
    return x;
  std::vector<int64_t> shape = x.shape();
  shape.erase(shape.begin() + d);
  return reshape(x, shape, where);
}

Tensor unsqueeze(const Tensor &x, int64_t dim, SourceLocation where) {
  requireDefined("unsqueeze", x, where);
  int64_t d = wrapDim("unsqueeze", dim, x.dim() + 1, where);
  std::vector<int64_t> shape = x.shape();
  shape.insert(shape.begin() + d, 1);
  return reshape(x, shape, where);
}

Tensor flatten(const Tensor &x, int64_t startDim, int64_t endDim,
               SourceLocation where) {
  requireDefined("flatten", x, where);
  int64_t rank = x.dim();
  int64_t start = wrapDim("flatten", startDim, rank, where);
  int64_t end = wrapDim("flatten", endDim, rank, where);
  if (start > end)
    throw Error("flatten: start_dim (" + std::to_string(startDim) +
                    ") cannot come after end_dim (" + std::to_string(endDim) +
                    ")",
                where);
  if (rank == 0)
    return reshape(x, {1}, where);
  const std::vector<int64_t> &from = x.shape();
  std::vector<int64_t> shape(from.begin(), from.begin() + start);
  int64_t merged = 1;
  for (int64_t d = start; d <= end; ++d)
    merged *= from[d];
  shape.push_back(merged);
  shape.insert(shape.end(), from.begin() + end + 1, from.end());
  return shape == from ? x : reshape(x, shape, where);
}

Tensor narrow(const Tensor &x, int64_t dim, int64_t start, int64_t length,
              SourceLocation where) {
  requireDefined("narrow", x, where);
  if (x.dim() == 0)
    throw Error("narrow: cannot be applied to a rank-0 tensor", where);
  int64_t d = wrapDim("narrow", dim, x.dim(), where);
  int64_t size = x.shape()[d];
  // PyTorch's start: the dim's size itself, or wrapped as a dim of a
  // tensor of `size` dims (-1 and 0 for an empty dim).
  if (start != size) {
    int64_t bound = std::max<int64_t>(size, 1);
    if (start < -bound || start >= bound)
      throw Error("narrow: start " + std::to_string(start) +
                      " is out of range (expected to be in range of [" +
                      std::to_string(-bound) + ", " +
                      std::to_string(bound - 1) + "], or " +
                      std::to_string(size) + ")",
                  where);
    if (start < 0)
      start += bound;
  }
  if (length < 0 || start + length > size)
    throw Error("narrow: start (" + std::to_string(start) + ") + length (" +
                    std::to_string(length) + ") exceeds the size (" +
                    std::to_string(size) + ") of dim " + std::to_string(d) +
                    (length < 0 ? ", or the length is negative" : ""),
                where);
  if (start == 0 && length == size)
    return x;
  return index_select(
      x, d,
      arange(length, static_cast<double>(start), 1.0, DType::Int64, where),
      where);
}

namespace {
/// The pieces of dim `d` of `x` of the given sizes (which add up to it).
std::vector<Tensor> pieces(const Tensor &x, int64_t d,
                           const std::vector<int64_t> &sizes,
                           SourceLocation where) {
  std::vector<Tensor> result;
  int64_t start = 0;
  for (int64_t size : sizes) {
    result.push_back(narrow(x, d, start, size, where));
    start += size;
  }
  return result;
}

/// The dim `dim` of `x` for `fn`, which needs a rank of 1 or more.
int64_t splitDim(const char *fn, const Tensor &x, int64_t dim,
                 SourceLocation where) {
  requireDefined(fn, x, where);
  if (x.dim() == 0)
    throw Error(std::string(fn) + ": cannot be applied to a rank-0 tensor",
                where);
  return wrapDim(fn, dim, x.dim(), where);
}
} // namespace

std::vector<Tensor> split(const Tensor &x, int64_t splitSize, int64_t dim,
                          SourceLocation where) {
  int64_t d = splitDim("split", x, dim, where);
  int64_t size = x.shape()[d];
  if (splitSize < 0 || (splitSize == 0 && size != 0))
    throw Error("split: split_size must be positive (or 0 for a dim of size "
                "0), got " +
                    std::to_string(splitSize) + " for dim " +
                    std::to_string(d) + " of size " + std::to_string(size),
                where);
  if (size == 0)
    return {x};
  std::vector<int64_t> sizes;
  for (int64_t start = 0; start < size; start += splitSize)
    sizes.push_back(std::min(splitSize, size - start));
  return pieces(x, d, sizes, where);
}

std::vector<Tensor> split_with_sizes(const Tensor &x,
                                     std::vector<int64_t> splitSizes,
                                     int64_t dim, SourceLocation where) {
  int64_t d = splitDim("split_with_sizes", x, dim, where);
  int64_t total = 0;
  for (int64_t size : splitSizes) {
    if (size < 0)
      throw Error("split_with_sizes: the sizes " + shapeText(splitSizes) +
                      " hold a negative one",
                  where);
    total += size;
  }
  if (total != x.shape()[d])
    throw Error("split_with_sizes: the sizes " + shapeText(splitSizes) +
                    " add up to " + std::to_string(total) +
                    ", not to the size (" + std::to_string(x.shape()[d]) +
                    ") of dim " + std::to_string(d),
                where);
  return pieces(x, d, splitSizes, where);
}

std::vector<Tensor> chunk(const Tensor &x, int64_t chunks, int64_t dim,
                          SourceLocation where) {
  int64_t d = splitDim("chunk", x, dim, where);
  if (chunks <= 0)
    throw Error("chunk: chunks must be greater than 0, got " +
                    std::to_string(chunks),
                where);
  int64_t size = x.shape()[d];
  // As PyTorch: `chunks` empty pieces of an empty dim, else pieces of
  // ceil(size / chunks) (fewer than `chunks` when the last would be empty).
  if (size == 0)
    return std::vector<Tensor>(chunks, x);
  return split(x, (size + chunks - 1) / chunks, d, where);
}

Tensor cat(const std::vector<Tensor> &tensors, int64_t dim,
           SourceLocation where) {
  if (tensors.empty())
    throw Error("cat: expects a non-empty list of tensors", where);
  for (const Tensor &t : tensors)
    requireDefined("cat", t, where);
  DType dtype = tensors[0].dtype();
  for (const Tensor &t : tensors)
    dtype = detail::promote(dtype, t.dtype());
  // PyTorch skips 1-D tensors of no elements (a legacy rule), unless all
  // are.
  std::vector<size_t> kept;
  for (size_t i = 0; i < tensors.size(); ++i)
    if (tensors[i].shape() != std::vector<int64_t>{0})
      kept.push_back(i);
  // An empty result of pieces of one shape: a where of all of them, which
  // selects nothing but keeps each piece in the graph, so that backward()
  // reaches them as PyTorch's does (their gradients empty).
  auto emptyOf = [&](const std::vector<size_t> &pieces) {
    Tensor result = tensors[pieces.back()].to(dtype, where);
    Tensor always = full({}, 1.0, DType::Bool, where);
    for (size_t j = pieces.size() - 1; j-- > 0;)
      result = kiln::where(always, tensors[pieces[j]].to(dtype, where), result,
                           where);
    return result;
  };
  if (kept.empty()) {
    std::vector<size_t> all(tensors.size());
    std::iota(all.begin(), all.end(), size_t(0));
    return emptyOf(all);
  }
  const std::vector<int64_t> &shape = tensors[kept[0]].shape();
  int64_t rank = static_cast<int64_t>(shape.size());
  for (size_t i : kept)
    if (tensors[i].dim() == 0)
      throw Error("cat: a rank-0 tensor (tensor " + std::to_string(i) +
                      ") cannot be concatenated",
                  where);
  int64_t d = wrapDim("cat", dim, rank, where);
  int64_t total = 0;
  for (size_t i : kept) {
    const std::vector<int64_t> &own = tensors[i].shape();
    if (static_cast<int64_t>(own.size()) != rank)
      throw Error("cat: tensors must have the same number of dims: got " +
                      std::to_string(rank) + " and " +
                      std::to_string(own.size()) + " (tensor " +
                      std::to_string(i) + ")",
                  where);
    for (int64_t k = 0; k < rank; ++k)
      if (k != d && own[k] != shape[k])
        throw Error("cat: sizes of tensors must match except in dim " +
                        std::to_string(d) + ": expected size " +
                        std::to_string(shape[k]) + " but got size " +
                        std::to_string(own[k]) + " for tensor " +
                        std::to_string(i) + " (of shape " + shapeText(own) +
                        ")",
                    where);
    total += own[d];
  }
  // Each piece read at every position of the result's dim (its index
  // clamped into it), and the result taken from the piece whose range
  // holds the position: index_select and where, exact bits, with their
  // gradients (where's, then index_select's index_add).
  Tensor result;
  int64_t offset = 0;
  std::vector<int64_t> maskShape(rank, 1);
  maskShape[d] = total;
  Tensor positions = arange(total, 0.0, 1.0, DType::Int64, where);
  for (size_t i : kept) {
    Tensor piece = tensors[i].to(dtype, where);
    int64_t size = piece.shape()[d];
    if (size == 0)
      continue;
    if (size == total)
      return piece;
    Tensor index = clamp(
        arange(total, static_cast<double>(-offset), 1.0, DType::Int64, where),
        0.0, static_cast<double>(size - 1), where);
    Tensor part = index_select(piece, d, index, where);
    if (!result.defined()) {
      result = part;
    } else {
      Tensor mask = ge(positions, scalarLike(offset, positions, where), where);
      result =
          kiln::where(reshape(mask, maskShape, where), part, result, where);
    }
    offset += size;
  }
  // No piece holds an element along `dim`: the empty result (the pieces
  // differ in no dim, so they have one shape).
  if (!result.defined())
    return emptyOf(kept);
  return result;
}

Tensor stack(const std::vector<Tensor> &tensors, int64_t dim,
             SourceLocation where) {
  if (tensors.empty())
    throw Error("stack: expects a non-empty list of tensors", where);
  for (size_t i = 0; i < tensors.size(); ++i) {
    requireDefined("stack", tensors[i], where);
    if (tensors[i].shape() != tensors[0].shape())
      throw Error("stack: expects each tensor to be equal size, but got " +
                      shapeText(tensors[0].shape()) + " at entry 0 and " +
                      shapeText(tensors[i].shape()) + " at entry " +
                      std::to_string(i),
                  where);
  }
  int64_t d = wrapDim("stack", dim, tensors[0].dim() + 1, where);
  std::vector<Tensor> unsqueezed;
  for (const Tensor &t : tensors)
    unsqueezed.push_back(unsqueeze(t, d, where));
  return cat(unsqueezed, d, where);
}

//===----------------------------------------------------------------------===//
// Reductions
//===----------------------------------------------------------------------===//

namespace {
/// var's graph; errors name `fn` (var or std).
Tensor variance(const char *fn, const Tensor &x,
                const std::vector<int64_t> &dims, double correction,
                bool keepdim, SourceLocation where) {
  requireFloat(fn, x, where);
  int64_t count = reducedCount(fn, x, dims, where);
  Tensor deviation = sub(x, mean(x, dims, /*keepdim=*/true, where), where);
  Tensor squares = sum(mul(deviation, deviation, where), dims, keepdim, where);
  // PyTorch's divisor: N - correction, at least 0 (a NaN or an infinity
  // then, as there).
  double divisor = std::max(0.0, static_cast<double>(count) - correction);
  return div(squares, scalarLike(divisor, squares, where), where);
}
} // namespace

Tensor var(const Tensor &x, std::vector<int64_t> dims, double correction,
           bool keepdim, SourceLocation where) {
  return variance("var", x, dims, correction, keepdim, where);
}

Tensor std(const Tensor &x, std::vector<int64_t> dims, double correction,
           bool keepdim, SourceLocation where) {
  Tensor v = variance("std", x, dims, correction, keepdim, where);
  // sqrt(v), with PyTorch's gradient 0 where the deviation is 0 (sqrt's
  // own, 1 / (2 sqrt 0), times the variance's 0 would be NaN): the sqrt
  // reads 1 there, and a where puts the 0 back -- each where's gradient
  // masks the other branch, and no NaN or infinity enters a product.
  Tensor zero = eq(v, scalarLike(0.0, v, where), where);
  Tensor safe = kiln::where(zero, scalarLike(1.0, v, where), v, where);
  return kiln::where(zero, scalarLike(0.0, v, where), sqrt(safe, where), where);
}

Tensor logsumexp(const Tensor &x, std::vector<int64_t> dims, bool keepdim,
                 SourceLocation where) {
  requireDefined("logsumexp", x, where);
  Tensor value = isFloat(x.dtype()) ? x : cast(x, DType::Float32, where);
  int64_t count = reducedCount("logsumexp", value, dims, where);
  // Nothing reduced: log(0) = -inf, without a maximum of nothing.
  if (count == 0)
    return log(sum(exp(value, where), dims, keepdim, where), where);
  // The shift m: the maximum, or 0 where it is infinite (all -inf, or an
  // inf: x - m would be NaN), as PyTorch's.
  Tensor largest = amax(value, dims, /*keepdim=*/true, where);
  Tensor shift = kiln::where(
      eq(abs(largest, where),
         scalarLike(std::numeric_limits<double>::infinity(), largest, where),
         where),
      scalarLike(0.0, largest, where), largest, where);
  Tensor logSum = log(
      sum(exp(sub(value, shift, where), where), dims, keepdim, where), where);
  return add(logSum, keepdim ? shift : reshape(shift, logSum.shape(), where),
             where);
}

//===----------------------------------------------------------------------===//
// Sorting, masks, one-hot
//===----------------------------------------------------------------------===//

ValuesIndices sort(const Tensor &x, int64_t dim, bool descending,
                   SourceLocation where) {
  requireDefined("sort", x, where);
  int64_t d = wrapDim("sort", dim, x.dim(), where);
  // Nothing to order: the values, at index 0 (rank 0) or none.
  if (x.dim() == 0 || x.shape()[d] == 0)
    return {x, zeros(x.shape(), DType::Int64, where)};
  // topk of every element, sorted: ties by ascending index (a stable
  // sort), NaNs larger than every number (last ascending, first
  // descending), as torch.sort(stable=True). topk takes no bools: those
  // are ordered as int64.
  if (x.dtype() == DType::Bool) {
    ValuesIndices r = topk(x.to(DType::Int64, where), x.shape()[d], d,
                           descending, /*sorted=*/true, where);
    return {r.values.to(DType::Bool, where), r.indices};
  }
  return topk(x, x.shape()[d], d, descending, /*sorted=*/true, where);
}

Tensor argsort(const Tensor &x, int64_t dim, bool descending,
               SourceLocation where) {
  return sort(x, dim, descending, where).indices;
}

Tensor masked_fill(const Tensor &x, const Tensor &mask, Scalar value,
                   SourceLocation where) {
  requireDefined("masked_fill", x, where);
  requireDefined("masked_fill", mask, where);
  if (mask.dtype() != DType::Bool)
    throw Error(std::string("masked_fill: the mask must be a bool tensor, "
                            "got ") +
                    dtypeName(mask.dtype()),
                where);
  // The value converted to x's dtype as PyTorch does (a float into an
  // integer tensor toward zero, into a bool one as value != 0).
  Tensor fill =
      full({}, value.value, DType::Float64, where).to(x.dtype(), where);
  return kiln::where(mask, fill, x, where);
}

Tensor one_hot(const Tensor &x, int64_t numClasses, SourceLocation where) {
  requireDefined("one_hot", x, where);
  if (x.dtype() != DType::Int64)
    throw Error(std::string("one_hot: expects an int64 tensor of class "
                            "indices, got ") +
                    dtypeName(x.dtype()),
                where);
  if (numClasses == -1) {
    if (x.numel() == 0)
      throw Error("one_hot: cannot infer the number of classes from an "
                  "empty tensor",
                  where);
    int64_t largest = amax(x, {}, false, where).item<int64_t>(where);
    if (largest < 0)
      throw Error("one_hot: class values must be non-negative, got a "
                  "largest value of " +
                      std::to_string(largest),
                  where);
    numClasses = largest + 1;
  } else if (numClasses < 1) {
    throw Error("one_hot: numClasses must be positive, or -1 to infer it, "
                "got " +
                    std::to_string(numClasses),
                where);
  }
  // The values read through index_select of the classes (the identity
  // where they are classes, the op's runtime index error where not), then
  // compared with every class.
  Tensor classes = arange(numClasses, 0.0, 1.0, DType::Int64, where);
  Tensor checked =
      reshape(index_select(classes, 0, reshape(x, {-1}, where), where),
              x.shape(), where);
  return eq(unsqueeze(checked, -1, where), classes, where)
      .to(DType::Int64, where);
}

//===----------------------------------------------------------------------===//
// Neural-network functions
//===----------------------------------------------------------------------===//

namespace detail {
void checkReduction(const char *fn, const std::string &reduction,
                    SourceLocation where) {
  if (reduction != "mean" && reduction != "sum" && reduction != "none")
    throw Error(std::string(fn) +
                    ": reduction must be \"mean\", \"sum\" or \"none\", "
                    "got \"" +
                    reduction + "\"",
                where);
}
Tensor reduceLoss(const Tensor &loss, const std::string &reduction,
                  SourceLocation where) {
  if (reduction == "sum")
    return sum(loss, {}, false, where);
  if (reduction == "mean")
    return mean(loss, {}, false, where);
  return loss;
}
std::pair<Tensor, Tensor> floatOperands(const char *fn, const Tensor &a,
                                        const Tensor &b, SourceLocation where) {
  requireDefined(fn, a, where);
  requireDefined(fn, b, where);
  DType common = detail::promote(a.dtype(), b.dtype());
  if (!isFloat(common))
    throw Error(std::string(fn) +
                    ": expects floating-point operands (as "
                    "PyTorch does), got " +
                    dtypeName(a.dtype()) + " and " + dtypeName(b.dtype()),
                where);
  return {a.to(common, where), b.to(common, where)};
}
} // namespace detail

Tensor nll_loss(const Tensor &input, const Tensor &target,
                const std::string &reduction, int64_t ignoreIndex,
                SourceLocation where) {
  requireFloat("nll_loss", input, where);
  requireDefined("nll_loss", target, where);
  checkReduction("nll_loss", reduction, where);
  if (target.dtype() != DType::Int64)
    throw Error(std::string("nll_loss: expects int64 class indices as the "
                            "target, got ") +
                    dtypeName(target.dtype()),
                where);
  bool batched = input.dim() == 2;
  if (!((batched && target.dim() == 1 &&
         target.shape()[0] == input.shape()[0]) ||
        (input.dim() == 1 && target.dim() == 0)))
    throw Error("nll_loss: expects input [N, C] with target [N], or [C] with "
                "target [], got input " +
                    shapeText(input.shape()) + " and target " +
                    shapeText(target.shape()),
                where);
  Tensor scores = batched ? input : unsqueeze(input, 0, where);
  Tensor classes = batched ? target : unsqueeze(target, 0, where);
  // Ignored targets read class 0 (any valid index) and count 0.
  Tensor kept = ne(classes, scalarLike(ignoreIndex, classes, where), where);
  Tensor safe =
      kiln::where(kept, classes, scalarLike(0, classes, where), where);
  Tensor picked =
      squeeze(gather(scores, 1, unsqueeze(safe, 1, where), where), 1, where);
  Tensor losses = kiln::where(kept, neg(picked, where),
                              scalarLike(0.0, picked, where), where);
  if (reduction == "none")
    return batched ? losses : squeeze(losses, 0, where);
  Tensor total = sum(losses, {}, false, where);
  if (reduction == "sum")
    return total;
  // PyTorch's mean: over the targets not ignored (NaN when none is).
  return div(total, sum(kept.to(input.dtype(), where), {}, false, where),
             where);
}

Tensor l1_loss(const Tensor &input, const Tensor &target,
               const std::string &reduction, SourceLocation where) {
  checkReduction("l1_loss", reduction, where);
  requireDefined("l1_loss", input, where);
  requireDefined("l1_loss", target, where);
  // Integers as PyTorch: |a - b| and its sum in integers, no mean (and
  // bools not subtracted: sub's error).
  DType common = detail::promote(input.dtype(), target.dtype());
  if (!isFloat(common) && reduction == "mean")
    throw Error(std::string("l1_loss: the mean of integer differences is "
                            "not computed (as in PyTorch), got ") +
                    dtypeName(input.dtype()) + " and " +
                    dtypeName(target.dtype()),
                where);
  Tensor difference =
      sub(input.to(common, where), target.to(common, where), where);
  return reduceLoss(abs(difference, where), reduction, where);
}

Tensor binary_cross_entropy_with_logits(const Tensor &input,
                                        const Tensor &target,
                                        const std::string &reduction,
                                        SourceLocation where) {
  const char *fn = "binary_cross_entropy_with_logits";
  checkReduction(fn, reduction, where);
  // PyTorch computes in place, in the target's tensor: both must be float
  // (an integer one cannot hold the float results).
  requireFloat(fn, input, where);
  requireFloat(fn, target, where);
  if (input.shape() != target.shape())
    throw Error(std::string(fn) + ": the target's shape " +
                    shapeText(target.shape()) + " must be the input's shape " +
                    shapeText(input.shape()),
                where);
  // PyTorch's form, op by op in its dtypes: m = max(-x, 0) in the input's;
  // (1 - y) * x, then + m, then + log(exp(-m) + exp(-x - m)) -- that log
  // in the input's dtype -- each sum stored in the target's dtype. No exp
  // of a large positive value.
  const Tensor &x = input, &y = target;
  DType stored = y.dtype();
  Tensor m = clamp(neg(x, where), 0.0, std::nullopt, where);
  Tensor logTerm = log(add(exp(neg(m, where), where),
                           exp(sub(neg(x, where), m, where), where), where),
                       where);
  Tensor loss =
      mul(sub(scalarLike(1.0, y, where), y, where), x, where).to(stored, where);
  loss = add(loss, m, where).to(stored, where);
  loss = add(loss, logTerm, where).to(stored, where);
  return reduceLoss(loss, reduction, where);
}

Tensor linear(const Tensor &x, const Tensor &weight, const Tensor &bias,
              SourceLocation where) {
  requireDefined("linear", x, where);
  requireDefined("linear", weight, where);
  if (weight.dim() != 1 && weight.dim() != 2)
    throw Error("linear: weight must be 1-D or 2-D ([out, in]), got shape " +
                    shapeText(weight.shape()),
                where);
  Tensor y = matmul(
      x, weight.dim() == 2 ? permute(weight, {1, 0}, where) : weight, where);
  return bias.defined() ? add(y, bias, where) : y;
}

Tensor layer_norm(const Tensor &x, std::vector<int64_t> normalizedShape,
                  const Tensor &weight, const Tensor &bias, double eps,
                  SourceLocation where) {
  requireFloat("layer_norm", x, where);
  const std::vector<int64_t> &shape = x.shape();
  size_t k = normalizedShape.size();
  if (k == 0)
    throw Error("layer_norm: normalized_shape must have at least one dim",
                where);
  if (k > shape.size() || !std::equal(normalizedShape.begin(),
                                      normalizedShape.end(), shape.end() - k))
    throw Error(
        "layer_norm: given normalized_shape=" + shapeText(normalizedShape) +
            ", expected input with shape [*, " +
            shapeText(normalizedShape).substr(1) + ", but got input of size " +
            shapeText(shape),
        where);
  auto checkAffine = [&](const char *name, const Tensor &t) {
    if (t.defined() && t.shape() != normalizedShape)
      throw Error(std::string("layer_norm: ") + name + " of shape " +
                      shapeText(t.shape()) + ", expected normalized_shape " +
                      shapeText(normalizedShape),
                  where);
  };
  checkAffine("weight", weight);
  checkAffine("bias", bias);
  std::vector<int64_t> dims;
  for (size_t d = shape.size() - k; d < shape.size(); ++d)
    dims.push_back(static_cast<int64_t>(d));
  Tensor centred = sub(x, mean(x, dims, /*keepdim=*/true, where), where);
  Tensor variance =
      mean(mul(centred, centred, where), dims, /*keepdim=*/true, where);
  Tensor y =
      mul(centred,
          rsqrt(add(variance, scalarLike(eps, variance, where), where), where),
          where);
  if (weight.defined())
    y = mul(y, weight, where);
  if (bias.defined())
    y = add(y, bias, where);
  return y;
}

Tensor silu(const Tensor &x, SourceLocation where) {
  requireFloat("silu", x, where);
  return mul(x, sigmoid(x, where), where);
}

Tensor leaky_relu(const Tensor &x, double negativeSlope, SourceLocation where) {
  requireFloat("leaky_relu", x, where);
  return kiln::where(gt(x, scalarLike(0.0, x, where), where), x,
                     mul(x, scalarLike(negativeSlope, x, where), where), where);
}

//===----------------------------------------------------------------------===//
// Methods
//===----------------------------------------------------------------------===//

Tensor Tensor::transpose(int64_t dim0, int64_t dim1,
                         SourceLocation where) const {
  return kiln::transpose(*this, dim0, dim1, where);
}
Tensor Tensor::squeeze(SourceLocation where) const {
  return kiln::squeeze(*this, where);
}
Tensor Tensor::squeeze(int64_t dim, SourceLocation where) const {
  return kiln::squeeze(*this, dim, where);
}
Tensor Tensor::unsqueeze(int64_t dim, SourceLocation where) const {
  return kiln::unsqueeze(*this, dim, where);
}
Tensor Tensor::flatten(int64_t startDim, int64_t endDim,
                       SourceLocation where) const {
  return kiln::flatten(*this, startDim, endDim, where);
}
Tensor Tensor::narrow(int64_t dim, int64_t start, int64_t length,
                      SourceLocation where) const {
  return kiln::narrow(*this, dim, start, length, where);
}
std::vector<Tensor> Tensor::split(int64_t splitSize, int64_t dim,
                                  SourceLocation where) const {
  return kiln::split(*this, splitSize, dim, where);
}
std::vector<Tensor> Tensor::chunk(int64_t chunks, int64_t dim,
                                  SourceLocation where) const {
  return kiln::chunk(*this, chunks, dim, where);
}
ValuesIndices Tensor::sort(int64_t dim, bool descending,
                           SourceLocation where) const {
  return kiln::sort(*this, dim, descending, where);
}
Tensor Tensor::argsort(int64_t dim, bool descending,
                       SourceLocation where) const {
  return kiln::argsort(*this, dim, descending, where);
}
Tensor Tensor::masked_fill(const Tensor &mask, Scalar value,
                           SourceLocation where) const {
  return kiln::masked_fill(*this, mask, value, where);
}
Tensor Tensor::var(std::vector<int64_t> dims, double correction, bool keepdim,
                   SourceLocation where) const {
  return kiln::var(*this, std::move(dims), correction, keepdim, where);
}
Tensor Tensor::std(std::vector<int64_t> dims, double correction, bool keepdim,
                   SourceLocation where) const {
  return kiln::std(*this, std::move(dims), correction, keepdim, where);
}
Tensor Tensor::logsumexp(std::vector<int64_t> dims, bool keepdim,
                         SourceLocation where) const {
  return kiln::logsumexp(*this, std::move(dims), keepdim, where);
}

} // namespace kiln
