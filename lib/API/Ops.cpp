//===- Ops.cpp - The ops of the Kiln embedding API ------------------------===//
//
// One function per op of ops.md, named like PyTorch's; each records a graph
// node (checked at once by the dialect) with the op's generic-form
// attributes. Binary ops apply PyTorch's type promotion by inserting casts.
//
//===----------------------------------------------------------------------===//

#include "Internal.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace rt = kiln::runtime;

namespace kiln {

namespace {

using detail::makeOp;

using detail::isFloat;
rt::DType runtimeType(DType d) { return detail::toRuntime(d); }

/// An f64 attribute as MLIR prints it (hex for inf/NaN).
std::string f64(double v) {
  if (!std::isfinite(v)) {
    uint64_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "0x%016llX : f64",
                  static_cast<unsigned long long>(bits));
    return buffer;
  }
  // The shortest text that reads back as `v`; MLIR's float literals need
  // a '.' in the mantissa ("1.0e+20", not "1e+20").
  char buffer[40];
  char *end = std::to_chars(buffer, buffer + sizeof buffer, v).ptr;
  std::string text(buffer, end);
  if (text.find('.') == std::string::npos)
    text.insert(std::min(text.find('e'), text.size()), ".0");
  return text + " : f64";
}

std::string i64(int64_t v) { return std::to_string(v) + " : i64"; }
std::string boolean(bool v) { return v ? "true" : "false"; }

std::string dimsList(const std::vector<int64_t> &dims) {
  std::string text = "array<i64";
  for (size_t i = 0; i < dims.size(); ++i)
    text += (i ? ", " : ": ") + std::to_string(dims[i]);
  return text + ">";
}

/// `{a = x, b = y}` from non-empty entries.
std::string attrs(std::initializer_list<std::string> entries) {
  std::string text;
  for (const std::string &entry : entries)
    if (!entry.empty())
      text += (text.empty() ? "" : ", ") + entry;
  return text.empty() ? "" : "{" + text + "}";
}

Tensor typed(const std::string &op, std::vector<Tensor> inputs,
             const std::string &attributes, rt::TensorSpec type,
             SourceLocation where) {
  // Shapes the caller gives (full, arange, reshape, expand): MLIR would
  // take a negative size for a dynamic one.
  detail::elementCount(type.shape, op.substr(op.find('.') + 1), where);
  std::vector<rt::TensorSpec> types{std::move(type)};
  return makeOp(op, std::move(inputs), attributes, where, &types);
}

/// Ops whose result has the operand's type (unary, clamp, *_like).
Tensor sameType(const std::string &op, const Tensor &x,
                const std::string &attributes, SourceLocation where) {
  if (!x.defined())
    throw Error(op + ": undefined tensor", where);
  return typed(op, {x}, attributes, {runtimeType(x.dtype()), x.shape()}, where);
}

int rank(DType d) {
  switch (d) {
  case DType::Bool:
    return 0;
  case DType::Int32:
    return 1;
  case DType::Int64:
    return 2;
  case DType::Float32:
    return 3;
  case DType::Float64:
    return 4;
  }
  return 0;
}

/// PyTorch's promotion of two tensor dtypes.
DType promote(DType a, DType b) { return rank(a) >= rank(b) ? a : b; }

Tensor castTo(const Tensor &x, DType dtype, SourceLocation where) {
  return x.dtype() == dtype ? x : cast(x, dtype, where);
}

Tensor binary(const char *op, const Tensor &a, const Tensor &b,
              SourceLocation where) {
  if (!a.defined() || !b.defined())
    throw Error(std::string(op) + ": undefined tensor", where);
  DType common = promote(a.dtype(), b.dtype());
  return makeOp(op, {castTo(a, common, where), castTo(b, common, where)}, "",
                where, nullptr);
}

/// Float-only binary ops (div, pow) promote integers to float32.
Tensor floatBinary(const char *op, const Tensor &a, const Tensor &b,
                   SourceLocation where) {
  if (!a.defined() || !b.defined())
    throw Error(std::string(op) + ": undefined tensor", where);
  DType common = promote(a.dtype(), b.dtype());
  if (!isFloat(common))
    common = DType::Float32;
  return makeOp(op, {castTo(a, common, where), castTo(b, common, where)}, "",
                where, nullptr);
}

std::string reductionAttrs(const std::vector<int64_t> &dims, bool keepdim) {
  return attrs({dims.empty() ? "" : "dims = " + dimsList(dims),
                keepdim ? "keepdim = true" : ""});
}

ValuesIndices pair(const std::string &op, const Tensor &x,
                   const std::string &attributes, SourceLocation where) {
  if (!x.defined())
    throw Error(op + ": undefined tensor", where);
  Tensor values = makeOp(op, {x}, attributes, where, nullptr);
  return {values, Tensor(values.getNode(), 1)};
}

} // namespace

//===----------------------------------------------------------------------===//
// Creation
//===----------------------------------------------------------------------===//

Tensor full(std::vector<int64_t> shape, double value, DType dtype,
            SourceLocation where) {
  return typed("kiln.full", {}, attrs({"value = " + f64(value)}),
               {runtimeType(dtype), std::move(shape)}, where);
}
Tensor zeros(std::vector<int64_t> shape, DType dtype, SourceLocation where) {
  return full(std::move(shape), 0.0, dtype, where);
}
Tensor ones(std::vector<int64_t> shape, DType dtype, SourceLocation where) {
  return full(std::move(shape), 1.0, dtype, where);
}
Tensor zeros_like(const Tensor &x, SourceLocation where) {
  return sameType("kiln.zeros_like", x, "", where);
}
Tensor ones_like(const Tensor &x, SourceLocation where) {
  return sameType("kiln.ones_like", x, "", where);
}
Tensor arange(int64_t n, double start, double step, DType dtype,
              SourceLocation where) {
  return typed("kiln.arange", {},
               attrs({"start = " + f64(start), "step = " + f64(step)}),
               {runtimeType(dtype), {n}}, where);
}

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

#define KILN_UNARY(name)                                                       \
  Tensor name(const Tensor &x, SourceLocation where) {                         \
    return sameType("kiln." #name, x, "", where);                              \
  }
KILN_UNARY(neg)
KILN_UNARY(abs)
KILN_UNARY(sqrt)
KILN_UNARY(rsqrt)
KILN_UNARY(exp)
KILN_UNARY(log)
KILN_UNARY(floor)
KILN_UNARY(ceil)
KILN_UNARY(trunc)
KILN_UNARY(frac)
KILN_UNARY(round)
KILN_UNARY(sigmoid)
KILN_UNARY(tanh)
KILN_UNARY(relu)
#undef KILN_UNARY

#define KILN_BINARY(name, helper)                                              \
  Tensor name(const Tensor &a, const Tensor &b, SourceLocation where) {        \
    return helper("kiln." #name, a, b, where);                                 \
  }
KILN_BINARY(add, binary)
KILN_BINARY(sub, binary)
KILN_BINARY(mul, binary)
KILN_BINARY(maximum, binary)
KILN_BINARY(minimum, binary)
KILN_BINARY(gt, binary)
KILN_BINARY(ge, binary)
KILN_BINARY(lt, binary)
KILN_BINARY(le, binary)
KILN_BINARY(eq, binary)
KILN_BINARY(ne, binary)
KILN_BINARY(div, floatBinary)
KILN_BINARY(pow, floatBinary)
#undef KILN_BINARY

Tensor scalarLike(Scalar value, const Tensor &like, SourceLocation where) {
  // An undefined `like` gets a float32 number: the op it is for reports it.
  DType dtype = like.defined() ? like.dtype() : DType::Float32;
  if (!isFloat(dtype))
    dtype = value.isFloat ? DType::Float32 : DType::Int64;
  return full({}, value.value, dtype, where);
}

Tensor clamp(const Tensor &x, std::optional<double> min,
             std::optional<double> max, SourceLocation where) {
  return sameType(
      "kiln.clamp", x,
      attrs({min ? "min = " + f64(*min) : "", max ? "max = " + f64(*max) : ""}),
      where);
}

Tensor where(const Tensor &cond, const Tensor &a, const Tensor &b,
             SourceLocation where) {
  if (!cond.defined() || !a.defined() || !b.defined())
    throw Error("where: undefined tensor", where);
  // PyTorch's rule: no implicit truth value of numbers.
  if (cond.dtype() != DType::Bool)
    throw Error(
        std::string("where: the condition must be a bool tensor, not ") +
            dtypeName(cond.dtype()),
        where);
  DType common = promote(a.dtype(), b.dtype());
  return makeOp("kiln.where",
                {cond, castTo(a, common, where), castTo(b, common, where)}, "",
                where, nullptr);
}

Tensor cast(const Tensor &x, DType dtype, SourceLocation where) {
  if (!x.defined())
    throw Error("cast: undefined tensor", where);
  return typed("kiln.cast", {x}, "", {runtimeType(dtype), x.shape()}, where);
}

Tensor equal(const Tensor &a, const Tensor &b, SourceLocation where) {
  return makeOp("kiln.equal", {a, b}, "", where, nullptr);
}

//===----------------------------------------------------------------------===//
// Shape, linear algebra
//===----------------------------------------------------------------------===//

Tensor reshape(const Tensor &x, std::vector<int64_t> shape,
               SourceLocation where) {
  if (!x.defined())
    throw Error("reshape: undefined tensor", where);
  // One -1 is inferred, as in PyTorch.
  int64_t known = 1, inferred = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (inferred >= 0)
        throw Error("reshape: only one dimension can be -1", where);
      inferred = static_cast<int64_t>(i);
    } else {
      known *= shape[i];
    }
  }
  if (inferred >= 0 && known > 0)
    shape[inferred] = x.numel() / known;
  return typed("kiln.reshape", {x}, "", {runtimeType(x.dtype()), shape}, where);
}

Tensor expand(const Tensor &x, std::vector<int64_t> shape,
              SourceLocation where) {
  if (!x.defined())
    throw Error("expand: undefined tensor", where);
  // -1 keeps the size of the dim it lines up with, as in PyTorch.
  std::vector<int64_t> from = x.shape();
  for (size_t i = 0; i < shape.size(); ++i) {
    size_t leading = shape.size() - std::min(shape.size(), from.size());
    if (shape[i] == -1 && i >= leading)
      shape[i] = from[i - leading];
  }
  return typed("kiln.expand", {x}, "", {runtimeType(x.dtype()), shape}, where);
}

Tensor permute(const Tensor &x, std::vector<int64_t> dims,
               SourceLocation where) {
  return makeOp("kiln.permute", {x}, attrs({"dims = " + dimsList(dims)}), where,
                nullptr);
}

Tensor matmul(const Tensor &a, const Tensor &b, SourceLocation where) {
  return binary("kiln.matmul", a, b, where);
}

//===----------------------------------------------------------------------===//
// Reductions
//===----------------------------------------------------------------------===//

#define KILN_REDUCTION(name)                                                   \
  Tensor name(const Tensor &x, std::vector<int64_t> dims, bool keepdim,        \
              SourceLocation where) {                                          \
    return makeOp("kiln." #name, {x}, reductionAttrs(dims, keepdim), where,    \
                  nullptr);                                                    \
  }
KILN_REDUCTION(sum)
KILN_REDUCTION(mean)
KILN_REDUCTION(prod)
KILN_REDUCTION(amax)
KILN_REDUCTION(amin)
#undef KILN_REDUCTION

Tensor max(const Tensor &x, SourceLocation where) {
  return amax(x, {}, false, where);
}
Tensor min(const Tensor &x, SourceLocation where) {
  return amin(x, {}, false, where);
}
ValuesIndices max(const Tensor &x, int64_t dim, bool keepdim,
                  SourceLocation where) {
  return pair("kiln.max", x,
              attrs({"dim = " + i64(dim), keepdim ? "keepdim = true" : ""}),
              where);
}
ValuesIndices min(const Tensor &x, int64_t dim, bool keepdim,
                  SourceLocation where) {
  return pair("kiln.min", x,
              attrs({"dim = " + i64(dim), keepdim ? "keepdim = true" : ""}),
              where);
}
Tensor argmax(const Tensor &x, std::optional<int64_t> dim, bool keepdim,
              SourceLocation where) {
  return makeOp(
      "kiln.argmax", {x},
      attrs({dim ? "dim = " + i64(*dim) : "", keepdim ? "keepdim = true" : ""}),
      where, nullptr);
}
Tensor argmin(const Tensor &x, std::optional<int64_t> dim, bool keepdim,
              SourceLocation where) {
  return makeOp(
      "kiln.argmin", {x},
      attrs({dim ? "dim = " + i64(*dim) : "", keepdim ? "keepdim = true" : ""}),
      where, nullptr);
}
Tensor norm(const Tensor &x, double p, std::vector<int64_t> dims, bool keepdim,
            SourceLocation where) {
  return makeOp(
      "kiln.norm", {x},
      attrs({"p = " + f64(p), dims.empty() ? "" : "dims = " + dimsList(dims),
             keepdim ? "keepdim = true" : ""}),
      where, nullptr);
}
ValuesIndices topk(const Tensor &x, int64_t k, int64_t dim, bool largest,
                   bool sorted, SourceLocation where) {
  return pair(
      "kiln.topk", x,
      attrs({"k = " + i64(k), "dim = " + i64(dim),
             "largest = " + boolean(largest), "sorted = " + boolean(sorted)}),
      where);
}
ValuesIndices kthvalue(const Tensor &x, int64_t k, int64_t dim, bool keepdim,
                       SourceLocation where) {
  return pair("kiln.kthvalue", x,
              attrs({"k = " + i64(k), "dim = " + i64(dim),
                     keepdim ? "keepdim = true" : ""}),
              where);
}

//===----------------------------------------------------------------------===//
// Indexing
//===----------------------------------------------------------------------===//

Tensor gather(const Tensor &x, int64_t dim, const Tensor &index,
              SourceLocation where) {
  return makeOp("kiln.gather", {x, index}, attrs({"dim = " + i64(dim)}), where,
                nullptr);
}
Tensor index_select(const Tensor &x, int64_t dim, const Tensor &index,
                    SourceLocation where) {
  return makeOp("kiln.index_select", {x, index}, attrs({"dim = " + i64(dim)}),
                where, nullptr);
}
Tensor take(const Tensor &x, const Tensor &index, SourceLocation where) {
  return makeOp("kiln.take", {x, index}, "", where, nullptr);
}
Tensor scatter_add(const Tensor &base, int64_t dim, const Tensor &index,
                   const Tensor &src, SourceLocation where) {
  return makeOp("kiln.scatter_add", {base, index, src},
                attrs({"dim = " + i64(dim)}), where, nullptr);
}
Tensor index_add(const Tensor &base, int64_t dim, const Tensor &index,
                 const Tensor &src, SourceLocation where) {
  return makeOp("kiln.index_add", {base, index, src},
                attrs({"dim = " + i64(dim)}), where, nullptr);
}
Tensor put(const Tensor &base, const Tensor &index, const Tensor &src,
           bool accumulate, SourceLocation where) {
  return makeOp("kiln.put", {base, index, src},
                attrs({accumulate ? "accumulate = true" : ""}), where, nullptr);
}

//===----------------------------------------------------------------------===//
// Neural-network ops
//===----------------------------------------------------------------------===//

Tensor softmax(const Tensor &x, int64_t dim, SourceLocation where) {
  return makeOp("kiln.softmax", {x}, attrs({"dim = " + i64(dim)}), where,
                nullptr);
}
Tensor log_softmax(const Tensor &x, int64_t dim, SourceLocation where) {
  return makeOp("kiln.log_softmax", {x}, attrs({"dim = " + i64(dim)}), where,
                nullptr);
}
Tensor mse_loss(const Tensor &input, const Tensor &target,
                const std::string &reduction, SourceLocation where) {
  return makeOp("kiln.mse_loss", {input, target},
                attrs({"reduction = \"" + reduction + "\""}), where, nullptr);
}
Tensor cross_entropy(const Tensor &logits, const Tensor &target,
                     const std::string &reduction, SourceLocation where) {
  return makeOp("kiln.cross_entropy", {logits, target},
                attrs({"reduction = \"" + reduction + "\""}), where, nullptr);
}

//===----------------------------------------------------------------------===//
// Methods and operators
//===----------------------------------------------------------------------===//

Tensor Tensor::pow(const Tensor &e, SourceLocation where) const {
  return kiln::pow(*this, e, where);
}
Tensor Tensor::pow(Scalar e, SourceLocation where) const {
  return kiln::pow(*this, scalarLike(e, *this, where), where);
}
Tensor Tensor::sum(std::vector<int64_t> dims, bool keepdim,
                   SourceLocation where) const {
  return kiln::sum(*this, std::move(dims), keepdim, where);
}
Tensor Tensor::mean(std::vector<int64_t> dims, bool keepdim,
                    SourceLocation where) const {
  return kiln::mean(*this, std::move(dims), keepdim, where);
}
Tensor Tensor::exp(SourceLocation where) const {
  return kiln::exp(*this, where);
}
Tensor Tensor::log(SourceLocation where) const {
  return kiln::log(*this, where);
}
Tensor Tensor::abs(SourceLocation where) const {
  return kiln::abs(*this, where);
}
Tensor Tensor::sqrt(SourceLocation where) const {
  return kiln::sqrt(*this, where);
}
Tensor Tensor::clamp(std::optional<double> lo, std::optional<double> hi,
                     SourceLocation where) const {
  return kiln::clamp(*this, lo, hi, where);
}
Tensor Tensor::reshape(std::vector<int64_t> shape, SourceLocation where) const {
  return kiln::reshape(*this, std::move(shape), where);
}
Tensor Tensor::expand(std::vector<int64_t> shape, SourceLocation where) const {
  return kiln::expand(*this, std::move(shape), where);
}
Tensor Tensor::permute(std::vector<int64_t> dims, SourceLocation where) const {
  return kiln::permute(*this, std::move(dims), where);
}
Tensor Tensor::t(SourceLocation where) const {
  if (dim() != 2)
    throw Error("t: expects a 2-D tensor, got " + std::to_string(dim()) +
                    " dims",
                where);
  return kiln::permute(*this, {1, 0}, where);
}
Tensor Tensor::to(DType dtype, SourceLocation where) const {
  return castTo(*this, dtype, where);
}
Tensor Tensor::matmul(const Tensor &other, SourceLocation where) const {
  return kiln::matmul(*this, other, where);
}

#define KILN_METHOD0(name)                                                     \
  Tensor Tensor::name(SourceLocation where) const {                            \
    return kiln::name(*this, where);                                           \
  }
KILN_METHOD0(neg)
KILN_METHOD0(relu)
KILN_METHOD0(sigmoid)
KILN_METHOD0(tanh)
KILN_METHOD0(floor)
KILN_METHOD0(round)
#undef KILN_METHOD0
#define KILN_REDUCTION_METHOD(name)                                            \
  Tensor Tensor::name(std::vector<int64_t> dims, bool keepdim,                 \
                      SourceLocation where) const {                            \
    return kiln::name(*this, std::move(dims), keepdim, where);                 \
  }
KILN_REDUCTION_METHOD(prod)
KILN_REDUCTION_METHOD(amax)
KILN_REDUCTION_METHOD(amin)
#undef KILN_REDUCTION_METHOD
Tensor Tensor::norm(double p, std::vector<int64_t> dims, bool keepdim,
                    SourceLocation where) const {
  return kiln::norm(*this, p, std::move(dims), keepdim, where);
}
Tensor Tensor::argmax(std::optional<int64_t> dim, bool keepdim,
                      SourceLocation where) const {
  return kiln::argmax(*this, dim, keepdim, where);
}
Tensor Tensor::argmin(std::optional<int64_t> dim, bool keepdim,
                      SourceLocation where) const {
  return kiln::argmin(*this, dim, keepdim, where);
}
Tensor Tensor::softmax(int64_t dim, SourceLocation where) const {
  return kiln::softmax(*this, dim, where);
}
Tensor Tensor::log_softmax(int64_t dim, SourceLocation where) const {
  return kiln::log_softmax(*this, dim, where);
}
Tensor Tensor::gather(int64_t dim, const Tensor &index,
                      SourceLocation where) const {
  return kiln::gather(*this, dim, index, where);
}
Tensor Tensor::index_select(int64_t dim, const Tensor &index,
                            SourceLocation where) const {
  return kiln::index_select(*this, dim, index, where);
}
Tensor Tensor::take(const Tensor &index, SourceLocation where) const {
  return kiln::take(*this, index, where);
}

#define KILN_METHOD0(name)                                                     \
  Tensor Tensor::name(SourceLocation where) const {                            \
    return kiln::name(*this, where);                                           \
  }
KILN_METHOD0(ceil)
KILN_METHOD0(trunc)
KILN_METHOD0(frac)
KILN_METHOD0(rsqrt)
KILN_METHOD0(max)
KILN_METHOD0(min)
#undef KILN_METHOD0
Tensor Tensor::maximum(const Tensor &other, SourceLocation where) const {
  return kiln::maximum(*this, other, where);
}
Tensor Tensor::minimum(const Tensor &other, SourceLocation where) const {
  return kiln::minimum(*this, other, where);
}
ValuesIndices Tensor::max(int64_t dim, bool keepdim,
                          SourceLocation where) const {
  return kiln::max(*this, dim, keepdim, where);
}
ValuesIndices Tensor::min(int64_t dim, bool keepdim,
                          SourceLocation where) const {
  return kiln::min(*this, dim, keepdim, where);
}
ValuesIndices Tensor::topk(int64_t k, int64_t dim, bool largest, bool sorted,
                           SourceLocation where) const {
  return kiln::topk(*this, k, dim, largest, sorted, where);
}
ValuesIndices Tensor::kthvalue(int64_t k, int64_t dim, bool keepdim,
                               SourceLocation where) const {
  return kiln::kthvalue(*this, k, dim, keepdim, where);
}
Tensor Tensor::scatter_add(int64_t dim, const Tensor &index, const Tensor &src,
                           SourceLocation where) const {
  return kiln::scatter_add(*this, dim, index, src, where);
}
Tensor Tensor::index_add(int64_t dim, const Tensor &index, const Tensor &src,
                         SourceLocation where) const {
  return kiln::index_add(*this, dim, index, src, where);
}
Tensor Tensor::put(const Tensor &index, const Tensor &src, bool accumulate,
                   SourceLocation where) const {
  return kiln::put(*this, index, src, accumulate, where);
}
Tensor Tensor::where(const Tensor &cond, const Tensor &other,
                     SourceLocation where) const {
  return kiln::where(cond, *this, other, where);
}
bool Tensor::equal(const Tensor &other, SourceLocation where) const {
  return kiln::equal(*this, other, where).item<bool>(where);
}

// Operators can take no source location (an operator has exactly its
// operands): their errors carry none, rather than a line of this file.
static constexpr SourceLocation kOperator{};
Tensor operator-(const Tensor &x) { return neg(x, kOperator); }
#define KILN_OPERATOR(symbol, fn)                                              \
  Tensor operator symbol(const Tensor &a, const Tensor &b) {                   \
    return fn(a, b, kOperator);                                                \
  }                                                                            \
  Tensor operator symbol(const Tensor &a, Scalar b) {                          \
    return fn(a, scalarLike(b, a, kOperator), kOperator);                      \
  }                                                                            \
  Tensor operator symbol(Scalar a, const Tensor &b) {                          \
    return fn(scalarLike(a, b, kOperator), b, kOperator);                      \
  }
KILN_OPERATOR(+, add)
KILN_OPERATOR(-, sub)
KILN_OPERATOR(*, mul)
KILN_OPERATOR(/, div)
KILN_OPERATOR(>, gt)
KILN_OPERATOR(>=, ge)
KILN_OPERATOR(<, lt)
KILN_OPERATOR(<=, le)
KILN_OPERATOR(==, eq)
KILN_OPERATOR(!=, ne)
#undef KILN_OPERATOR

} // namespace kiln
