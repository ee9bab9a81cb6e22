//===- kiln.h - The Kiln embedding API --------------------------*- C++ -*-===//
//
// Lazy tensors with PyTorch semantics. Ops only record graph nodes (their
// shapes and dtypes are checked at the call, with the caller's source
// location); reading a result (realize(), item(), toVector(), toString())
// compiles the pending graph through Kiln's pipeline and compile cache and
// runs it. Autograd (requiresGrad(), backward(), grad(), autograd::grad) is
// derived by the kiln-autodiff pass on the captured graph.
//
// This header has no MLIR or LLVM dependency. Errors are kiln::Error
// exceptions naming the op and the caller's file:line.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_KILN_H
#define KILN_KILN_H

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace kiln {

/// Element types (tools.md's .npy dtypes).
enum class DType { Float32, Float64, Int64, Int32, Bool };

/// Where an API call was made; defaulted arguments capture the caller's.
struct SourceLocation {
  const char *file = "";
  int line = 0;
  static SourceLocation current(const char *file = __builtin_FILE(),
                                int line = __builtin_LINE()) {
    return SourceLocation{file, line};
  }
};

#define KILN_HERE ::kiln::SourceLocation::current()

/// Every error of the API: bad shapes, dims, dtypes or arguments (at the op
/// call), out-of-range indices found while running, compile failures.
class Error : public std::runtime_error {
public:
  Error(const std::string &message, SourceLocation where);
  /// The caller's location the error refers to.
  const SourceLocation &where() const { return location; }

private:
  SourceLocation location;
};

namespace detail {
struct Node;
} // namespace detail

class Tensor;
struct ValuesIndices;

/// A number used as a tensor operand (`x * 0.5`, `x + 1`): like PyTorch's
/// wrapped numbers it takes the other operand's dtype when that is a float,
/// float32 when a float number meets an integer or bool tensor, an integer
/// tensor's dtype when it is an integer (i32 + 1 is i32), and int64 when an
/// integer meets a bool tensor.
class Scalar {
public:
  Scalar(double v) : value(v), isFloat(true) {}
  Scalar(float v) : value(v), isFloat(true) {}
  Scalar(int v) : value(v), isFloat(false) {}
  Scalar(int64_t v) : value(static_cast<double>(v)), isFloat(false) {}
  Scalar(bool v) : value(v ? 1.0 : 0.0), isFloat(false) {}
  double value;
  bool isFloat;
};

class Tensor {
public:
  /// An undefined tensor (defined() is false).
  Tensor() : result(0) {}

  /// A tensor holding a copy of `data`, of `shape` (default: 1-D).
  static Tensor fromVector(const std::vector<float> &data,
                           std::vector<int64_t> shape = {},
                           SourceLocation where = SourceLocation::current());
  static Tensor fromVector(const std::vector<double> &data,
                           std::vector<int64_t> shape = {},
                           SourceLocation where = SourceLocation::current());
  static Tensor fromVector(const std::vector<int64_t> &data,
                           std::vector<int64_t> shape = {},
                           SourceLocation where = SourceLocation::current());
  static Tensor fromVector(const std::vector<bool> &data,
                           std::vector<int64_t> shape = {},
                           SourceLocation where = SourceLocation::current());
  /// A tensor over caller-owned memory (row-major, `dtype`), not copied
  /// (unless misaligned for its element type): the memory must stay valid
  /// and unchanged while the tensor, or a pending result computed from it,
  /// may still be realized. Kiln never writes to it.
  static Tensor fromBlob(const void *data, std::vector<int64_t> shape,
                         DType dtype,
                         SourceLocation where = SourceLocation::current());

  bool defined() const { return node != nullptr; }
  DType dtype() const;
  const std::vector<int64_t> &shape() const;
  int64_t dim() const { return static_cast<int64_t>(shape().size()); }
  int64_t numel() const;
  /// Whether the value has been computed (leaves always are).
  bool isRealized() const;

  /// Compiles and runs the pending graph this tensor depends on.
  const Tensor &realize(SourceLocation where = SourceLocation::current()) const;
  /// The elements, converted to T, in row-major order (realizes).
  template <typename T>
  std::vector<T>
  toVector(SourceLocation where = SourceLocation::current()) const;
  /// The one element of a one-element tensor (realizes).
  template <typename T>
  T item(SourceLocation where = SourceLocation::current()) const;
  /// PyTorch's notation: `tensor([0.2000, 0.0000])` (realizes).
  std::string toString(SourceLocation where = SourceLocation::current()) const;
  /// The pending graph as kiln IR (`@graph`, leaves as arguments), which
  /// kiln-opt and kiln-run accept.
  std::string toMlir() const;
  /// Prints toMlir() to stderr.
  void dump() const;
  /// What the compiler does with the pending graph, without running it:
  /// its remarks (docs/fusion.md, docs/lowering.md), one per line -- the
  /// kernels fusion forms and the producers it leaves out with the reason
  /// (`[kiln-fuse]`, `[kiln-fuse, missed]`), each kernel's algorithm
  /// (`[kiln-lower]`) -- each at the source line where the op was recorded
  /// (operators have none: their line in toMlir(), as `graph.mlir:L:C`).
  std::string explain(SourceLocation where = SourceLocation::current()) const;

  // Autograd.
  /// Marks a floating-point leaf as an input gradients are computed for.
  Tensor &requiresGrad(bool requires = true,
                       SourceLocation where = SourceLocation::current());
  bool requiresGradFlag() const;
  /// Accumulates d(this)/d(leaf) · grad into every leaf's grad(); `grad`
  /// defaults to 1 for a one-element tensor.
  void backward(const Tensor &grad = Tensor(),
                SourceLocation where = SourceLocation::current()) const;
  /// The accumulated gradient of a leaf (undefined before backward()).
  Tensor grad() const;
  /// Clears the accumulated gradient.
  void zeroGrad();
  /// The value as a new leaf (realizes; shares the data): what an
  /// optimizer step assigns, cut off from the graph that computed it.
  Tensor detach(SourceLocation where = SourceLocation::current()) const;

  // Methods named like PyTorch's.
  Tensor pow(const Tensor &exponent,
             SourceLocation where = SourceLocation::current()) const;
  Tensor pow(Scalar exponent,
             SourceLocation where = SourceLocation::current()) const;
  Tensor sum(std::vector<int64_t> dims = {}, bool keepdim = false,
             SourceLocation where = SourceLocation::current()) const;
  Tensor mean(std::vector<int64_t> dims = {}, bool keepdim = false,
              SourceLocation where = SourceLocation::current()) const;
  Tensor exp(SourceLocation where = SourceLocation::current()) const;
  Tensor log(SourceLocation where = SourceLocation::current()) const;
  Tensor abs(SourceLocation where = SourceLocation::current()) const;
  Tensor sqrt(SourceLocation where = SourceLocation::current()) const;
  Tensor clamp(std::optional<double> min, std::optional<double> max,
               SourceLocation where = SourceLocation::current()) const;
  Tensor reshape(std::vector<int64_t> shape,
                 SourceLocation where = SourceLocation::current()) const;
  Tensor expand(std::vector<int64_t> shape,
                SourceLocation where = SourceLocation::current()) const;
  Tensor permute(std::vector<int64_t> dims,
                 SourceLocation where = SourceLocation::current()) const;
  /// The transpose of a 2-D tensor.
  Tensor t(SourceLocation where = SourceLocation::current()) const;
  Tensor to(DType dtype,
            SourceLocation where = SourceLocation::current()) const;
  Tensor matmul(const Tensor &other,
                SourceLocation where = SourceLocation::current()) const;
  Tensor neg(SourceLocation where = SourceLocation::current()) const;
  Tensor relu(SourceLocation where = SourceLocation::current()) const;
  Tensor sigmoid(SourceLocation where = SourceLocation::current()) const;
  Tensor tanh(SourceLocation where = SourceLocation::current()) const;
  Tensor floor(SourceLocation where = SourceLocation::current()) const;
  Tensor round(SourceLocation where = SourceLocation::current()) const;
  Tensor prod(std::vector<int64_t> dims = {}, bool keepdim = false,
              SourceLocation where = SourceLocation::current()) const;
  Tensor amax(std::vector<int64_t> dims = {}, bool keepdim = false,
              SourceLocation where = SourceLocation::current()) const;
  Tensor amin(std::vector<int64_t> dims = {}, bool keepdim = false,
              SourceLocation where = SourceLocation::current()) const;
  Tensor norm(double p = 2.0, std::vector<int64_t> dims = {},
              bool keepdim = false,
              SourceLocation where = SourceLocation::current()) const;
  Tensor argmax(std::optional<int64_t> dim = std::nullopt, bool keepdim = false,
                SourceLocation where = SourceLocation::current()) const;
  Tensor argmin(std::optional<int64_t> dim = std::nullopt, bool keepdim = false,
                SourceLocation where = SourceLocation::current()) const;
  Tensor softmax(int64_t dim,
                 SourceLocation where = SourceLocation::current()) const;
  Tensor log_softmax(int64_t dim,
                     SourceLocation where = SourceLocation::current()) const;
  Tensor gather(int64_t dim, const Tensor &index,
                SourceLocation where = SourceLocation::current()) const;
  Tensor index_select(int64_t dim, const Tensor &index,
                      SourceLocation where = SourceLocation::current()) const;
  Tensor take(const Tensor &index,
              SourceLocation where = SourceLocation::current()) const;
  Tensor ceil(SourceLocation where = SourceLocation::current()) const;
  Tensor trunc(SourceLocation where = SourceLocation::current()) const;
  Tensor frac(SourceLocation where = SourceLocation::current()) const;
  Tensor rsqrt(SourceLocation where = SourceLocation::current()) const;
  Tensor maximum(const Tensor &other,
                 SourceLocation where = SourceLocation::current()) const;
  Tensor minimum(const Tensor &other,
                 SourceLocation where = SourceLocation::current()) const;
  /// x.max() / x.min(): the extreme element.
  Tensor max(SourceLocation where = SourceLocation::current()) const;
  Tensor min(SourceLocation where = SourceLocation::current()) const;
  /// x.max(dim) / x.min(dim): values and indices.
  ValuesIndices max(int64_t dim, bool keepdim = false,
                    SourceLocation where = SourceLocation::current()) const;
  ValuesIndices min(int64_t dim, bool keepdim = false,
                    SourceLocation where = SourceLocation::current()) const;
  ValuesIndices topk(int64_t k, int64_t dim = -1, bool largest = true,
                     bool sorted = true,
                     SourceLocation where = SourceLocation::current()) const;
  ValuesIndices
  kthvalue(int64_t k, int64_t dim = -1, bool keepdim = false,
           SourceLocation where = SourceLocation::current()) const;
  Tensor scatter_add(int64_t dim, const Tensor &index, const Tensor &src,
                     SourceLocation where = SourceLocation::current()) const;
  Tensor index_add(int64_t dim, const Tensor &index, const Tensor &src,
                   SourceLocation where = SourceLocation::current()) const;
  Tensor put(const Tensor &index, const Tensor &src, bool accumulate = false,
             SourceLocation where = SourceLocation::current()) const;
  /// x.where(cond, other): x where cond holds, else other.
  Tensor where(const Tensor &cond, const Tensor &other,
               SourceLocation where = SourceLocation::current()) const;
  bool equal(const Tensor &other,
             SourceLocation where = SourceLocation::current()) const;
  // The PyTorch functions written with the ops (kiln::transpose, ...).
  Tensor transpose(int64_t dim0, int64_t dim1,
                   SourceLocation where = SourceLocation::current()) const;
  Tensor squeeze(SourceLocation where = SourceLocation::current()) const;
  Tensor squeeze(int64_t dim,
                 SourceLocation where = SourceLocation::current()) const;
  Tensor unsqueeze(int64_t dim,
                   SourceLocation where = SourceLocation::current()) const;
  Tensor flatten(int64_t startDim = 0, int64_t endDim = -1,
                 SourceLocation where = SourceLocation::current()) const;
  Tensor narrow(int64_t dim, int64_t start, int64_t length,
                SourceLocation where = SourceLocation::current()) const;
  std::vector<Tensor>
  split(int64_t splitSize, int64_t dim = 0,
        SourceLocation where = SourceLocation::current()) const;
  std::vector<Tensor>
  chunk(int64_t chunks, int64_t dim = 0,
        SourceLocation where = SourceLocation::current()) const;
  ValuesIndices sort(int64_t dim = -1, bool descending = false,
                     SourceLocation where = SourceLocation::current()) const;
  Tensor argsort(int64_t dim = -1, bool descending = false,
                 SourceLocation where = SourceLocation::current()) const;
  Tensor masked_fill(const Tensor &mask, Scalar value,
                     SourceLocation where = SourceLocation::current()) const;
  Tensor var(std::vector<int64_t> dims = {}, double correction = 1.0,
             bool keepdim = false,
             SourceLocation where = SourceLocation::current()) const;
  Tensor std(std::vector<int64_t> dims = {}, double correction = 1.0,
             bool keepdim = false,
             SourceLocation where = SourceLocation::current()) const;
  Tensor logsumexp(std::vector<int64_t> dims = {}, bool keepdim = false,
                   SourceLocation where = SourceLocation::current()) const;
  // Those of Functional.cpp that PyTorch also has as methods.
  Tensor isnan(SourceLocation where = SourceLocation::current()) const;
  Tensor isinf(SourceLocation where = SourceLocation::current()) const;
  Tensor isfinite(SourceLocation where = SourceLocation::current()) const;
  Tensor logical_not(SourceLocation where = SourceLocation::current()) const;
  Tensor any(SourceLocation where = SourceLocation::current()) const;
  Tensor any(int64_t dim, bool keepdim = false,
             SourceLocation where = SourceLocation::current()) const;
  Tensor all(SourceLocation where = SourceLocation::current()) const;
  Tensor all(int64_t dim, bool keepdim = false,
             SourceLocation where = SourceLocation::current()) const;
  Tensor sign(SourceLocation where = SourceLocation::current()) const;
  Tensor reciprocal(SourceLocation where = SourceLocation::current()) const;
  Tensor square(SourceLocation where = SourceLocation::current()) const;
  Tensor log1p(SourceLocation where = SourceLocation::current()) const;
  Tensor expm1(SourceLocation where = SourceLocation::current()) const;
  Tensor erf(SourceLocation where = SourceLocation::current()) const;
  Tensor flip(std::vector<int64_t> dims,
              SourceLocation where = SourceLocation::current()) const;
  Tensor roll(std::vector<int64_t> shifts, std::vector<int64_t> dims = {},
              SourceLocation where = SourceLocation::current()) const;
  Tensor repeat(std::vector<int64_t> repeats,
                SourceLocation where = SourceLocation::current()) const;
  Tensor tile(std::vector<int64_t> reps,
              SourceLocation where = SourceLocation::current()) const;
  Tensor tril(int64_t diagonal = 0,
              SourceLocation where = SourceLocation::current()) const;
  Tensor triu(int64_t diagonal = 0,
              SourceLocation where = SourceLocation::current()) const;
  Tensor dot(const Tensor &other,
             SourceLocation where = SourceLocation::current()) const;
  Tensor mv(const Tensor &vec,
            SourceLocation where = SourceLocation::current()) const;
  Tensor mm(const Tensor &other,
            SourceLocation where = SourceLocation::current()) const;
  Tensor bmm(const Tensor &other,
             SourceLocation where = SourceLocation::current()) const;
  Tensor outer(const Tensor &other,
               SourceLocation where = SourceLocation::current()) const;

  /// Internal: the graph node and result index.
  Tensor(std::shared_ptr<detail::Node> node, unsigned result)
      : node(std::move(node)), result(result) {}
  const std::shared_ptr<detail::Node> &getNode() const { return node; }
  unsigned getResult() const { return result; }

private:
  std::shared_ptr<detail::Node> node;
  unsigned result;
};

/// Values and indices (topk, kthvalue, max/min with dim).
struct ValuesIndices {
  Tensor values, indices;
};

using Loc = SourceLocation;
#define KILN_LOC SourceLocation where = SourceLocation::current()

// Creation.
Tensor full(std::vector<int64_t> shape, double value,
            DType dtype = DType::Float32, KILN_LOC);
Tensor zeros(std::vector<int64_t> shape, DType dtype = DType::Float32,
             KILN_LOC);
Tensor ones(std::vector<int64_t> shape, DType dtype = DType::Float32, KILN_LOC);
Tensor zeros_like(const Tensor &x, KILN_LOC);
Tensor ones_like(const Tensor &x, KILN_LOC);
Tensor arange(int64_t n, double start = 0.0, double step = 1.0,
              DType dtype = DType::Int64, KILN_LOC);

// Elementwise unary. As in PyTorch: sqrt, rsqrt, exp, log, sigmoid and tanh
// of integers and bools are float32; floor, ceil, trunc and round give
// integers back; relu of integers is max(x, 0); neg and abs of i32 are i32.
Tensor neg(const Tensor &x, KILN_LOC);
Tensor abs(const Tensor &x, KILN_LOC);
Tensor sqrt(const Tensor &x, KILN_LOC);
Tensor rsqrt(const Tensor &x, KILN_LOC);
Tensor exp(const Tensor &x, KILN_LOC);
Tensor log(const Tensor &x, KILN_LOC);
Tensor floor(const Tensor &x, KILN_LOC);
Tensor ceil(const Tensor &x, KILN_LOC);
Tensor trunc(const Tensor &x, KILN_LOC);
Tensor frac(const Tensor &x, KILN_LOC);
Tensor round(const Tensor &x, KILN_LOC);
Tensor sigmoid(const Tensor &x, KILN_LOC);
Tensor tanh(const Tensor &x, KILN_LOC);
Tensor relu(const Tensor &x, KILN_LOC);

// Elementwise binary, broadcasting, with PyTorch's type promotion
// (torch.result_type: a rank-0 operand raises the dtype of operands with
// dimensions only when of a higher category, bool < integer < float).
// i32 and bool arithmetic is computed in i64 and narrowed back, so i32
// wraps as in PyTorch; bool + bool is or, bool * bool and, bool - bool an
// error.
Tensor add(const Tensor &a, const Tensor &b, KILN_LOC);
Tensor sub(const Tensor &a, const Tensor &b, KILN_LOC);
Tensor mul(const Tensor &a, const Tensor &b, KILN_LOC);
Tensor div(const Tensor &a, const Tensor &b, KILN_LOC);
Tensor maximum(const Tensor &a, const Tensor &b, KILN_LOC);
Tensor minimum(const Tensor &a, const Tensor &b, KILN_LOC);
Tensor pow(const Tensor &a, const Tensor &b, KILN_LOC);
Tensor gt(const Tensor &a, const Tensor &b, KILN_LOC);
Tensor ge(const Tensor &a, const Tensor &b, KILN_LOC);
Tensor lt(const Tensor &a, const Tensor &b, KILN_LOC);
Tensor le(const Tensor &a, const Tensor &b, KILN_LOC);
Tensor eq(const Tensor &a, const Tensor &b, KILN_LOC);
Tensor ne(const Tensor &a, const Tensor &b, KILN_LOC);
/// A tensor operand from a number, in `like`'s dtype (PyTorch's promotion).
Tensor scalarLike(Scalar value, const Tensor &like, KILN_LOC);

Tensor clamp(const Tensor &x, std::optional<double> min,
             std::optional<double> max, KILN_LOC);
Tensor where(const Tensor &cond, const Tensor &a, const Tensor &b, KILN_LOC);
/// torch.where with numbers (wrapped as in `x + 1`; two numbers make a
/// float32 tensor if either is a float, else an int64 one).
Tensor where(const Tensor &cond, const Tensor &a, Scalar b, KILN_LOC);
Tensor where(const Tensor &cond, Scalar a, const Tensor &b, KILN_LOC);
Tensor where(const Tensor &cond, Scalar a, Scalar b, KILN_LOC);
Tensor cast(const Tensor &x, DType dtype, KILN_LOC);
/// torch.equal: same shape and elements, compared in the operands' common
/// dtype (a rank-0 bool tensor).
Tensor equal(const Tensor &a, const Tensor &b, KILN_LOC);

// Shape.
Tensor reshape(const Tensor &x, std::vector<int64_t> shape, KILN_LOC);
Tensor expand(const Tensor &x, std::vector<int64_t> shape, KILN_LOC);
Tensor permute(const Tensor &x, std::vector<int64_t> dims, KILN_LOC);

// Linear algebra.
Tensor matmul(const Tensor &a, const Tensor &b, KILN_LOC);

// Reductions (`dims` empty: all dims).
Tensor sum(const Tensor &x, std::vector<int64_t> dims = {},
           bool keepdim = false, KILN_LOC);
Tensor mean(const Tensor &x, std::vector<int64_t> dims = {},
            bool keepdim = false, KILN_LOC);
Tensor prod(const Tensor &x, std::vector<int64_t> dims = {},
            bool keepdim = false, KILN_LOC);
Tensor amax(const Tensor &x, std::vector<int64_t> dims = {},
            bool keepdim = false, KILN_LOC);
Tensor amin(const Tensor &x, std::vector<int64_t> dims = {},
            bool keepdim = false, KILN_LOC);
/// torch.max(x): the largest element.
Tensor max(const Tensor &x, KILN_LOC);
Tensor min(const Tensor &x, KILN_LOC);
/// torch.max(x, dim, keepdim).
ValuesIndices max(const Tensor &x, int64_t dim, bool keepdim = false, KILN_LOC);
ValuesIndices min(const Tensor &x, int64_t dim, bool keepdim = false, KILN_LOC);
/// torch.argmax: over `dim`, or the flattened tensor when absent.
Tensor argmax(const Tensor &x, std::optional<int64_t> dim = std::nullopt,
              bool keepdim = false, KILN_LOC);
Tensor argmin(const Tensor &x, std::optional<int64_t> dim = std::nullopt,
              bool keepdim = false, KILN_LOC);
Tensor norm(const Tensor &x, double p = 2.0, std::vector<int64_t> dims = {},
            bool keepdim = false, KILN_LOC);
ValuesIndices topk(const Tensor &x, int64_t k, int64_t dim = -1,
                   bool largest = true, bool sorted = true, KILN_LOC);
ValuesIndices kthvalue(const Tensor &x, int64_t k, int64_t dim = -1,
                       bool keepdim = false, KILN_LOC);

// Indexing.
Tensor gather(const Tensor &x, int64_t dim, const Tensor &index, KILN_LOC);
Tensor index_select(const Tensor &x, int64_t dim, const Tensor &index,
                    KILN_LOC);
Tensor take(const Tensor &x, const Tensor &index, KILN_LOC);
Tensor scatter_add(const Tensor &base, int64_t dim, const Tensor &index,
                   const Tensor &src, KILN_LOC);
Tensor index_add(const Tensor &base, int64_t dim, const Tensor &index,
                 const Tensor &src, KILN_LOC);
Tensor put(const Tensor &base, const Tensor &index, const Tensor &src,
           bool accumulate = false, KILN_LOC);

// Neural-network ops.
Tensor softmax(const Tensor &x, int64_t dim, KILN_LOC);
Tensor log_softmax(const Tensor &x, int64_t dim, KILN_LOC);
Tensor mse_loss(const Tensor &input, const Tensor &target,
                const std::string &reduction = "mean", KILN_LOC);
Tensor cross_entropy(const Tensor &logits, const Tensor &target,
                     const std::string &reduction = "mean", KILN_LOC);

// PyTorch functions written with the ops above (docs/api.md): their graph is
// those ops, so they fuse, lower and differentiate as code that wrote them
// out would. Dims may be negative; a dim out of range, or a dtype PyTorch
// refuses, is a kiln::Error at the call.
/// torch.transpose: `x` with dims `dim0` and `dim1` swapped.
Tensor transpose(const Tensor &x, int64_t dim0, int64_t dim1, KILN_LOC);
/// torch.squeeze: `x` without its dims of size 1 (all of them, or `dim`
/// when its size is 1; another size leaves `x` as it is).
Tensor squeeze(const Tensor &x, KILN_LOC);
Tensor squeeze(const Tensor &x, int64_t dim, KILN_LOC);
/// torch.unsqueeze: a dim of size 1 inserted at `dim` (in [-rank-1, rank]).
Tensor unsqueeze(const Tensor &x, int64_t dim, KILN_LOC);
/// torch.flatten: dims `startDim` to `endDim` merged into one (a rank-0
/// tensor becomes one element of rank 1).
Tensor flatten(const Tensor &x, int64_t startDim = 0, int64_t endDim = -1,
               KILN_LOC);
/// torch.narrow: `length` positions of `dim` from `start` (negative: from
/// the end), read through index_select.
Tensor narrow(const Tensor &x, int64_t dim, int64_t start, int64_t length,
              KILN_LOC);
/// torch.split: pieces of `splitSize` positions along `dim` (the last one
/// shorter), or of the given sizes (which must add up to the dim's size).
std::vector<Tensor> split(const Tensor &x, int64_t splitSize, int64_t dim = 0,
                          KILN_LOC);
std::vector<Tensor> split_with_sizes(const Tensor &x,
                                     std::vector<int64_t> splitSizes,
                                     int64_t dim = 0, KILN_LOC);
/// torch.chunk: at most `chunks` pieces of ceil(size / chunks) positions.
std::vector<Tensor> chunk(const Tensor &x, int64_t chunks, int64_t dim = 0,
                          KILN_LOC);
/// torch.cat: `tensors` joined along `dim` (their other sizes equal; dtypes
/// promoted; 1-D empty tensors skipped, as in PyTorch), and torch.stack:
/// joined along a new dim `dim` (their shapes equal).
Tensor cat(const std::vector<Tensor> &tensors, int64_t dim = 0, KILN_LOC);
Tensor stack(const std::vector<Tensor> &tensors, int64_t dim = 0, KILN_LOC);
/// torch.sort (stable: equal values keep their order; a NaN counts as
/// larger than every number) along `dim` -> {values, indices}, and
/// torch.argsort: topk of every element.
ValuesIndices sort(const Tensor &x, int64_t dim = -1, bool descending = false,
                   KILN_LOC);
Tensor argsort(const Tensor &x, int64_t dim = -1, bool descending = false,
               KILN_LOC);
/// Tensor.masked_fill: `value` (converted to x's dtype) where the bool
/// `mask` holds, else x (broadcasting both).
Tensor masked_fill(const Tensor &x, const Tensor &mask, Scalar value, KILN_LOC);
/// F.one_hot of an int64 tensor: a last dim of `numClasses` (-1: the
/// largest value + 1, which reads the data) holding 1 at each value. A
/// value outside [0, numClasses) is the runtime index error of the
/// index_select that picks the rows.
Tensor one_hot(const Tensor &x, int64_t numClasses = -1, KILN_LOC);
/// F.nll_loss of log-probabilities [N, C] (or [C]) and int64 class
/// indices [N] (or []): -input[n, target[n]], averaged over the targets
/// that are not `ignoreIndex` ("mean"), summed, or per target ("none", 0
/// at ignored ones).
Tensor nll_loss(const Tensor &input, const Tensor &target,
                const std::string &reduction = "mean",
                int64_t ignoreIndex = -100, KILN_LOC);
/// F.l1_loss: |input - target|, reduced like mse_loss.
Tensor l1_loss(const Tensor &input, const Tensor &target,
               const std::string &reduction = "mean", KILN_LOC);
/// F.binary_cross_entropy_with_logits (PyTorch's overflow-free form).
Tensor binary_cross_entropy_with_logits(const Tensor &input,
                                        const Tensor &target,
                                        const std::string &reduction = "mean",
                                        KILN_LOC);
/// torch.var and torch.std over `dims` (empty: all) of a float tensor: the
/// sum of squared deviations from the mean divided by max(0, N -
/// correction), N the number of elements reduced (correction 1: the
/// unbiased estimate, 0: the population's).
Tensor var(const Tensor &x, std::vector<int64_t> dims = {},
           double correction = 1.0, bool keepdim = false, KILN_LOC);
Tensor std(const Tensor &x, std::vector<int64_t> dims = {},
           double correction = 1.0, bool keepdim = false, KILN_LOC);
/// torch.logsumexp over `dims` (empty: all): log(sum(exp(x - m))) + m with
/// m the maximum (0 where it is infinite), so large values do not
/// overflow. Integers and bools are computed in float32, as in PyTorch.
Tensor logsumexp(const Tensor &x, std::vector<int64_t> dims = {},
                 bool keepdim = false, KILN_LOC);
/// F.linear: x @ weight^T (+ bias), weight [out, in] (or [in]: x @ weight).
Tensor linear(const Tensor &x, const Tensor &weight,
              const Tensor &bias = Tensor(), KILN_LOC);
/// F.layer_norm over the trailing dims `normalizedShape`: (x - mean) /
/// sqrt(var + eps) with the biased variance, times `weight` and plus `bias`
/// (each of shape `normalizedShape`) when given.
Tensor layer_norm(const Tensor &x, std::vector<int64_t> normalizedShape,
                  const Tensor &weight = Tensor(),
                  const Tensor &bias = Tensor(), double eps = 1e-5, KILN_LOC);
/// F.silu: x * sigmoid(x).
Tensor silu(const Tensor &x, KILN_LOC);
/// F.leaky_relu: x where x > 0, else x * negativeSlope.
Tensor leaky_relu(const Tensor &x, double negativeSlope = 0.01, KILN_LOC);

// More PyTorch functions written with the ops (Functional.cpp; docs/api.md).
// Predicates and logical functions: bool results, no gradient.
/// torch.isnan, isinf, isfinite (integers: never NaN or infinite).
Tensor isnan(const Tensor &x, KILN_LOC);
Tensor isinf(const Tensor &x, KILN_LOC);
Tensor isfinite(const Tensor &x, KILN_LOC);
/// torch.logical_not/and/or/xor of the truth values (x != 0; NaN is true)
/// of tensors of any dtype, broadcasting.
Tensor logical_not(const Tensor &x, KILN_LOC);
Tensor logical_and(const Tensor &a, const Tensor &b, KILN_LOC);
Tensor logical_or(const Tensor &a, const Tensor &b, KILN_LOC);
Tensor logical_xor(const Tensor &a, const Tensor &b, KILN_LOC);
/// torch.any and torch.all, of every element or along `dim` (an empty
/// reduction: false for any, true for all).
Tensor any(const Tensor &x, KILN_LOC);
Tensor any(const Tensor &x, int64_t dim, bool keepdim = false, KILN_LOC);
Tensor all(const Tensor &x, KILN_LOC);
Tensor all(const Tensor &x, int64_t dim, bool keepdim = false, KILN_LOC);
/// torch.sign: -1, 0 or 1 in x's dtype (0 for NaN, as PyTorch 1.13; a
/// bool tensor as it is); its gradient is 0.
Tensor sign(const Tensor &x, KILN_LOC);
/// torch.nan_to_num: NaN -> `nan`, +inf -> `posinf`, -inf -> `neginf`
/// (default: the dtype's largest and lowest finite values); integer
/// tensors unchanged.
Tensor nan_to_num(const Tensor &x, double nan = 0.0,
                  std::optional<double> posinf = std::nullopt,
                  std::optional<double> neginf = std::nullopt, KILN_LOC);

// Pointwise math. Integers and bools are computed in float32 where
// PyTorch's result is a float.
/// torch.reciprocal: 1 / x.
Tensor reciprocal(const Tensor &x, KILN_LOC);
/// torch.square: x * x (a bool tensor gives int64, as PyTorch).
Tensor square(const Tensor &x, KILN_LOC);
/// torch.log1p and torch.expm1, accurate for small |x| (within about an
/// ulp of the exact value; written with log and exp, see docs/api.md).
Tensor log1p(const Tensor &x, KILN_LOC);
Tensor expm1(const Tensor &x, KILN_LOC);
/// torch.erf, the error function (the dialect's kiln.erf).
Tensor erf(const Tensor &x, KILN_LOC);
/// torch.lerp: start + weight * (end - start) (PyTorch's two-sided
/// formula, exact at weight 0 and 1); one float dtype for all three.
Tensor lerp(const Tensor &start, const Tensor &end, const Tensor &weight,
            KILN_LOC);
Tensor lerp(const Tensor &start, const Tensor &end, double weight, KILN_LOC);
/// torch.addcmul: input + value * tensor1 * tensor2, and torch.addcdiv:
/// input + value * tensor1 / tensor2 (not of two integer tensors).
Tensor addcmul(const Tensor &input, const Tensor &tensor1,
               const Tensor &tensor2, Scalar value = 1, KILN_LOC);
Tensor addcdiv(const Tensor &input, const Tensor &tensor1,
               const Tensor &tensor2, Scalar value = 1, KILN_LOC);

// Activations (float tensors; PyTorch's formulas and gradients).
/// F.softplus: log(1 + exp(beta x)) / beta, x where beta x > threshold.
Tensor softplus(const Tensor &x, double beta = 1.0, double threshold = 20.0,
                KILN_LOC);
/// F.elu (x > 0 ? x : alpha (exp(x) - 1)), F.selu (PyTorch's scale and
/// alpha) and F.celu (x > 0 ? x : alpha (exp(x / alpha) - 1)).
Tensor elu(const Tensor &x, double alpha = 1.0, KILN_LOC);
Tensor selu(const Tensor &x, KILN_LOC);
Tensor celu(const Tensor &x, double alpha = 1.0, KILN_LOC);
/// F.gelu: x * Phi(x) with the normal CDF through erf ("none"), or its
/// tanh approximation ("tanh").
Tensor gelu(const Tensor &x, const std::string &approximate = "none", KILN_LOC);
/// F.hardtanh: x clamped to [minValue, maxValue], its gradient 0 at the
/// bounds (PyTorch's rule, unlike clamp's); F.relu6: hardtanh(x, 0, 6).
Tensor hardtanh(const Tensor &x, double minValue = -1.0, double maxValue = 1.0,
                KILN_LOC);
Tensor relu6(const Tensor &x, KILN_LOC);
/// F.hardsigmoid: min(max(x + 3, 0), 6) / 6; F.hardswish: x times that.
Tensor hardsigmoid(const Tensor &x, KILN_LOC);
Tensor hardswish(const Tensor &x, KILN_LOC);
/// F.mish: x * tanh(softplus(x)).
Tensor mish(const Tensor &x, KILN_LOC);
/// F.logsigmoid: log(sigmoid(x)) without overflow.
Tensor logsigmoid(const Tensor &x, KILN_LOC);
/// F.softsign: x / (1 + |x|).
Tensor softsign(const Tensor &x, KILN_LOC);
/// F.softmin: softmax(-x, dim).
Tensor softmin(const Tensor &x, int64_t dim, KILN_LOC);
/// F.hardshrink (0 where -lambd <= x <= lambd, else x), F.softshrink (x
/// moved lambd towards 0, 0 inside) and F.tanhshrink (x - tanh(x)).
Tensor hardshrink(const Tensor &x, double lambd = 0.5, KILN_LOC);
Tensor softshrink(const Tensor &x, double lambd = 0.5, KILN_LOC);
Tensor tanhshrink(const Tensor &x, KILN_LOC);
/// F.threshold: value where x <= threshold, else x (float or integer x).
Tensor threshold(const Tensor &x, double threshold, double value, KILN_LOC);
/// F.glu: the first half of `dim` times the sigmoid of the second.
Tensor glu(const Tensor &x, int64_t dim = -1, KILN_LOC);

// Losses and similarities (float operands; reduction as mse_loss's).
/// F.smooth_l1_loss: 0.5 d^2 / beta where |d| < beta, else |d| - beta / 2
/// (beta 0: l1_loss).
Tensor smooth_l1_loss(const Tensor &input, const Tensor &target,
                      const std::string &reduction = "mean", double beta = 1.0,
                      KILN_LOC);
/// F.huber_loss: 0.5 d^2 where |d| < delta, else delta (|d| - delta / 2).
Tensor huber_loss(const Tensor &input, const Tensor &target,
                  const std::string &reduction = "mean", double delta = 1.0,
                  KILN_LOC);
/// F.kl_div of log-probabilities `input` and probabilities `target` (or
/// log-probabilities with logTarget); reduction also "batchmean" (the sum
/// over the size of dim 0).
Tensor kl_div(const Tensor &input, const Tensor &target,
              const std::string &reduction = "mean", bool logTarget = false,
              KILN_LOC);
/// F.cosine_similarity along `dim` (broadcasting): the sum of the
/// products of x1 and x2 each divided by its norm (at least eps).
Tensor cosine_similarity(const Tensor &x1, const Tensor &x2, int64_t dim = 1,
                         double eps = 1e-8, KILN_LOC);
/// F.normalize: x divided by its p-norm along `dim` (at least eps).
Tensor normalize(const Tensor &x, double p = 2.0, int64_t dim = 1,
                 double eps = 1e-12, KILN_LOC);
/// F.margin_ranking_loss: max(0, -target (x1 - x2) + margin), inputs of
/// one rank.
Tensor margin_ranking_loss(const Tensor &input1, const Tensor &input2,
                           const Tensor &target, double margin = 0.0,
                           const std::string &reduction = "mean", KILN_LOC);
/// F.hinge_embedding_loss: x where target != -1, plus max(0, margin - x)
/// where target != 1.
Tensor hinge_embedding_loss(const Tensor &input, const Tensor &target,
                            double margin = 1.0,
                            const std::string &reduction = "mean", KILN_LOC);
/// F.soft_margin_loss: log(1 + exp(-input * target)).
Tensor soft_margin_loss(const Tensor &input, const Tensor &target,
                        const std::string &reduction = "mean", KILN_LOC);
/// F.poisson_nll_loss: exp(input) - target input (logInput), else input -
/// target log(input + eps); full adds Stirling's term where target > 1.
Tensor poisson_nll_loss(const Tensor &input, const Tensor &target,
                        bool logInput = true, bool full = false,
                        double eps = 1e-8,
                        const std::string &reduction = "mean", KILN_LOC);
/// F.multilabel_soft_margin_loss: the class-mean (last dim) of
/// -(t logsigmoid(x) + (1 - t) logsigmoid(-x)).
Tensor multilabel_soft_margin_loss(const Tensor &input, const Tensor &target,
                                   const std::string &reduction = "mean",
                                   KILN_LOC);
/// F.pairwise_distance: the p-norm of x1 - x2 + eps over the last dim.
Tensor pairwise_distance(const Tensor &x1, const Tensor &x2, double p = 2.0,
                         double eps = 1e-6, bool keepdim = false, KILN_LOC);
/// F.triplet_margin_loss: max(0, margin + d(a, p) - d(a, n)) with d the
/// pairwise distance (swap: d(a, n) at most d(p, n)).
Tensor triplet_margin_loss(const Tensor &anchor, const Tensor &positive,
                           const Tensor &negative, double margin = 1.0,
                           double p = 2.0, double eps = 1e-6, bool swap = false,
                           const std::string &reduction = "mean", KILN_LOC);

// Shape and matrix functions.
/// torch.flip: the order of `dims` reversed (index_select each).
Tensor flip(const Tensor &x, std::vector<int64_t> dims, KILN_LOC);
/// torch.roll: elements shifted along `dims` by `shifts` (wrapping round);
/// without dims, the flattened tensor by one shift.
Tensor roll(const Tensor &x, std::vector<int64_t> shifts,
            std::vector<int64_t> dims = {}, KILN_LOC);
/// Tensor.repeat: x tiled `repeats[i]` times along each dim (more repeats
/// than dims add leading dims); torch.tile: fewer reps are padded with 1s.
Tensor repeat(const Tensor &x, std::vector<int64_t> repeats, KILN_LOC);
Tensor tile(const Tensor &x, std::vector<int64_t> reps, KILN_LOC);
/// torch.tril and torch.triu: the last two dims' lower (col - row <=
/// diagonal) or upper (>=) triangle, zeros elsewhere.
Tensor tril(const Tensor &x, int64_t diagonal = 0, KILN_LOC);
Tensor triu(const Tensor &x, int64_t diagonal = 0, KILN_LOC);
/// torch.eye: n x m (m < 0: n x n), ones on the diagonal.
Tensor eye(int64_t n, int64_t m = -1, DType dtype = DType::Float32, KILN_LOC);
/// torch.outer of two 1-D tensors (promoting).
Tensor outer(const Tensor &a, const Tensor &b, KILN_LOC);
/// torch.dot (1-D . 1-D), mv (2-D . 1-D), mm (2-D . 2-D), bmm (3-D . 3-D,
/// one batch size): matmul with PyTorch's checks (ranks, one dtype).
Tensor dot(const Tensor &a, const Tensor &b, KILN_LOC);
Tensor mv(const Tensor &a, const Tensor &v, KILN_LOC);
Tensor mm(const Tensor &a, const Tensor &b, KILN_LOC);
Tensor bmm(const Tensor &a, const Tensor &b, KILN_LOC);
/// torch.addmm: beta * input + alpha * (a @ b), input broadcasting to the
/// product (beta 0: input ignored).
Tensor addmm(const Tensor &input, const Tensor &a, const Tensor &b,
             double beta = 1.0, double alpha = 1.0, KILN_LOC);
/// torch.trace: the sum of a matrix's diagonal (integers to int64).
Tensor trace(const Tensor &x, KILN_LOC);

#undef KILN_LOC

// Operators (broadcasting, PyTorch's promotion; numbers are wrapped).
Tensor operator-(const Tensor &x);
Tensor operator+(const Tensor &a, const Tensor &b);
Tensor operator-(const Tensor &a, const Tensor &b);
Tensor operator*(const Tensor &a, const Tensor &b);
Tensor operator/(const Tensor &a, const Tensor &b);
Tensor operator+(const Tensor &a, Scalar b);
Tensor operator-(const Tensor &a, Scalar b);
Tensor operator*(const Tensor &a, Scalar b);
Tensor operator/(const Tensor &a, Scalar b);
Tensor operator+(Scalar a, const Tensor &b);
Tensor operator-(Scalar a, const Tensor &b);
Tensor operator*(Scalar a, const Tensor &b);
Tensor operator/(Scalar a, const Tensor &b);
Tensor operator>(const Tensor &a, const Tensor &b);
Tensor operator>=(const Tensor &a, const Tensor &b);
Tensor operator<(const Tensor &a, const Tensor &b);
Tensor operator<=(const Tensor &a, const Tensor &b);
Tensor operator==(const Tensor &a, const Tensor &b);
Tensor operator!=(const Tensor &a, const Tensor &b);
Tensor operator>(const Tensor &a, Scalar b);
Tensor operator>=(const Tensor &a, Scalar b);
Tensor operator<(const Tensor &a, Scalar b);
Tensor operator<=(const Tensor &a, Scalar b);
Tensor operator==(const Tensor &a, Scalar b);
Tensor operator!=(const Tensor &a, Scalar b);
Tensor operator>(Scalar a, const Tensor &b);
Tensor operator>=(Scalar a, const Tensor &b);
Tensor operator<(Scalar a, const Tensor &b);
Tensor operator<=(Scalar a, const Tensor &b);
Tensor operator==(Scalar a, const Tensor &b);
Tensor operator!=(Scalar a, const Tensor &b);

namespace autograd {
/// Gradients of `outputs` (weighted by `gradOutputs`; default 1 for
/// one-element outputs) with respect to `inputs`, which may be leaves or
/// intermediate tensors. Graphs are immutable, so `retainGraph` only exists
/// for PyTorch compatibility: a graph can always be differentiated again.
std::vector<Tensor> grad(const std::vector<Tensor> &outputs,
                         const std::vector<Tensor> &inputs,
                         const std::vector<Tensor> &gradOutputs = {},
                         bool retainGraph = false,
                         SourceLocation where = SourceLocation::current());
} // namespace autograd

/// Loads the public function `entry` (default: the only one) of an IR file
/// and calls it on `args` lazily: the results are graph nodes like any op's
/// (the call is inlined when the graph compiles, so it fuses with the ops
/// around it and can be differentiated). The function must not call others.
std::vector<Tensor> callIR(const std::string &path,
                           const std::vector<Tensor> &args,
                           const std::string &entry = "",
                           SourceLocation where = SourceLocation::current());

/// The spelling of a dtype (`f32`, `i64`, ...).
const char *dtypeName(DType dtype);

/// Worker threads each graph runs on, from 1 to 1024 (default: the
/// environment variable KILN_NUM_THREADS if set, clamped to that range,
/// else every hardware thread); another count throws kiln::Error. Results
/// are the same bits for every thread count.
void setNumThreads(int threads,
                   SourceLocation where = SourceLocation::current());
int getNumThreads();

/// Where graphs run.
enum class Device {
  CPU,  ///< the host's cores (the default)
  CUDA, ///< the first NVIDIA GPU, through the CUDA driver
};

/// Selects the device graphs realized from now on run on (process-wide).
/// Tensors stay host data either way: a CUDA run copies the graph's inputs
/// to the GPU and its results back. Throws kiln::Error for Device::CUDA when
/// no usable GPU (or CUDA driver) is present.
void setDevice(Device device, SourceLocation where = SourceLocation::current());
Device getDevice();

/// Whether Device::CUDA can be used; if not, `reason` says why.
bool isCudaAvailable(std::string *reason = nullptr);

/// How many compiled graphs the process keeps for reuse (default 256): the
/// least recently used beyond it are dropped, so that a program that builds
/// ever new graphs (shapes that keep changing) does not grow without bound.
/// A limit below 1 throws kiln::Error. The compile cache's object code is
/// bounded too (256 MiB in memory; the disk cache keeps every entry).
void setCompiledGraphLimit(int64_t graphs,
                           SourceLocation where = SourceLocation::current());
int64_t getCompiledGraphLimit();

/// Counters of this process's graph compilations, for tests and tuning.
struct RuntimeStats {
  /// Graphs lowered or loaded into the JIT (each distinct graph once).
  int64_t graphsCompiled = 0;
  /// Realizations that reused an already compiled graph.
  int64_t graphsReused = 0;
  /// Of graphsCompiled, how many came from the compile cache (memory or
  /// disk) instead of the pipeline.
  int64_t compileCacheHits = 0;
  /// Graph executions.
  int64_t runs = 0;
  /// Compiled graphs kept for reuse now (at most getCompiledGraphLimit()).
  int64_t graphsCached = 0;
  /// Compiled graphs dropped to stay within the limit (a dropped graph that
  /// recurs is compiled again, usually from the compile cache).
  int64_t graphsEvicted = 0;
};
RuntimeStats runtimeStats();

} // namespace kiln

#endif // KILN_KILN_H
