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
#include <unordered_map>

namespace rt = kiln::runtime;

namespace kiln {

DType detail::resultTypeOf(const std::vector<Tensor> &tensors) {
  auto category = [](DType d) {
    return d == DType::Bool ? 0 : detail::isFloat(d) ? 2 : 1;
  };
  std::optional<DType> dimensioned, scalar;
  for (const Tensor &t : tensors) {
    std::optional<DType> &kind = t.dim() > 0 ? dimensioned : scalar;
    kind = kind ? detail::promote(*kind, t.dtype()) : t.dtype();
  }
  if (!dimensioned)
    return scalar.value_or(DType::Float32);
  if (!scalar || category(*scalar) <= category(*dimensioned))
    return *dimensioned;
  return detail::promote(*dimensioned, *scalar);
}

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
  detail::elementCount(type.shape,
                       std::string_view(op).substr(op.find('.') + 1), where);
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

using detail::promote;

/// The dtype PyTorch computes `a op b` in (torch.result_type): operands
/// with dimensions decide it, and a rank-0 operand (a number is one, made by
/// scalarLike) raises it only when it is of a higher category (bool <
/// integer < float): i32[n] + i64[] is i32, f32[n] + f64[] is f32, but
/// i32[n] + f64[] is f64 and bool[n] + i64[] is i64. Two operands of the
/// same kind (both rank 0, or neither) promote as usual.
DType resultType(const Tensor &a, const Tensor &b) {
  bool scalarA = a.shape().empty(), scalarB = b.shape().empty();
  if (scalarA == scalarB)
    return promote(a.dtype(), b.dtype());
  DType higher = scalarA ? b.dtype() : a.dtype();
  DType lower = scalarA ? a.dtype() : b.dtype();
  if (isFloat(higher))
    return higher;
  if (higher == DType::Bool || isFloat(lower))
    return promote(higher, lower);
  return higher;
}

Tensor castTo(const Tensor &x, DType dtype, SourceLocation where) {
  return x.dtype() == dtype ? x : cast(x, dtype, where);
}

/// Integer dtypes kiln's arithmetic does not take: the dialect computes
/// integers in i64 (i32 and i1 only move data and compare).
bool isNarrowInteger(DType d) { return d == DType::Int32 || d == DType::Bool; }

/// `x` as i64 when it is i32 or bool, for an arithmetic op; an undefined
/// tensor is left for the op to report.
Tensor widen(const Tensor &x, SourceLocation where) {
  return x.defined() && isNarrowInteger(x.dtype())
             ? cast(x, DType::Int64, where)
             : x;
}

/// `op`'s results in PyTorch's dtype: an op on i32 or bool operands is
/// computed in i64 (widen) and its value narrowed back. Exact: i64 sums,
/// differences and products truncated to 32 bits are i32's wrapping ones,
/// and maxima, minima and selections are values of the operands.
Tensor narrow(const Tensor &result, DType dtype, SourceLocation where) {
  return isNarrowInteger(dtype) ? castTo(result, dtype, where) : result;
}

Tensor binary(const char *op, const Tensor &a, const Tensor &b,
              SourceLocation where) {
  if (!a.defined() || !b.defined())
    throw Error(std::string(op) + ": undefined tensor", where);
  DType common = resultType(a, b);
  return makeOp(op, {castTo(a, common, where), castTo(b, common, where)}, "",
                where, nullptr);
}

/// Arithmetic (add, sub, mul, maximum, minimum, matmul): PyTorch's result
/// type, i32 and bool computed in i64 and narrowed back (bool + bool is
/// logical or, bool * bool logical and, as in PyTorch).
Tensor arithmetic(const char *op, const Tensor &a, const Tensor &b,
                  SourceLocation where) {
  if (!a.defined() || !b.defined())
    throw Error(std::string(op) + ": undefined tensor", where);
  DType common = resultType(a, b);
  if (common == DType::Bool && std::string(op) == "kiln.sub")
    throw Error("sub: two bool tensors cannot be subtracted (as in PyTorch: "
                "use logical operations, or cast first)",
                where);
  Tensor result = makeOp(op,
                         {widen(castTo(a, common, where), where),
                          widen(castTo(b, common, where), where)},
                         "", where, nullptr);
  return narrow(result, common, where);
}

/// Float-only binary ops (div, pow) promote integers to float32.
Tensor floatBinary(const char *op, const Tensor &a, const Tensor &b,
                   SourceLocation where) {
  if (!a.defined() || !b.defined())
    throw Error(std::string(op) + ": undefined tensor", where);
  DType common = resultType(a, b);
  if (!isFloat(common))
    common = DType::Float32;
  return makeOp(op, {castTo(a, common, where), castTo(b, common, where)}, "",
                where, nullptr);
}

std::string reductionAttrs(const std::vector<int64_t> &dims, bool keepdim) {
  return attrs({dims.empty() ? "" : "dims = " + dimsList(dims),
                keepdim ? "keepdim = true" : ""});
}

/// scatter_add and index_add: i32 base and source accumulate in i64 and
/// are narrowed back (PyTorch's wrapping sums).
Tensor accumulating(const char *op, const Tensor &base, const Tensor &index,
                    const Tensor &src, const std::string &attributes,
                    SourceLocation where) {
  bool widened = base.defined() && src.defined() &&
                 base.dtype() == DType::Int32 && src.dtype() == DType::Int32;
  if (!widened)
    return makeOp(op, {base, index, src}, attributes, where, nullptr);
  return narrow(makeOp(op, {widen(base, where), index, widen(src, where)},
                       attributes, where, nullptr),
                DType::Int32, where);
}

/// An op with values and indices. `widenAll` also computes bool values in
/// i64 (max/min take bools in PyTorch; topk and kthvalue do not): i32 ones
/// always are, and the values come back in the input's dtype.
ValuesIndices pair(const std::string &op, const Tensor &x,
                   const std::string &attributes, SourceLocation where,
                   bool widenAll = false) {
  if (!x.defined())
    throw Error(op + ": undefined tensor", where);
  bool widened =
      x.dtype() == DType::Int32 || (widenAll && x.dtype() == DType::Bool);
  Tensor values =
      makeOp(op, {widened ? widen(x, where) : x}, attributes, where, nullptr);
  Tensor indices(values.getNode(), 1);
  return {widened ? narrow(values, x.dtype(), where) : values, indices};
}

} // namespace

//===----------------------------------------------------------------------===//
// Creation
//===----------------------------------------------------------------------===//

Tensor full(std::vector<int64_t> shape, double value, DType dtype,
            SourceLocation where) {
  if (shape.empty()) {
    // Numbers in expressions (`x * 0.5`, `lr * grad`) recur step after
    // step: their nodes' signatures are remembered per thread by the
    // value's bits and the dtype (up to 1024 per dtype, then forgotten
    // together), as formatting and checking one took most of recording
    // an operator with a number.
    constexpr size_t kNumbers = 1024;
    thread_local std::unordered_map<uint64_t,
                                    std::shared_ptr<const detail::OpSignature>>
        numbers[static_cast<int>(rt::DType::Bool) + 1]; // per dtype (Bool last)
    auto &memo = numbers[static_cast<int>(runtimeType(dtype))];
    uint64_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    auto it = memo.find(bits);
    if (it == memo.end()) {
      std::vector<rt::TensorSpec> types{{runtimeType(dtype), {}}};
      auto signature = detail::signatureOf(
          "kiln.full", {}, "{value = " + f64(value) + "}", where, &types);
      if (memo.size() >= kNumbers)
        memo.clear();
      it = memo.emplace(bits, std::move(signature)).first;
    }
    return detail::makeOp(it->second, where);
  }
  std::string attributes = "{value = ";
  attributes += f64(value);
  attributes += '}';
  return typed("kiln.full", {}, attributes,
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

// Floating-point math: integers and bools are computed in float32, as in
// PyTorch (torch.sqrt of an int64 tensor is float32).
#define KILN_FLOAT_UNARY(name)                                                 \
  Tensor name(const Tensor &x, SourceLocation where) {                         \
    return sameType("kiln." #name,                                             \
                    x.defined() && !isFloat(x.dtype())                         \
                        ? cast(x, DType::Float32, where)                       \
                        : x,                                                   \
                    "", where);                                                \
  }
KILN_FLOAT_UNARY(sqrt)
KILN_FLOAT_UNARY(rsqrt)
KILN_FLOAT_UNARY(exp)
KILN_FLOAT_UNARY(log)
KILN_FLOAT_UNARY(sigmoid)
KILN_FLOAT_UNARY(tanh)
KILN_FLOAT_UNARY(erf)
#undef KILN_FLOAT_UNARY

// Rounding an integer tensor gives it back (PyTorch's floor, ceil, trunc
// and round of integers); a bool one is an error, as in PyTorch.
#define KILN_ROUNDING(name)                                                    \
  Tensor name(const Tensor &x, SourceLocation where) {                         \
    if (x.defined() &&                                                         \
        (x.dtype() == DType::Int64 || x.dtype() == DType::Int32))              \
      return x;                                                                \
    return sameType("kiln." #name, x, "", where);                              \
  }
KILN_ROUNDING(floor)
KILN_ROUNDING(ceil)
KILN_ROUNDING(trunc)
KILN_ROUNDING(round)
#undef KILN_ROUNDING

Tensor frac(const Tensor &x, SourceLocation where) {
  return sameType("kiln.frac", x, "", where);
}

// i32 computed in i64 and narrowed back; bool is an error, as in PyTorch.
Tensor neg(const Tensor &x, SourceLocation where) {
  if (x.defined() && x.dtype() == DType::Int32)
    return narrow(neg(widen(x, where), where), DType::Int32, where);
  return sameType("kiln.neg", x, "", where);
}
Tensor abs(const Tensor &x, SourceLocation where) {
  if (x.defined() && x.dtype() == DType::Int32)
    return narrow(abs(widen(x, where), where), DType::Int32, where);
  return sameType("kiln.abs", x, "", where);
}
/// relu of integers is max(x, 0) in their dtype (PyTorch's).
Tensor relu(const Tensor &x, SourceLocation where) {
  if (x.defined() && (x.dtype() == DType::Int64 || x.dtype() == DType::Int32))
    return clamp(x, 0.0, std::nullopt, where);
  return sameType("kiln.relu", x, "", where);
}

#define KILN_BINARY(name, helper)                                              \
  Tensor name(const Tensor &a, const Tensor &b, SourceLocation where) {        \
    return helper("kiln." #name, a, b, where);                                 \
  }
KILN_BINARY(add, arithmetic)
KILN_BINARY(sub, arithmetic)
KILN_BINARY(mul, arithmetic)
KILN_BINARY(maximum, arithmetic)
KILN_BINARY(minimum, arithmetic)
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
  // PyTorch's wrapped numbers: a float takes a float tensor's dtype and
  // makes any other float32; an integer takes an integer tensor's dtype
  // (i32 + 1 stays i32) and makes a bool one int64.
  DType dtype = like.defined() ? like.dtype() : DType::Float32;
  if (value.isFloat && !isFloat(dtype))
    dtype = DType::Float32;
  else if (!value.isFloat && dtype == DType::Bool)
    dtype = DType::Int64;
  return full({}, value.value, dtype, where);
}

Tensor clamp(const Tensor &x, std::optional<double> min,
             std::optional<double> max, SourceLocation where) {
  if (x.defined() && !isFloat(x.dtype())) {
    // PyTorch's result type with the bounds as numbers: a bound that is not
    // an integer makes the result float32; integer bounds keep an integer
    // tensor's dtype (i32 computed in i64) and make a bool one int64.
    auto integral = [](std::optional<double> bound) {
      return !bound || (std::isfinite(*bound) && std::trunc(*bound) == *bound);
    };
    if (!integral(min) || !integral(max))
      return clamp(cast(x, DType::Float32, where), min, max, where);
    if (isNarrowInteger(x.dtype()))
      return narrow(clamp(widen(x, where), min, max, where),
                    x.dtype() == DType::Bool ? DType::Int64 : x.dtype(), where);
  }
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
  DType common = resultType(a, b);
  return makeOp("kiln.where",
                {cond, castTo(a, common, where), castTo(b, common, where)}, "",
                where, nullptr);
}

Tensor where(const Tensor &cond, const Tensor &a, Scalar b,
             SourceLocation where) {
  return kiln::where(cond, a, scalarLike(b, a, where), where);
}
Tensor where(const Tensor &cond, Scalar a, const Tensor &b,
             SourceLocation where) {
  return kiln::where(cond, scalarLike(a, b, where), b, where);
}
Tensor where(const Tensor &cond, Scalar a, Scalar b, SourceLocation where) {
  DType dtype = a.isFloat || b.isFloat ? DType::Float32 : DType::Int64;
  return kiln::where(cond, full({}, a.value, dtype, where),
                     full({}, b.value, dtype, where), where);
}

Tensor cast(const Tensor &x, DType dtype, SourceLocation where) {
  if (!x.defined())
    throw Error("cast: undefined tensor", where);
  return typed("kiln.cast", {x}, "", {runtimeType(dtype), x.shape()}, where);
}

/// torch.equal compares in the operands' common dtype (a float32 tensor
/// equals the float64 one of the same values; a bool one the integers 0
/// and 1), as the comparisons do.
Tensor equal(const Tensor &a, const Tensor &b, SourceLocation where) {
  return binary("kiln.equal", a, b, where);
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
  return arithmetic("kiln.matmul", a, b, where);
}

//===----------------------------------------------------------------------===//
// Reductions
//===----------------------------------------------------------------------===//

static Tensor reduction(const char *op, const Tensor &x,
                        std::vector<int64_t> dims, bool keepdim,
                        SourceLocation where) {
  return makeOp(op, {x}, reductionAttrs(dims, keepdim), where, nullptr);
}

// sum and prod of bool and i32 tensors are i64 (PyTorch's); a mean of
// integers is an error, as in PyTorch.
Tensor sum(const Tensor &x, std::vector<int64_t> dims, bool keepdim,
           SourceLocation where) {
  return reduction("kiln.sum", widen(x, where), std::move(dims), keepdim,
                   where);
}
Tensor prod(const Tensor &x, std::vector<int64_t> dims, bool keepdim,
            SourceLocation where) {
  return reduction("kiln.prod", widen(x, where), std::move(dims), keepdim,
                   where);
}
Tensor mean(const Tensor &x, std::vector<int64_t> dims, bool keepdim,
            SourceLocation where) {
  return reduction("kiln.mean", x, std::move(dims), keepdim, where);
}
// The largest or smallest of i32 and bool values, in their dtype.
Tensor amax(const Tensor &x, std::vector<int64_t> dims, bool keepdim,
            SourceLocation where) {
  Tensor result =
      reduction("kiln.amax", widen(x, where), std::move(dims), keepdim, where);
  return x.defined() ? narrow(result, x.dtype(), where) : result;
}
Tensor amin(const Tensor &x, std::vector<int64_t> dims, bool keepdim,
            SourceLocation where) {
  Tensor result =
      reduction("kiln.amin", widen(x, where), std::move(dims), keepdim, where);
  return x.defined() ? narrow(result, x.dtype(), where) : result;
}

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
              where, /*widenAll=*/true);
}
ValuesIndices min(const Tensor &x, int64_t dim, bool keepdim,
                  SourceLocation where) {
  return pair("kiln.min", x,
              attrs({"dim = " + i64(dim), keepdim ? "keepdim = true" : ""}),
              where, /*widenAll=*/true);
}
Tensor argmax(const Tensor &x, std::optional<int64_t> dim, bool keepdim,
              SourceLocation where) {
  return makeOp(
      "kiln.argmax", {widen(x, where)},
      attrs({dim ? "dim = " + i64(*dim) : "", keepdim ? "keepdim = true" : ""}),
      where, nullptr);
}
Tensor argmin(const Tensor &x, std::optional<int64_t> dim, bool keepdim,
              SourceLocation where) {
  return makeOp(
      "kiln.argmin", {widen(x, where)},
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
  return accumulating("kiln.scatter_add", base, index, src,
                      attrs({"dim = " + i64(dim)}), where);
}
Tensor index_add(const Tensor &base, int64_t dim, const Tensor &index,
                 const Tensor &src, SourceLocation where) {
  return accumulating("kiln.index_add", base, index, src,
                      attrs({"dim = " + i64(dim)}), where);
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
  if (!input.defined() || !target.defined())
    throw Error("mse_loss: undefined tensor", where);
  // PyTorch's promotion of the two (f32 and f64 give f64, a float and an
  // integer or bool the float), after broadcasting them to one shape, so a
  // rank-0 operand counts in full (F.mse_loss broadcasts first); integers
  // alone are an error, as in PyTorch.
  DType common = promote(input.dtype(), target.dtype());
  bool promote = isFloat(common);
  return makeOp("kiln.mse_loss",
                {promote ? castTo(input, common, where) : input,
                 promote ? castTo(target, common, where) : target},
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
