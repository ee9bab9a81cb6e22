//===- ApiFuzz.cpp - Random programs through the embedding API -----------===//
//
// kiln-api-fuzz SEED COUNT: builds COUNT random programs with the C++ API
// (leaves of every dtype and small shapes, then random ops: unary and
// binary math with tensors and numbers, comparisons, equal, where, clamp,
// casts, reductions, max/min with indices, arg reductions, norms, topk,
// softmax, matmul, reshapes and permutes, and the PyTorch functions
// written with the ops: transpose, squeeze, unsqueeze, flatten, narrow,
// split, chunk, cat, stack, sort, argsort, masked_fill, one_hot, var, std,
// logsumexp, linear, layer_norm, silu, leaky_relu, nll_loss, l1_loss,
// binary_cross_entropy_with_logits, and those of Functional.cpp:
// predicates, logical functions, any/all, sign, nan_to_num, reciprocal,
// square, log1p, expm1, erf, lerp, addcmul, addcdiv, the activations,
// smooth_l1/huber/kl_div losses, cosine_similarity, normalize, flip, roll,
// repeat, tile, tril, triu, eye, outer, dot, mv, mm, bmm, addmm), reads
// some values half-way
// (so later ops build on realized tensors), then prints every value and, for
// programs with floating-point leaves that require gradients, the
// gradients of the sum of one float result. The output is a log that
// test/API/Inputs/api_fuzz.py replays op by op with PyTorch, from the
// values Kiln printed, and compares: values, dtypes, shapes, the ops Kiln
// refuses, and the gradients. Each program is also built and run a second
// time, from the same random numbers: a graph recorded again is found
// without printing it (the API's compiled-graph descriptions), and the
// replay must print the same log, bit for bit ("replay" line otherwise).
//
// Log lines (fields separated by spaces; a tensor is DTYPE SHAPE VALUES,
// SHAPE "-" for rank 0, else sizes joined by "x"; floats printed exactly):
//   program N
//   leaf NAME TENSOR [grad]
//   op NAME KIND ARGS...         (NAME_i holds the indices of max/min/topk)
//   error NAME MESSAGE           (the op above threw kiln::Error)
//   value NAME TENSOR
//   loss NAME VALUE              (NAME = the sum of VALUE's elements)
//   backward NAME                (NAME.backward() ran)
//   nobackward NAME MESSAGE      (it threw: no gradient path)
//   grad LEAF TENSOR
//   replay differs: LINE         (the replay's first line that differs)
//
//===----------------------------------------------------------------------===//

#include "kiln/kiln.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

using kiln::DType;
using kiln::Scalar;
using kiln::Tensor;

namespace {

bool isFloat(DType d) { return d == DType::Float32 || d == DType::Float64; }

/// An error's message on one line (the log is line-based).
std::string oneLine(const kiln::Error &error) {
  std::string message = error.what();
  for (char &c : message)
    if (c == '\n')
      c = ' ';
  return message;
}

/// `values` joined by `separator`, or `empty` when there are none.
std::string joined(const std::vector<int64_t> &values, const char *separator,
                   const char *empty) {
  if (values.empty())
    return empty;
  std::string text;
  for (int64_t v : values)
    text += (text.empty() ? "" : separator) + std::to_string(v);
  return text;
}

/// DTYPE SHAPE VALUES, floats exactly (%a), reading the tensor (realizes).
std::string tensorText(const Tensor &t) {
  std::string text = std::string(kiln::dtypeName(t.dtype())) + " " +
                     joined(t.shape(), "x", "-");
  char buffer[64];
  if (isFloat(t.dtype())) {
    for (double v : t.toVector<double>()) {
      std::snprintf(buffer, sizeof buffer, " %a", v);
      text += buffer;
    }
  } else {
    for (int64_t v : t.toVector<int64_t>())
      text += " " + std::to_string(v);
  }
  return text;
}

std::string numberText(Scalar s) {
  char buffer[64];
  if (s.isFloat)
    std::snprintf(buffer, sizeof buffer, "f:%a", s.value);
  else
    std::snprintf(buffer, sizeof buffer, "i:%" PRId64,
                  static_cast<int64_t>(s.value));
  return buffer;
}

class Fuzzer {
public:
  explicit Fuzzer(uint64_t seed) : rng(seed) {}

  /// Builds and runs program `number`, then again from the same random
  /// numbers; prints the first run's log (and where the replay's differs).
  void program(int number) {
    std::mt19937_64 start = rng;
    int firstName = counter;
    std::string first = run(number);
    rng = start;
    counter = firstName;
    std::string replay = run(number);
    std::fputs(first.c_str(), stdout);
    if (replay != first) {
      size_t at = 0;
      while (at < first.size() && at < replay.size() && first[at] == replay[at])
        ++at;
      size_t begin = replay.rfind('\n', at == 0 ? 0 : at - 1);
      begin = begin == std::string::npos ? 0 : begin + 1;
      std::string line = replay.substr(begin, replay.find('\n', at) - begin);
      std::printf("replay differs: %s\n", line.c_str());
    }
    std::fflush(stdout);
  }

private:
  /// The program's log.
  std::string run(int number) {
    log_.clear();
    emit("program %d\n", number);
    pool.clear();
    names.clear();
    leaves.clear();
    int leafCount = 1 + pick(3);
    for (int i = 0; i < leafCount; ++i)
      addLeaf();
    int ops = 3 + pick(10);
    for (int i = 0; i < ops; ++i) {
      try {
        step();
      } catch (const kiln::Error &error) {
        emit("error %s %s\n", pending.c_str(), oneLine(error).c_str());
      }
      // Sometimes read a value half-way: later ops build on it realized.
      if (!pool.empty() && pick(6) == 0)
        (void)pool[pick(pool.size())].toVector<double>();
    }
    for (size_t i = 0; i < pool.size(); ++i)
      emit("value %s %s\n", names[i].c_str(), tensorText(pool[i]).c_str());
    gradients();
    return log_;
  }

  /// printf into the log.
  __attribute__((format(printf, 2, 3))) void emit(const char *format, ...) {
    va_list args, again;
    va_start(args, format);
    va_copy(again, args);
    int n = std::vsnprintf(nullptr, 0, format, args);
    if (n > 0) {
      size_t at = log_.size();
      log_.resize(at + n + 1);
      std::vsnprintf(&log_[at], n + 1, format, again);
      log_.resize(at + n);
    }
    va_end(again);
    va_end(args);
  }

  std::string log_;
  std::mt19937_64 rng;
  std::vector<Tensor> pool;
  std::vector<std::string> names;
  std::vector<std::pair<std::string, Tensor>> leaves; // requiring gradients
  std::string pending;
  int counter = 0;

  size_t pick(size_t n) {
    return std::uniform_int_distribution<size_t>(0, n - 1)(rng);
  }
  bool coin() { return pick(2) == 0; }

  std::string fresh() { return "v" + std::to_string(counter++); }

  void add(const std::string &name, const Tensor &t) {
    names.push_back(name);
    pool.push_back(t);
  }

  std::vector<int64_t> randomShape() {
    static const int64_t sizes[] = {1, 2, 3, 4, 5};
    std::vector<int64_t> shape;
    int rank = pick(4);
    for (int i = 0; i < rank; ++i)
      shape.push_back(pick(25) == 0 ? 0 : sizes[pick(5)]); // some empty
    return shape;
  }

  void addLeaf() {
    static const DType dtypes[] = {DType::Float32, DType::Float32,
                                   DType::Float64, DType::Int64,
                                   DType::Int32,   DType::Bool};
    DType dtype = dtypes[pick(6)];
    std::vector<int64_t> shape = pool.empty() || coin()
                                     ? randomShape()
                                     : pool[pick(pool.size())].shape();
    (void)leaf(dtype, shape);
  }

  /// A new random leaf of `dtype` and `shape` (floats require gradients
  /// two times in three), logged and added to the pool.
  Tensor leaf(DType dtype, const std::vector<int64_t> &shape) {
    int64_t n = 1;
    for (int64_t size : shape)
      n *= size;
    Tensor t;
    if (isFloat(dtype)) {
      // Normal values, some repeated (ties), some special.
      std::normal_distribution<double> normal(0.0, 2.0);
      static const double special[] = {0.0, -0.0, 1.0, -1.0, 0.5, 2.0};
      static const double nonFinite[] = {NAN, INFINITY, -INFINITY};
      std::vector<double> data(n);
      for (double &v : data)
        v = pick(60) == 0  ? nonFinite[pick(3)]
            : pick(5) == 0 ? special[pick(6)]
                           : normal(rng);
      if (dtype == DType::Float32) {
        std::vector<float> narrow(data.begin(), data.end());
        t = Tensor::fromVector(narrow, shape);
      } else {
        t = Tensor::fromVector(data, shape);
      }
    } else if (dtype == DType::Bool) {
      std::vector<bool> data(n);
      for (size_t i = 0; i < data.size(); ++i)
        data[i] = coin();
      t = Tensor::fromVector(data, shape);
    } else {
      std::vector<int64_t> data(n);
      for (int64_t &v : data)
        v = static_cast<int64_t>(pick(11)) - 5;
      t = Tensor::fromVector(data, shape);
      if (dtype == DType::Int32)
        t = t.to(DType::Int32).detach();
    }
    // fromVector's empty shape is 1-D: rank 0 through a reshape.
    if (shape.empty())
      t = t.reshape({}).detach();
    bool grad = isFloat(dtype) && pick(3) != 0;
    if (grad)
      t.requiresGrad();
    std::string name = fresh();
    emit("leaf %s %s%s\n", name.c_str(), tensorText(t).c_str(),
         grad ? " grad" : "");
    add(name, t);
    if (grad)
      leaves.push_back({name, t});
    return t;
  }

  /// Values as `name`, indices as `name`_i.
  void addPair(const std::string &name, const kiln::ValuesIndices &r) {
    add(name, r.values);
    add(name + "_i", r.indices);
  }

  size_t operand() { return pick(pool.size()); }

  /// A new i64 leaf of `shape` with values in [low, high), logged.
  Tensor indexLeaf(const std::vector<int64_t> &shape, int64_t low,
                   int64_t high) {
    int64_t n = 1;
    for (int64_t size : shape)
      n *= size;
    std::vector<int64_t> data(n);
    for (int64_t &v : data)
      v = low + static_cast<int64_t>(pick(high - low));
    // fromVector's empty shape is 1-D: rank 0 through a reshape.
    Tensor t = Tensor::fromVector(data, shape);
    if (shape.empty())
      t = t.reshape({}).detach();
    std::string name = fresh();
    emit("leaf %s %s\n", name.c_str(), tensorText(t).c_str());
    add(name, t);
    return t;
  }

  /// An operand broadcastable with `a` (same shape, or with size-1 dims,
  /// or a suffix of it, or another value when shapes happen to fit).
  size_t partner(size_t a) {
    for (int tries = 0; tries < 4; ++tries) {
      size_t b = operand();
      if (broadcastable(pool[a].shape(), pool[b].shape()))
        return b;
    }
    return a;
  }

  static bool broadcastable(std::vector<int64_t> x, std::vector<int64_t> y) {
    while (!x.empty() && !y.empty()) {
      if (x.back() != y.back() && x.back() != 1 && y.back() != 1)
        return false;
      x.pop_back();
      y.pop_back();
    }
    return true;
  }

  Scalar number() {
    static const double values[] = {0.5, -1.5, 2.0, 0.0, 3.25};
    if (coin())
      return Scalar(static_cast<int64_t>(pick(7)) - 3);
    return Scalar(values[pick(5)]);
  }

  std::vector<int64_t> randomDims(int64_t rank) {
    std::vector<int64_t> dims;
    for (int64_t d = 0; d < rank; ++d)
      if (coin())
        dims.push_back(coin() ? d : d - rank);
    return dims;
  }

  void log(const std::string &name, const std::string &text) {
    pending = name;
    emit("op %s %s\n", name.c_str(), text.c_str());
  }

  void step() {
    pending = "-";
    if (pool.size() < 6 && pick(8) == 0)
      return addLeaf();
    size_t a = operand();
    Tensor x = pool[a]; // copies: indexLeaf grows the pool
    std::string xn = names[a];
    int64_t rank = x.dim();
    std::string name = fresh();
    switch (pick(17)) {
    case 0: { // unary
      static const char *ops[] = {"neg",     "abs",   "sqrt", "rsqrt", "exp",
                                  "log",     "floor", "ceil", "trunc", "round",
                                  "sigmoid", "tanh",  "relu", "frac"};
      int op = pick(14);
      log(name, std::string("unary ") + ops[op] + " " + xn);
      Tensor (*fns[])(const Tensor &, kiln::SourceLocation) = {
          kiln::neg,     kiln::abs,   kiln::sqrt, kiln::rsqrt, kiln::exp,
          kiln::log,     kiln::floor, kiln::ceil, kiln::trunc, kiln::round,
          kiln::sigmoid, kiln::tanh,  kiln::relu, kiln::frac};
      return add(name, fns[op](x, kiln::SourceLocation::current()));
    }
    case 1:
    case 2: { // binary, tensors
      static const char *ops[] = {"add",     "sub", "mul", "div",  "maximum",
                                  "minimum", "pow", "gt",  "ge",   "lt",
                                  "le",      "eq",  "ne",  "equal"};
      Tensor (*fns[])(const Tensor &, const Tensor &, kiln::SourceLocation) = {
          kiln::add,     kiln::sub, kiln::mul, kiln::div,  kiln::maximum,
          kiln::minimum, kiln::pow, kiln::gt,  kiln::ge,   kiln::lt,
          kiln::le,      kiln::eq,  kiln::ne,  kiln::equal};
      int op = pick(14);
      size_t b = partner(a);
      log(name, std::string("binary ") + ops[op] + " " + xn + " " + names[b]);
      return add(name, fns[op](x, pool[b], kiln::SourceLocation::current()));
    }
    case 3: { // binary with a number, either side (operators, x.pow(s))
      static const char *ops[] = {"add", "sub", "mul", "div",
                                  "gt",  "eq",  "pow"};
      int op = pick(7);
      Scalar s = number();
      bool left = op != 6 && coin();
      log(name, std::string(left ? "number_left " : "number_right ") + ops[op] +
                    " " + xn + " " + numberText(s));
      Tensor r;
      switch (op) {
      case 0:
        r = left ? s + x : x + s;
        break;
      case 1:
        r = left ? s - x : x - s;
        break;
      case 2:
        r = left ? s * x : x * s;
        break;
      case 3:
        r = left ? s / x : x / s;
        break;
      case 4:
        r = left ? s > x : x > s;
        break;
      case 5:
        r = left ? s == x : x == s;
        break;
      default:
        r = x.pow(s);
      }
      return add(name, r);
    }
    case 4: { // where
      size_t c = operand();
      Tensor cond = pool[c].dtype() == DType::Bool ? pool[c] : pool[c] > 0;
      std::string condName = names[c];
      size_t b = partner(a);
      int form = pick(3);
      if (form == 0) {
        log(name, "where " + condName + " " + xn + " " + names[b]);
        return add(name, kiln::where(cond, x, pool[b]));
      }
      Scalar s = number();
      log(name, std::string(form == 1 ? "where_number_right "
                                      : "where_number_left ") +
                    condName + " " + xn + " " + numberText(s));
      return add(name,
                 form == 1 ? kiln::where(cond, x, s) : kiln::where(cond, s, x));
    }
    case 5: { // clamp
      static const double bounds[] = {-1.0, 0.0, 0.5, 2.0, -2.5};
      std::optional<double> lo, hi;
      int form = pick(3);
      if (form != 1)
        lo = bounds[pick(5)];
      if (form != 0)
        hi = bounds[pick(5)];
      char text[128];
      std::snprintf(text, sizeof text, "clamp %s %s %s", xn.c_str(),
                    lo ? std::to_string(*lo).c_str() : "none",
                    hi ? std::to_string(*hi).c_str() : "none");
      log(name, text);
      return add(name, kiln::clamp(x, lo, hi));
    }
    case 6: { // cast (floats to integers only from leaves: finite, small)
      static const DType dtypes[] = {DType::Float32, DType::Float64,
                                     DType::Int64, DType::Int32, DType::Bool};
      DType to = dtypes[pick(5)];
      if (isFloat(x.dtype()) && !isFloat(to) && to != DType::Bool)
        to = DType::Float64;
      log(name, std::string("cast ") + xn + " " + kiln::dtypeName(to));
      return add(name, x.to(to));
    }
    case 7: { // sum, mean, prod, amax, amin
      static const char *ops[] = {"sum", "mean", "prod", "amax", "amin"};
      Tensor (*fns[])(const Tensor &, std::vector<int64_t>, bool,
                      kiln::SourceLocation) = {
          kiln::sum, kiln::mean, kiln::prod, kiln::amax, kiln::amin};
      int op = pick(5);
      std::vector<int64_t> dims = randomDims(rank);
      bool keepdim = coin();
      log(name, std::string("reduce ") + ops[op] + " " + xn + " " +
                    joined(dims, ",", "all") + " " + (keepdim ? "1" : "0"));
      return add(name,
                 fns[op](x, dims, keepdim, kiln::SourceLocation::current()));
    }
    case 8: { // max/min with dim, argmax/argmin, norm
      if (rank == 0)
        return step();
      int64_t dim = static_cast<int64_t>(pick(rank)) - (coin() ? rank : 0);
      bool keepdim = coin();
      int op = pick(5);
      if (op < 2) {
        log(name, std::string(op == 0 ? "max_dim " : "min_dim ") + xn + " " +
                      std::to_string(dim) + " " + (keepdim ? "1" : "0"));
        kiln::ValuesIndices r =
            op == 0 ? kiln::max(x, dim, keepdim) : kiln::min(x, dim, keepdim);
        return addPair(name, r);
      }
      if (op < 4) {
        log(name, std::string(op == 2 ? "argmax " : "argmin ") + xn + " " +
                      std::to_string(dim) + " " + (keepdim ? "1" : "0"));
        return add(name, op == 2 ? kiln::argmax(x, dim, keepdim)
                                 : kiln::argmin(x, dim, keepdim));
      }
      static const double ps[] = {1.0, 2.0, 3.0};
      double p = ps[pick(3)];
      std::vector<int64_t> dims = randomDims(rank);
      log(name, "norm " + xn + " " + std::to_string(p) + " " +
                    joined(dims, ",", "all") + " " + (keepdim ? "1" : "0"));
      return add(name, kiln::norm(x, p, dims, keepdim));
    }
    case 9: { // topk, softmax, log_softmax
      if (rank == 0)
        return step();
      int64_t dim = static_cast<int64_t>(pick(rank)) - (coin() ? rank : 0);
      int op = pick(3);
      if (op == 0) {
        int64_t size = x.shape()[dim < 0 ? dim + rank : dim];
        int64_t k = 1 + static_cast<int64_t>(pick(size));
        bool largest = coin();
        log(name, "topk " + xn + " " + std::to_string(k) + " " +
                      std::to_string(dim) + " " + (largest ? "1" : "0"));
        kiln::ValuesIndices r = kiln::topk(x, k, dim, largest);
        return addPair(name, r);
      }
      log(name, std::string(op == 1 ? "softmax " : "log_softmax ") + xn + " " +
                    std::to_string(dim));
      return add(name,
                 op == 1 ? kiln::softmax(x, dim) : kiln::log_softmax(x, dim));
    }
    case 10: { // matmul of whatever fits, else x @ x^T
      for (size_t b = 0; b < pool.size(); ++b) {
        const std::vector<int64_t> &bs = pool[b].shape();
        if (rank == 2 && bs.size() == 2 && bs[0] == x.shape()[1] && coin()) {
          log(name, "matmul " + xn + " " + names[b]);
          return add(name, kiln::matmul(x, pool[b]));
        }
      }
      if (rank != 2)
        return step();
      log(name, "matmul_t " + xn);
      return add(name, kiln::matmul(x, x.t()));
    }
    case 11: { // gather, index_select, take, kthvalue, mse_loss
      int64_t n = 1;
      for (int64_t size : x.shape())
        n *= size;
      if (rank == 0 || n == 0)
        return step();
      int64_t dim = static_cast<int64_t>(pick(rank));
      int64_t size = x.shape()[dim];
      int op = pick(5);
      if (op == 0) {
        std::vector<int64_t> shape = x.shape();
        shape[dim] = 1 + pick(3);
        Tensor index = indexLeaf(shape, 0, size);
        log(name,
            "gather " + xn + " " + std::to_string(dim) + " " + names.back());
        return add(name, kiln::gather(x, dim, index));
      }
      if (op == 1) {
        Tensor index = indexLeaf({static_cast<int64_t>(1 + pick(4))}, 0, size);
        log(name, "index_select " + xn + " " + std::to_string(dim) + " " +
                      names.back());
        return add(name, kiln::index_select(x, dim, index));
      }
      if (op == 2) {
        Tensor index = indexLeaf(randomShape(), -n, n);
        log(name, "take " + xn + " " + names.back());
        return add(name, kiln::take(x, index));
      }
      if (op == 3) {
        int64_t k = 1 + static_cast<int64_t>(pick(size));
        bool keepdim = coin();
        log(name, "kthvalue " + xn + " " + std::to_string(k) + " " +
                      std::to_string(dim) + " " + (keepdim ? "1" : "0"));
        kiln::ValuesIndices r = kiln::kthvalue(x, k, dim, keepdim);
        return addPair(name, r);
      }
      size_t b = operand();
      log(name, "mse_loss " + xn + " " + names[b]);
      return add(name, kiln::mse_loss(x, pool[b]));
    }
    case 12:
    case 13:
      return composite(x, xn, name);
    case 14:
    case 15:
      return functional(x, xn, name);
    default: { // reshape to flat, or permute
      if (rank >= 2 && coin()) {
        log(name, "permute " + xn);
        std::vector<int64_t> dims;
        for (int64_t d = rank - 1; d >= 0; --d)
          dims.push_back(d);
        return add(name, kiln::permute(x, dims));
      }
      log(name, "flatten " + xn);
      return add(name, kiln::reshape(x, {-1}));
    }
    }
  }

  /// The PyTorch functions written with the ops (Composite.cpp): shape
  /// functions, slicing and joining, sorting, masks and one-hot,
  /// var/std/logsumexp, linear, layer_norm, silu, leaky_relu and losses.
  void composite(const Tensor &x, const std::string &xn,
                 const std::string &name) {
    int64_t rank = x.dim();
    // A dim of a tensor of `size` dims, negative half the time, now and
    // then out of range (an error in both).
    auto dimIn = [&](int64_t size) {
      size = std::max<int64_t>(size, 1);
      if (pick(20) == 0)
        return coin() ? size : -size - 1;
      return static_cast<int64_t>(pick(size)) - (coin() ? size : 0);
    };
    switch (pick(14)) {
    case 12: { // sort, argsort, masked_fill, one_hot
      int op = pick(4);
      if (op < 2) {
        int64_t dim = dimIn(rank);
        bool descending = coin();
        log(name, std::string(op == 0 ? "sort " : "argsort ") + xn + " " +
                      std::to_string(dim) + " " + (descending ? "1" : "0"));
        if (op == 0)
          return addPair(name, kiln::sort(x, dim, descending));
        return add(name, kiln::argsort(x, dim, descending));
      }
      if (op == 2) {
        size_t c = operand();
        Tensor mask = pool[c].dtype() == DType::Bool ? pool[c] : pool[c] > 0;
        Scalar s = number();
        log(name, "masked_fill " + xn + " " + names[c] + " " + numberText(s));
        return add(name, x.masked_fill(mask, s));
      }
      // Classes of a fresh index leaf; their count given or inferred.
      int64_t classes = 1 + pick(4);
      Tensor labels = indexLeaf(randomShape(), 0, classes);
      int64_t given = coin() ? classes + pick(2) : -1;
      if (given == -1 && labels.numel() == 0)
        given = classes;
      log(name, "one_hot " + names.back() + " " + std::to_string(given));
      return add(name, kiln::one_hot(labels, given));
    }
    case 13: { // nll_loss, l1_loss, binary_cross_entropy_with_logits
      static const char *reductions[] = {"mean", "sum", "none"};
      std::string reduction = reductions[pick(3)];
      int op = pick(3);
      if (op == 0) {
        // x as log-probabilities [N, C] or [C]; targets of a fresh leaf,
        // -1 (ignored) among them.
        if ((rank != 1 && rank != 2) || x.shape().back() == 0)
          return step();
        std::vector<int64_t> shape;
        if (rank == 2)
          shape.push_back(x.shape()[0]);
        Tensor target = indexLeaf(shape, -1, x.shape().back());
        log(name, "nll_loss " + xn + " " + names.back() + " " + reduction);
        return add(name, kiln::nll_loss(x, target, reduction, -1));
      }
      size_t b = op == 1 ? operand() : partner(operand());
      if (op == 2 && pool[b].shape() != x.shape()) {
        (void)leaf(isFloat(x.dtype()) ? x.dtype() : DType::Float32, x.shape());
        b = pool.size() - 1;
      }
      log(name, std::string(op == 1 ? "l1_loss " : "bce_logits ") + xn + " " +
                    names[b] + " " + reduction);
      return add(name, op == 1 ? kiln::l1_loss(x, pool[b], reduction)
                               : kiln::binary_cross_entropy_with_logits(
                                     x, pool[b], reduction));
    }
    case 9: { // narrow, or a piece of split or chunk
      int64_t dim = dimIn(rank);
      int64_t wrapped = dim < 0 ? dim + rank : dim;
      int64_t size = wrapped >= 0 && wrapped < rank ? x.shape()[wrapped] : 1;
      int op = pick(3);
      if (op == 0) {
        int64_t start = static_cast<int64_t>(pick(2 * size + 3)) - size - 1;
        int64_t from = start < 0 ? std::max<int64_t>(start + size, 0) : start;
        int64_t length = static_cast<int64_t>(
            pick(std::max<int64_t>(size - from, 0) + 2)); // sometimes too long
        log(name, "narrow " + xn + " " + std::to_string(dim) + " " +
                      std::to_string(start) + " " + std::to_string(length));
        return add(name, kiln::narrow(x, dim, start, length));
      }
      // The piece: a random number modulo the count of pieces.
      int64_t which = pick(8);
      int64_t amount = static_cast<int64_t>(pick(size + 2)) - (op == 2);
      log(name, std::string(op == 1 ? "split_piece " : "chunk_piece ") + xn +
                    " " + std::to_string(amount) + " " + std::to_string(dim) +
                    " " + std::to_string(which));
      std::vector<Tensor> parts =
          op == 1 ? kiln::split(x, amount, dim) : kiln::chunk(x, amount, dim);
      return add(name, parts[which % parts.size()]);
    }
    case 10:
    case 11: { // cat or stack of x and one or two fitting tensors
      bool isCat = pick(3) != 0;
      int64_t dim = dimIn(rank + !isCat);
      int64_t at = rank == 0 ? 0 : (dim % rank + rank) % rank;
      std::vector<Tensor> tensors{x};
      std::string text = std::string(isCat ? "cat " : "stack ") +
                         std::to_string(dim) + " " + xn;
      int others = 1 + pick(2);
      for (int i = 0; i < others; ++i) {
        // A pool value of x's shape (cat: any size along the dim), else a
        // new leaf of a random dtype; now and then a 1-D empty one.
        std::vector<int64_t> shape = x.shape();
        if (isCat && rank > 0)
          shape[at] = pick(4);
        if (isCat && pick(8) == 0)
          shape = {0};
        size_t found = pool.size();
        for (size_t c = 0; c < pool.size() && found == pool.size(); ++c) {
          const std::vector<int64_t> &own = pool[c].shape();
          bool fits = own.size() == x.shape().size();
          for (size_t d = 0; fits && d < own.size(); ++d)
            fits = own[d] == x.shape()[d] ||
                   (isCat && static_cast<int64_t>(d) == at);
          if (fits && coin())
            found = c;
        }
        if (found == pool.size()) {
          static const DType dtypes[] = {DType::Float32, DType::Float64,
                                         DType::Int64, DType::Int32,
                                         DType::Bool};
          (void)leaf(pick(2) ? x.dtype() : dtypes[pick(5)], shape);
          found = pool.size() - 1;
        }
        tensors.push_back(pool[found]);
        text += " " + names[found];
      }
      log(name, text);
      return add(name,
                 isCat ? kiln::cat(tensors, dim) : kiln::stack(tensors, dim));
    }
    case 0: {
      int64_t a = dimIn(rank), b = dimIn(rank);
      log(name, "transpose " + xn + " " + std::to_string(a) + " " +
                    std::to_string(b));
      return add(name, kiln::transpose(x, a, b));
    }
    case 1: {
      if (coin()) {
        log(name, "squeeze " + xn + " all");
        return add(name, x.squeeze());
      }
      int64_t d = dimIn(rank);
      log(name, "squeeze " + xn + " " + std::to_string(d));
      return add(name, x.squeeze(d));
    }
    case 2: {
      if (coin()) {
        int64_t d = dimIn(rank + 1);
        log(name, "unsqueeze " + xn + " " + std::to_string(d));
        return add(name, x.unsqueeze(d));
      }
      int64_t start = dimIn(rank), end = dimIn(rank);
      log(name, "flatten_dims " + xn + " " + std::to_string(start) + " " +
                    std::to_string(end));
      return add(name, x.flatten(start, end));
    }
    case 3:
    case 4: {
      static const char *ops[] = {"var", "std", "logsumexp"};
      int op = pick(3);
      std::vector<int64_t> dims = randomDims(rank);
      bool keepdim = coin();
      int correction = pick(2);
      log(name, std::string(ops[op]) + " " + xn + " " +
                    joined(dims, ",", "all") + " " +
                    std::to_string(correction) + " " + (keepdim ? "1" : "0"));
      if (op == 2)
        return add(name, kiln::logsumexp(x, dims, keepdim));
      return add(name, op == 0 ? kiln::var(x, dims, correction, keepdim)
                               : kiln::std(x, dims, correction, keepdim));
    }
    case 5: { // linear with new weights (and bias) of x's dtype
      if (rank == 0 || !isFloat(x.dtype()))
        return step();
      int64_t in = x.shape().back();
      bool matrix = pick(4) != 0;
      int64_t out = 1 + pick(3);
      Tensor weight = leaf(x.dtype(), matrix ? std::vector<int64_t>{out, in}
                                             : std::vector<int64_t>{in});
      std::string wn = names.back();
      Tensor bias;
      std::string bn = "none";
      if (matrix && coin()) {
        bias = leaf(x.dtype(), {out});
        bn = names.back();
      }
      log(name, "linear " + xn + " " + wn + " " + bn);
      return add(name, kiln::linear(x, weight, bias));
    }
    case 6: { // layer_norm over the last one or two dims
      if (rank == 0 || !isFloat(x.dtype()))
        return step();
      int64_t k = 1 + pick(std::min<int64_t>(rank, 2));
      std::vector<int64_t> normalized(x.shape().end() - k, x.shape().end());
      Tensor weight, bias;
      std::string wn = "none", bn = "none";
      if (coin()) {
        weight = leaf(x.dtype(), normalized);
        wn = names.back();
      }
      if (coin()) {
        bias = leaf(x.dtype(), normalized);
        bn = names.back();
      }
      log(name,
          "layer_norm " + xn + " " + std::to_string(k) + " " + wn + " " + bn);
      return add(name, kiln::layer_norm(x, normalized, weight, bias));
    }
    case 7:
      log(name, "silu " + xn);
      return add(name, kiln::silu(x));
    default: {
      static const double slopes[] = {0.01, 0.2, -0.5};
      double slope = slopes[pick(3)];
      char text[64];
      std::snprintf(text, sizeof text, " %a", slope);
      log(name, "leaky_relu " + xn + text);
      return add(name, kiln::leaky_relu(x, slope));
    }
    }
  }

  /// A float as the log prints it (exactly).
  static std::string hex(double v) {
    char text[64];
    std::snprintf(text, sizeof text, "%a", v);
    return text;
  }

  /// A pool value of `shape` (else a new float leaf of it).
  size_t sameShape(const std::vector<int64_t> &shape, DType dtype) {
    for (int tries = 0; tries < 4; ++tries) {
      size_t b = operand();
      if (pool[b].shape() == shape)
        return b;
    }
    (void)leaf(dtype, shape);
    return pool.size() - 1;
  }

  /// The functions of Functional.cpp: predicates and logical functions,
  /// pointwise math, activations, losses and similarities, shape and
  /// matrix functions. Log lines: "fn NAME ARGS..." (replayed by name).
  void functional(const Tensor &x, const std::string &xn,
                  const std::string &name) {
    int64_t rank = x.dim();
    DType floatType = isFloat(x.dtype()) ? x.dtype() : DType::Float32;
    auto dimIn = [&](int64_t size) {
      size = std::max<int64_t>(size, 1);
      if (pick(20) == 0)
        return coin() ? size : -size - 1;
      return static_cast<int64_t>(pick(size)) - (coin() ? size : 0);
    };
    static const char *reductions[] = {"mean", "sum", "none"};
    switch (pick(10)) {
    case 0: { // unary functions of any dtype
      static const char *ops[] = {"isnan",       "isinf",  "isfinite",
                                  "logical_not", "sign",   "nan_to_num",
                                  "reciprocal",  "square", "log1p",
                                  "expm1",       "erf",    "softsign"};
      static Tensor (*const fns[])(const Tensor &, kiln::SourceLocation) = {
          kiln::isnan, kiln::isinf, kiln::isfinite,   kiln::logical_not,
          kiln::sign,  nullptr,     kiln::reciprocal, kiln::square,
          kiln::log1p, kiln::expm1, kiln::erf,        kiln::softsign};
      int op = pick(12);
      if (op == 5) {
        double nan = coin() ? 0.0 : 1.5;
        log(name, "fn nan_to_num " + xn + " " + hex(nan));
        return add(name, kiln::nan_to_num(x, nan));
      }
      log(name, std::string("fn ") + ops[op] + " " + xn);
      return add(name, fns[op](x, kiln::SourceLocation::current()));
    }
    case 1:
    case 2: { // activations with their parameters
      int op = pick(11);
      static const double alphas[] = {1.0, 0.5, 2.0};
      double a = alphas[pick(3)];
      switch (op) {
      case 0: {
        double beta = coin() ? 1.0 : 2.0, threshold = coin() ? 20.0 : 1.0;
        log(name, "fn softplus " + xn + " " + hex(beta) + " " + hex(threshold));
        return add(name, kiln::softplus(x, beta, threshold));
      }
      case 1:
        log(name, "fn elu " + xn + " " + hex(a));
        return add(name, kiln::elu(x, a));
      case 3:
        log(name, "fn celu " + xn + " " + hex(a));
        return add(name, kiln::celu(x, a));
      case 4: {
        std::string approximate = coin() ? "none" : "tanh";
        log(name, "fn gelu " + xn + " " + approximate);
        return add(name, kiln::gelu(x, approximate));
      }
      case 5: {
        // Bounds at the leaves' special values (ties at -1, 0.5, 1, 2).
        static const double bounds[][2] = {{-1.0, 1.0}, {0.5, 2.0}, {0.0, 0.0}};
        const double *b = bounds[pick(3)];
        log(name, "fn hardtanh " + xn + " " + hex(b[0]) + " " + hex(b[1]));
        return add(name, kiln::hardtanh(x, b[0], b[1]));
      }
      default: { // 2 and 6 to 10: those without parameters
        static const char *plain[] = {"selu",      "relu6", "hardsigmoid",
                                      "hardswish", "mish",  "logsigmoid"};
        static Tensor (*const plainFns[])(const Tensor &,
                                          kiln::SourceLocation) = {
            kiln::selu,      kiln::relu6, kiln::hardsigmoid,
            kiln::hardswish, kiln::mish,  kiln::logsigmoid};
        int i = op == 2 ? 0 : op - 5;
        log(name, std::string("fn ") + plain[i] + " " + xn);
        return add(name, plainFns[i](x, kiln::SourceLocation::current()));
      }
      }
    }
    case 3: { // logical functions, any and all
      int op = pick(5);
      if (op < 3) {
        static const char *ops[] = {"logical_and", "logical_or", "logical_xor"};
        size_t b = partner(operand());
        log(name, std::string("fn ") + ops[op] + " " + xn + " " + names[b]);
        const Tensor &y = pool[b];
        return add(name, op == 0   ? kiln::logical_and(x, y)
                         : op == 1 ? kiln::logical_or(x, y)
                                   : kiln::logical_xor(x, y));
      }
      const char *fn = op == 3 ? "any" : "all";
      if (coin()) {
        log(name, std::string("fn ") + fn + " " + xn + " all");
        return add(name, op == 3 ? kiln::any(x) : kiln::all(x));
      }
      int64_t dim = dimIn(rank);
      bool keepdim = coin();
      log(name, std::string("fn ") + fn + " " + xn + " " + std::to_string(dim) +
                    " " + (keepdim ? "1" : "0"));
      return add(name, op == 3 ? kiln::any(x, dim, keepdim)
                               : kiln::all(x, dim, keepdim));
    }
    case 4: { // lerp, addcmul, addcdiv
      size_t b = partner(operand()), c = partner(operand());
      int op = pick(4);
      if (op == 0) {
        double w = coin() ? 0.25 : 0.75;
        log(name, "fn lerp_number " + xn + " " + names[b] + " " + hex(w));
        return add(name, kiln::lerp(x, pool[b], w));
      }
      if (op == 1) {
        log(name, "fn lerp " + xn + " " + names[b] + " " + names[c]);
        return add(name, kiln::lerp(x, pool[b], pool[c]));
      }
      Scalar value = coin() ? Scalar(1) : number();
      log(name, std::string(op == 2 ? "fn addcmul " : "fn addcdiv ") + xn +
                    " " + names[b] + " " + names[c] + " " + numberText(value));
      return add(name, op == 2 ? kiln::addcmul(x, pool[b], pool[c], value)
                               : kiln::addcdiv(x, pool[b], pool[c], value));
    }
    case 5: { // smooth_l1_loss, huber_loss, kl_div
      std::string reduction = reductions[pick(3)];
      size_t b = sameShape(x.shape(), floatType);
      int op = pick(3);
      if (op == 2) {
        bool logTarget = coin();
        if (reduction == "mean" && coin())
          reduction = "batchmean";
        log(name, "fn kl_div " + xn + " " + names[b] + " " + reduction + " " +
                      (logTarget ? "1" : "0"));
        return add(name, kiln::kl_div(x, pool[b], reduction, logTarget));
      }
      static const double params[] = {1.0, 0.5, 0.0};
      double p = params[pick(3)];
      log(name, std::string(op == 0 ? "fn smooth_l1_loss " : "fn huber_loss ") +
                    xn + " " + names[b] + " " + reduction + " " + hex(p));
      return add(name, op == 0 ? kiln::smooth_l1_loss(x, pool[b], reduction, p)
                               : kiln::huber_loss(x, pool[b], reduction, p));
    }
    case 6: { // cosine_similarity, normalize
      int64_t dim = dimIn(rank);
      if (coin()) {
        size_t b = partner(operand());
        log(name, "fn cosine_similarity " + xn + " " + names[b] + " " +
                      std::to_string(dim));
        return add(name, kiln::cosine_similarity(x, pool[b], dim));
      }
      double p = coin() ? 2.0 : 1.0;
      log(name,
          "fn normalize " + xn + " " + hex(p) + " " + std::to_string(dim));
      return add(name, kiln::normalize(x, p, dim));
    }
    case 7: { // flip, roll, repeat, tile
      int op = pick(4);
      if (op == 0) {
        std::vector<int64_t> dims = randomDims(rank);
        log(name, "fn flip " + xn + " " + joined(dims, ",", "none"));
        return add(name, kiln::flip(x, dims));
      }
      if (op == 1) {
        std::vector<int64_t> dims =
            coin() ? std::vector<int64_t>{} : randomDims(rank);
        std::vector<int64_t> shifts;
        for (size_t i = 0; i < std::max<size_t>(dims.size(), 1); ++i)
          shifts.push_back(static_cast<int64_t>(pick(13)) - 6);
        log(name, "fn roll " + xn + " " + joined(shifts, ",", "none") + " " +
                      joined(dims, ",", "none"));
        return add(name, kiln::roll(x, shifts, dims));
      }
      std::vector<int64_t> repeats;
      int64_t count = std::max<int64_t>(
          rank + static_cast<int64_t>(pick(3)) - (op == 3 ? 1 : 0), 0);
      for (int64_t i = 0; i < count; ++i)
        repeats.push_back(pick(3));
      log(name, std::string(op == 2 ? "fn repeat " : "fn tile ") + xn + " " +
                    joined(repeats, ",", "none"));
      return add(name,
                 op == 2 ? kiln::repeat(x, repeats) : kiln::tile(x, repeats));
    }
    case 8: { // shrinkage, gating, margin losses, distances, trace
      static const double lambdas[] = {0.5, 1.0, 0.0};
      static const double margins[] = {0.0, 1.0, 0.5};
      int op = pick(13);
      std::string reduction = reductions[pick(3)];
      switch (op) {
      case 0: {
        int64_t dim = dimIn(rank);
        log(name, "fn softmin " + xn + " " + std::to_string(dim));
        return add(name, kiln::softmin(x, dim));
      }
      case 1:
      case 2: {
        double l = lambdas[pick(3)];
        log(name, std::string(op == 1 ? "fn hardshrink " : "fn softshrink ") +
                      xn + " " + hex(l));
        return add(name,
                   op == 1 ? kiln::hardshrink(x, l) : kiln::softshrink(x, l));
      }
      case 3:
        log(name, "fn tanhshrink " + xn);
        return add(name, kiln::tanhshrink(x));
      case 4: {
        double t = lambdas[pick(3)] - 0.5, v = coin() ? 2.0 : -0.5;
        log(name, "fn threshold " + xn + " " + hex(t) + " " + hex(v));
        return add(name, kiln::threshold(x, t, v));
      }
      case 5: {
        int64_t dim = dimIn(rank);
        log(name, "fn glu " + xn + " " + std::to_string(dim));
        return add(name, kiln::glu(x, dim));
      }
      case 6: {
        size_t b = partner(operand()), c = partner(operand());
        double m = margins[pick(3)];
        log(name, "fn margin_ranking_loss " + xn + " " + names[b] + " " +
                      names[c] + " " + hex(m) + " " + reduction);
        return add(
            name, kiln::margin_ranking_loss(x, pool[b], pool[c], m, reduction));
      }
      case 7:
      case 8:
      case 9: {
        size_t b = partner(operand());
        if (op == 7) {
          double m = margins[pick(3)];
          log(name, "fn hinge_embedding_loss " + xn + " " + names[b] + " " +
                        hex(m) + " " + reduction);
          return add(name,
                     kiln::hinge_embedding_loss(x, pool[b], m, reduction));
        }
        if (op == 8) {
          log(name,
              "fn soft_margin_loss " + xn + " " + names[b] + " " + reduction);
          return add(name, kiln::soft_margin_loss(x, pool[b], reduction));
        }
        log(name, "fn multilabel_soft_margin_loss " + xn + " " + names[b] +
                      " " + reduction);
        return add(name,
                   kiln::multilabel_soft_margin_loss(x, pool[b], reduction));
      }
      case 10: {
        size_t b = sameShape(x.shape(), floatType);
        bool logInput = coin(), full = coin();
        log(name, "fn poisson_nll_loss " + xn + " " + names[b] + " " +
                      (logInput ? "1" : "0") + " " + (full ? "1" : "0") + " " +
                      reduction);
        return add(name, kiln::poisson_nll_loss(x, pool[b], logInput, full,
                                                1e-8, reduction));
      }
      case 11: {
        size_t b = partner(operand());
        double p = coin() ? 2.0 : 1.0;
        if (coin()) {
          bool keepdim = coin();
          log(name, "fn pairwise_distance " + xn + " " + names[b] + " " +
                        hex(p) + " " + (keepdim ? "1" : "0"));
          return add(name,
                     kiln::pairwise_distance(x, pool[b], p, 1e-6, keepdim));
        }
        size_t c = partner(operand());
        bool swap = coin();
        log(name, "fn triplet_margin_loss " + xn + " " + names[b] + " " +
                      names[c] + " " + hex(p) + " " + (swap ? "1" : "0") + " " +
                      reduction);
        return add(name, kiln::triplet_margin_loss(x, pool[b], pool[c], 1.0, p,
                                                   1e-6, swap, reduction));
      }
      default:
        log(name, "fn trace " + xn);
        return add(name, kiln::trace(x));
      }
    }
    default: { // tril, triu, outer, dot, mv, mm, bmm, addmm, eye
      int op = pick(8);
      if (op < 2) {
        int64_t diagonal = static_cast<int64_t>(pick(5)) - 2;
        log(name, std::string(op == 0 ? "fn tril " : "fn triu ") + xn + " " +
                      std::to_string(diagonal));
        return add(name,
                   op == 0 ? kiln::tril(x, diagonal) : kiln::triu(x, diagonal));
      }
      if (op == 7) {
        int64_t n = pick(4), m = coin() ? -1 : static_cast<int64_t>(pick(4));
        log(name, "fn eye " + std::to_string(n) + " " + std::to_string(m));
        return add(name, kiln::eye(n, m));
      }
      // New leaves of x's dtype (now and then of another, an error
      // unless promoted) with fitting shapes.
      static const DType dtypes[] = {DType::Float32, DType::Float64,
                                     DType::Int64, DType::Bool};
      DType dtype = pick(6) == 0 ? dtypes[pick(4)] : x.dtype();
      int64_t n = 1 + pick(3), k = 1 + pick(3), m = 1 + pick(3);
      if (op == 2 || op == 3) {
        std::vector<int64_t> shape{rank == 1 ? x.shape()[0] : n};
        Tensor a = rank == 1 ? x : leaf(x.dtype(), shape);
        std::string an = rank == 1 ? xn : names.back();
        if (op == 3 && pick(8) == 0)
          shape[0] += 1; // sizes differ: dot's error
        (void)leaf(dtype, op == 2 ? std::vector<int64_t>{m} : shape);
        std::string bn = names.back();
        log(name,
            std::string(op == 2 ? "fn outer " : "fn dot ") + an + " " + bn);
        Tensor y = pool.back();
        return add(name, op == 2 ? kiln::outer(a, y) : kiln::dot(a, y));
      }
      bool batched = op == 6 && coin();
      std::vector<int64_t> left{n, k}, right{k, m};
      if (op == 4)
        right = {k};
      if (op == 5 || batched) {
        left.insert(left.begin(), 2);
        right.insert(right.begin(), 2);
      }
      Tensor a = leaf(x.dtype(), left);
      std::string an = names.back();
      Tensor b = leaf(dtype, right);
      std::string bn = names.back();
      if (op == 6) {
        std::vector<int64_t> inShape =
            coin() ? std::vector<int64_t>{n, m} : std::vector<int64_t>{m};
        Tensor input = leaf(x.dtype(), inShape);
        std::string in = names.back();
        double beta = coin() ? 1.0 : 0.5, alpha = coin() ? 1.0 : 2.0;
        log(name, "fn addmm " + in + " " + an + " " + bn + " " + hex(beta) +
                      " " + hex(alpha));
        return add(name, kiln::addmm(input, a, b, beta, alpha));
      }
      const char *fn = op == 4 ? "mv" : op == 5 ? "bmm" : "mm";
      log(name, std::string("fn ") + fn + " " + an + " " + bn);
      return add(name, op == 4   ? kiln::mv(a, b)
                       : op == 5 ? kiln::bmm(a, b)
                                 : kiln::mm(a, b));
    }
    }
  }

  /// backward() of the sum of a float value that depends on leaves
  /// requiring gradients (when there is one), then every leaf's grad.
  void gradients() {
    if (leaves.empty())
      return;
    for (size_t tries = 0; tries < 8; ++tries) {
      size_t i = pick(pool.size());
      if (!isFloat(pool[i].dtype()))
        continue;
      std::string name = fresh();
      emit("loss %s %s\n", name.c_str(), names[i].c_str());
      Tensor loss = kiln::sum(pool[i]);
      try {
        loss.backward();
      } catch (const kiln::Error &error) {
        // No path from a leaf that requires gradients (or none through
        // differentiable ops): PyTorch has no gradient either.
        emit("nobackward %s %s\n", name.c_str(), oneLine(error).c_str());
        return;
      }
      emit("backward %s\n", name.c_str());
      for (auto &[leafName, leaf] : leaves) {
        Tensor g = leaf.grad();
        if (g.defined())
          emit("grad %s %s\n", leafName.c_str(), tensorText(g).c_str());
        else
          emit("nograd %s\n", leafName.c_str());
      }
      return;
    }
  }
};

} // namespace

int main(int argc, char **argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: kiln-api-fuzz SEED COUNT\n");
    return 1;
  }
  uint64_t seed = std::strtoull(argv[1], nullptr, 10);
  int count = std::atoi(argv[2]);
  Fuzzer fuzzer(seed);
  for (int i = 0; i < count; ++i)
    fuzzer.program(i);
  return 0;
}
