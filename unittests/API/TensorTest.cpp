//===- TensorTest.cpp - Tests of the embedding API ------------------------===//
//
// Laziness (nothing compiles or runs before a result is read), results and
// gradients against PyTorch's values (computed with torch 1.13 and written
// here), errors with the caller's location, type promotion, compile reuse,
// the IR view, IR files, and concurrent use from several threads.
//
//===----------------------------------------------------------------------===//

#include "kiln/kiln.h"

#include <gtest/gtest.h>

#include <pthread.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <thread>

using kiln::Tensor;

namespace {

void expectNear(const std::vector<float> &got, const std::vector<float> &want,
                float tolerance = 1e-5f) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], want[i], tolerance) << "element " << i;
}

/// The message of the kiln::Error `f` throws, or "no error".
std::string errorMessage(const std::function<void()> &f) {
  try {
    f();
  } catch (const kiln::Error &error) {
    return error.what();
  }
  return "no error";
}

/// `f` throws a kiln::Error whose message contains `text`.
void expectError(const std::function<void()> &f, const std::string &text) {
  std::string message = errorMessage(f);
  EXPECT_NE(message.find(text), std::string::npos) << message;
}

TEST(Laziness, NothingRunsBeforeAResultIsRead) {
  kiln::RuntimeStats before = kiln::runtimeStats();
  Tensor x = Tensor::fromVector(std::vector<float>{3, 1, 4, 2});
  Tensor y = kiln::exp(x) * 2.0 + 1.0;
  auto [values, indices] = kiln::topk(y, 2);
  kiln::RuntimeStats during = kiln::runtimeStats();
  EXPECT_EQ(during.runs, before.runs);
  EXPECT_EQ(during.graphsCompiled, before.graphsCompiled);
  EXPECT_FALSE(values.isRealized());
  EXPECT_EQ(indices.toVector<int64_t>(), (std::vector<int64_t>{2, 0}));
  EXPECT_TRUE(indices.isRealized());
  EXPECT_EQ(kiln::runtimeStats().runs, before.runs + 1);
}

TEST(Results, ClassicExamples) {
  Tensor x = Tensor::fromVector(std::vector<float>{1, 2, 3});
  expectNear(kiln::softmax(x, 0).toVector<float>(),
             {0.09003057f, 0.24472848f, 0.66524094f});
  Tensor m = Tensor::fromVector(std::vector<float>{1, 5, 2, 4, 3, 0}, {2, 3});
  auto [v, i] = kiln::max(m, 1);
  expectNear(v.toVector<float>(), {5, 4});
  EXPECT_EQ(i.toVector<int64_t>(), (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(kiln::argmax(m).item<int64_t>(), 1);
  EXPECT_EQ(kiln::topk(m, 1, 1, /*largest=*/false).indices.toVector<int64_t>(),
            (std::vector<int64_t>{0, 2}));
  EXPECT_EQ(v.toString(), "tensor([5., 4.])");
}

TEST(Promotion, NumbersAndMixedDtypes) {
  Tensor i = Tensor::fromVector(std::vector<int64_t>{1, 2, 3});
  Tensor half = i * 0.5;
  EXPECT_EQ(half.dtype(), kiln::DType::Float32);
  expectNear(half.toVector<float>(), {0.5f, 1.0f, 1.5f});
  Tensor f = Tensor::fromVector(std::vector<double>{0.25, 0.25, 0.25});
  Tensor mixed = i + f;
  EXPECT_EQ(mixed.dtype(), kiln::DType::Float64);
  EXPECT_EQ((i + 1).dtype(), kiln::DType::Int64);
  Tensor mask = i > 1;
  EXPECT_EQ(mask.dtype(), kiln::DType::Bool);
  EXPECT_EQ(mask.toVector<bool>(), (std::vector<bool>{false, true, true}));
}

// torch.result_type: rank-0 tensors and numbers raise the dtype of
// dimensioned operands only when of a higher category (bool < integer <
// float). Each expectation is what torch 1.13 gives for the same operands.
TEST(Promotion, RankZeroOperandsAndNumbersAsInPyTorch) {
  using kiln::DType;
  Tensor i32 =
      kiln::cast(Tensor::fromVector(std::vector<int64_t>{1, 2}), DType::Int32);
  Tensor f32 = Tensor::fromVector(std::vector<float>{1, 2}, {2});
  Tensor mask = i32 > 1;
  Tensor i64Scalar = kiln::full({}, 3, DType::Int64);
  Tensor f64Scalar = kiln::full({}, 2, DType::Float64);
  Tensor i32Scalar = kiln::full({}, 1, DType::Int32);
  EXPECT_EQ((i32 + 1).dtype(), DType::Int32);
  EXPECT_EQ((1 - i32).dtype(), DType::Int32);
  EXPECT_EQ((i32 * 2.5).dtype(), DType::Float32);
  EXPECT_EQ((i32 / 2).dtype(), DType::Float32);
  EXPECT_EQ((mask + 1).dtype(), DType::Int64);
  EXPECT_EQ((mask * 0.5).dtype(), DType::Float32);
  EXPECT_EQ((i32 + i64Scalar).dtype(), DType::Int32);
  EXPECT_EQ(kiln::maximum(i32, i64Scalar).dtype(), DType::Int32);
  EXPECT_EQ((i32 * f64Scalar).dtype(), DType::Float64);
  EXPECT_EQ((f32 + f64Scalar).dtype(), DType::Float32);
  EXPECT_EQ((mask + i64Scalar).dtype(), DType::Int64);
  EXPECT_EQ((i32Scalar + 5).dtype(), DType::Int32);
  EXPECT_EQ((i32Scalar + f64Scalar).dtype(), DType::Float64);
  EXPECT_EQ(kiln::where(mask, i32, i64Scalar).dtype(), DType::Int32);
  // The values too: [1, 2] + 3 in int32, [1, 2] * 2.0 in float64.
  EXPECT_EQ((i32 + i64Scalar).toVector<int32_t>(),
            (std::vector<int32_t>{4, 5}));
  EXPECT_EQ((i32 * f64Scalar).toVector<double>(), (std::vector<double>{2, 4}));
  EXPECT_EQ(kiln::where(mask, i32, i64Scalar).toVector<int32_t>(),
            (std::vector<int32_t>{3, 2}));
  // PyTorch wraps a number an int32 tensor cannot hold (2^40 added as 0);
  // Kiln says so at the call.
  expectError([&] { (void)(i32 + (int64_t(1) << 40)); }, "does not fit");
}

// Integer and bool tensors through ops kiln computes only in floats or in
// i64: the API casts as PyTorch's results require (values from torch 1.13).
TEST(Promotion, IntegerAndBoolOperandsAsInPyTorch) {
  using kiln::DType;
  auto int32s = [](std::vector<int64_t> values) {
    int64_t n = static_cast<int64_t>(values.size());
    return kiln::cast(Tensor::fromVector(std::move(values), {n}), DType::Int32);
  };
  Tensor i = int32s({1, -2, 3});
  Tensor big = int32s({2147483647, -2147483648LL});
  Tensor b = Tensor::fromVector(std::vector<bool>{true, false, true});
  using I32 = std::vector<int32_t>;
  using I64 = std::vector<int64_t>;
  using Bools = std::vector<bool>;
  // Floating-point math of integers and bools is float32.
  Tensor root = kiln::sqrt(i);
  EXPECT_EQ(root.dtype(), DType::Float32);
  std::vector<float> roots = root.toVector<float>();
  EXPECT_FLOAT_EQ(roots[0], 1.0f);
  EXPECT_TRUE(std::isnan(roots[1]));
  EXPECT_NEAR(roots[2], 1.7320508f, 1e-6f);
  expectNear(kiln::exp(b).toVector<float>(), {2.7182817f, 1.0f, 2.7182817f});
  // Rounding gives integers back; relu is max(x, 0) in their dtype.
  EXPECT_EQ(kiln::floor(i).toVector<int32_t>(), (I32{1, -2, 3}));
  EXPECT_EQ(kiln::relu(i).toVector<int32_t>(), (I32{1, 0, 3}));
  // clamp: a bound that is not an integer makes the result float32, a bool
  // tensor becomes int64.
  Tensor half = kiln::clamp(i, 0.5, std::nullopt);
  EXPECT_EQ(half.dtype(), DType::Float32);
  expectNear(half.toVector<float>(), {1.0f, 0.5f, 3.0f});
  EXPECT_EQ(kiln::clamp(b, 0.0, 1.0).toVector<int64_t>(), (I64{1, 0, 1}));
  // i32 arithmetic wraps as PyTorch's does.
  EXPECT_EQ((big * 2).toVector<int32_t>(), (I32{-2, 0}));
  EXPECT_EQ((big + 1).toVector<int32_t>(), (I32{-2147483647 - 1, -2147483647}));
  EXPECT_EQ((-big).toVector<int32_t>(), (I32{-2147483647, -2147483647 - 1}));
  EXPECT_EQ(kiln::abs(big).toVector<int32_t>(),
            (I32{2147483647, -2147483647 - 1}));
  EXPECT_EQ(kiln::matmul(i, i).item<int32_t>(), 14);
  EXPECT_EQ(kiln::matmul(big, int32s({2, 2})).item<int32_t>(), -2);
  // bool + bool is or, bool * bool is and; bool - bool is an error.
  EXPECT_EQ((b + b).toVector<bool>(), (Bools{true, false, true}));
  EXPECT_EQ((b * b).toVector<bool>(), (Bools{true, false, true}));
  EXPECT_EQ(kiln::maximum(b, b == false).toVector<bool>(),
            (Bools{true, true, true}));
  expectError([&] { (void)kiln::sub(b, b); }, "two bool tensors");
  // Sums and products of i32 and bool are int64; the extremes keep the
  // dtype, and so do the values of max/min/topk/kthvalue.
  EXPECT_EQ(kiln::sum(i).dtype(), DType::Int64);
  EXPECT_EQ(kiln::sum(i).item<int64_t>(), 2);
  EXPECT_EQ(kiln::sum(b).item<int64_t>(), 2);
  EXPECT_EQ(kiln::prod(i).item<int64_t>(), -6);
  EXPECT_EQ(kiln::amax(i).item<int32_t>(), 3);
  EXPECT_EQ(kiln::amin(b).item<bool>(), false);
  kiln::ValuesIndices rowMin =
      kiln::min(int32s({1, 5, 7, 2}).reshape({2, 2}), 1);
  EXPECT_EQ(rowMin.values.toVector<int32_t>(), (I32{1, 2}));
  EXPECT_EQ(rowMin.indices.toVector<int64_t>(), (I64{0, 1}));
  kiln::ValuesIndices top = kiln::topk(i, 2);
  EXPECT_EQ(top.values.toVector<int32_t>(), (I32{3, 1}));
  EXPECT_EQ(top.indices.toVector<int64_t>(), (I64{2, 0}));
  EXPECT_EQ(kiln::kthvalue(i, 2).values.item<int32_t>(), 1);
  EXPECT_EQ(kiln::argmin(i).item<int64_t>(), 1);
  // scatter_add and index_add of i32 wrap too.
  Tensor slots = kiln::zeros({3}, DType::Int32);
  Tensor src = int32s({2147483647, -2147483648LL, 2147483647});
  EXPECT_EQ(kiln::scatter_add(slots, 0, Tensor::fromVector(I64{0, 0, 2}), src)
                .toVector<int32_t>(),
            (I32{-1, 0, 2147483647}));
  EXPECT_EQ(kiln::index_add(i, 0, Tensor::fromVector(I64{0, 0, 1}), src)
                .toVector<int32_t>(),
            (I32{0, 2147483645, 3}));
  // What PyTorch does not compute for integers, Kiln does not either.
  expectError([&] { (void)kiln::mean(i); }, "kiln.mean");
  expectError([&] { (void)kiln::frac(i); }, "kiln.frac");
}

// torch.where with numbers (torch 1.13's values and dtypes).
TEST(Promotion, WhereWithNumbers) {
  using kiln::DType;
  Tensor cond = Tensor::fromVector(std::vector<bool>{true, false, true});
  Tensor x = Tensor::fromVector(std::vector<float>{1, 2, 3});
  Tensor i = Tensor::fromVector(std::vector<int64_t>{1, 2, 3});
  expectNear(kiln::where(cond, x, 0.5).toVector<float>(), {1, 0.5f, 3});
  EXPECT_EQ(kiln::where(cond, i, 7).toVector<int64_t>(),
            (std::vector<int64_t>{1, 7, 3}));
  Tensor mixed = kiln::where(cond, i, 0.5);
  EXPECT_EQ(mixed.dtype(), DType::Float32);
  expectNear(mixed.toVector<float>(), {1, 0.5f, 3});
  expectNear(kiln::where(cond, 2, x).toVector<float>(), {2, 2, 2});
  Tensor numbers = kiln::where(cond, 1.0, 0.0);
  EXPECT_EQ(numbers.dtype(), DType::Float32);
  EXPECT_EQ(numbers.shape(), (std::vector<int64_t>{3}));
  expectNear(numbers.toVector<float>(), {1, 0, 1});
  EXPECT_EQ(kiln::where(cond, 1, 0).dtype(), DType::Int64);
}

TEST(Errors, ShapeErrorsAtTheCallWithTheCallersLine) {
  Tensor x = Tensor::fromVector(std::vector<float>(10, 1.0f), {2, 5});
  int line = __LINE__ + 2;
  try {
    kiln::topk(x, 11, 1);
    FAIL() << "no error";
  } catch (const kiln::Error &error) {
    EXPECT_EQ(error.where().line, line);
    EXPECT_NE(std::string(error.what())
                  .find("k (11) exceeds the size of "
                        "dim 1 (5)"),
              std::string::npos)
        << error.what();
    EXPECT_NE(std::string(error.what()).find("TensorTest.cpp"),
              std::string::npos);
  }
  Tensor y = Tensor::fromVector(std::vector<float>(3, 1.0f));
  EXPECT_THROW(x + y, kiln::Error); // [2, 5] and [3] do not broadcast
  EXPECT_THROW(Tensor::fromVector(std::vector<float>{1, 2, 3}, {2, 2}),
               kiln::Error);
  EXPECT_THROW(Tensor().realize(), kiln::Error);
}

TEST(Errors, EachFailedCheckReportsItsOwnLine) {
  // Checks that pass are remembered per thread (a training loop builds the
  // same nodes every step); failures are not: each reports where it was.
  Tensor x = Tensor::fromVector(std::vector<float>(10, 1.0f), {2, 5});
  EXPECT_EQ(kiln::topk(x, 3, 1).values.shape(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(kiln::topk(x, 3, 1).values.shape(), (std::vector<int64_t>{2, 3}));
  std::vector<int> lines;
  for (int i = 0; i < 2; ++i) {
    try {
      if (i == 0)
        kiln::topk(x, 6, 1);
      else
        kiln::topk(x, 6, 1);
      FAIL() << "no error";
    } catch (const kiln::Error &error) {
      lines.push_back(error.where().line);
      EXPECT_NE(std::string(error.what()).find("k (6) exceeds the size"),
                std::string::npos)
          << error.what();
    }
  }
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1], lines[0] + 2);
  // The same op and attributes on other operand types are checked anew.
  Tensor y = Tensor::fromVector(std::vector<float>(4, 1.0f), {2, 2});
  EXPECT_THROW(kiln::topk(y, 3, 1), kiln::Error);
}

TEST(Results, ScalarsOfAnyMagnitude) {
  // Were printed as "1e+20", which MLIR does not read as a float
  // ("internal error: bad attributes").
  EXPECT_EQ(kiln::full({2}, 1e20).toString(),
            "tensor([1.0000e+20, 1.0000e+20])");
  Tensor x = Tensor::fromVector(std::vector<float>{1, 2});
  expectNear((x * 1e30f * 1e-30f).toVector<float>(), {1, 2});
  Tensor d = Tensor::fromVector(std::vector<double>{1, 2});
  EXPECT_EQ((d * 1e-300).toVector<double>(),
            (std::vector<double>{1e-300, 2e-300}));
  EXPECT_EQ((d + 0.1).toVector<double>(), (std::vector<double>{1.1, 2.1}));
  EXPECT_EQ(kiln::clamp(d, -1e300, 1.5).toVector<double>(),
            (std::vector<double>{1, 1.5}));
  // Every double reads back with the same bits (f32: rounded once), the
  // second time too (numbers' signatures are remembered by their bits:
  // -0.0 is not 0.0).
  for (int round = 0; round < 2; ++round)
    for (double v :
         {-0.0, 0.0, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308,
          123456789012345678.0, 0.1, 1.0 / 3, -2.5e-7, 1e16, 100.0,
          -std::numeric_limits<double>::infinity()}) {
      double got = kiln::full({}, v, kiln::DType::Float64).item<double>();
      EXPECT_EQ(std::memcmp(&got, &v, sizeof v), 0) << v;
      float single = static_cast<float>(v);
      float gotSingle = kiln::full({}, v).item<float>();
      EXPECT_EQ(std::memcmp(&gotSingle, &single, sizeof single), 0) << v;
    }
  EXPECT_TRUE(std::isnan(
      kiln::full({}, std::numeric_limits<double>::quiet_NaN()).item<float>()));
}

TEST(Errors, NegativeSizesAtTheCall) {
  // Were taken as MLIR's dynamic size or reported as "more than 2^62
  // elements".
  EXPECT_NE(errorMessage([] {
              kiln::zeros({2, -3});
            }).find("full: negative size -3 in the shape"),
            std::string::npos);
  EXPECT_NE(errorMessage([] {
              kiln::arange(-2);
            }).find("arange: negative size -2 in the shape"),
            std::string::npos);
  Tensor x = Tensor::fromVector(std::vector<float>{1, 2}, {2, 1});
  EXPECT_NE(errorMessage([&] {
              x.reshape({-2, -1});
            }).find("reshape: negative size -2 in the shape"),
            std::string::npos);
  // expand's -1 keeps the size of the dim it lines up with (PyTorch); a
  // new leading dim has none.
  EXPECT_EQ(x.expand({3, -1, 2}).shape(), (std::vector<int64_t>{3, 2, 2}));
  EXPECT_NE(errorMessage([&] {
              x.expand({-1, 2, 2});
            }).find("expand: negative size -1 in the shape"),
            std::string::npos);
}

TEST(Errors, UndefinedTensorsAreErrorsEverywhere) {
  // The accessors dereferenced a null node (a segfault).
  Tensor undefined;
  expectError([&] { (void)undefined.dtype(); }, "dtype: undefined tensor");
  expectError([&] { (void)undefined.shape(); }, "shape: undefined tensor");
  expectError([&] { (void)undefined.dim(); }, "shape: undefined tensor");
  expectError([&] { (void)undefined.numel(); }, "numel: undefined tensor");
  expectError([&] { (void)undefined.isRealized(); },
              "isRealized: undefined tensor");
  // With a number: the op names itself.
  expectError([&] { undefined * 2; }, "kiln.mul: undefined tensor");
  expectError([&] { 2 - undefined; }, "kiln.sub: undefined tensor");
  EXPECT_FALSE(undefined.grad().defined());
}

TEST(Errors, ShapesBeyondTwoToTheFiftyNineAtTheCall) {
  // 2^40 x 2^40 wrapped to 0 elements ("1 values do not fill a tensor of 0
  // elements").
  int64_t big = int64_t(1) << 40;
  float one = 1;
  expectError(
      [&] {
        Tensor::fromVector(std::vector<float>{1}, {big, big});
      },
      "fromVector: the shape has more than 2^59 elements");
  expectError(
      [&] {
        Tensor::fromBlob(&one, {big, big, 0, -1}, kiln::DType::Float32);
      },
      "fromBlob: negative size -1 in the shape");
  expectError(
      [&] {
        Tensor::fromBlob(&one, {big, big}, kiln::DType::Float32);
      },
      "fromBlob: the shape has more than 2^59 elements");
  expectError(
      [&] {
        kiln::zeros({big, big});
      },
      "full: the shape has more than 2^59 elements");
  // A zero size makes an empty tensor, but its other sizes still make
  // strides: they are bounded the same way, in any order (2^40 x 2^40 x 0
  // was accepted here and rejected by the dialect's verifier at realize).
  EXPECT_EQ(
      Tensor::fromBlob(nullptr, {4, 0, int64_t(1) << 57}, kiln::DType::Float32)
          .numel(),
      0);
  for (std::vector<int64_t> shape :
       {std::vector<int64_t>{big, big, 0}, std::vector<int64_t>{0, big, big}})
    expectError(
        [&] { Tensor::fromBlob(nullptr, shape, kiln::DType::Float32); },
        "fromBlob: the shape has nonzero sizes whose product exceeds 2^59");
  expectError(
      [&] {
        kiln::zeros({0, big, big});
      },
      "full: the shape has nonzero sizes whose product exceeds 2^59");
  // The limit is 2^59 elements, whose bytes (up to 8 each) fit in int64.
  expectError([&] { kiln::zeros({int64_t(1) << 60}, kiln::DType::Float64); },
              "full: the shape has more than 2^59 elements");
}

TEST(Errors, WhereNeedsABoolCondition) {
  Tensor x = Tensor::fromVector(std::vector<float>{1, 0, 2});
  // PyTorch: "where expected condition to be a boolean tensor".
  expectError([&] { kiln::where(x, x, x); },
              "where: the condition must be a bool tensor, not f32");
  EXPECT_EQ(kiln::where(x > 0, x, kiln::full({}, 5)).toVector<float>(),
            (std::vector<float>{1, 5, 2}));
}

TEST(Errors, OperatorsCarryNoLocation) {
  // An operator cannot take the caller's location; its errors name none
  // (not a line of the library).
  Tensor x = Tensor::fromVector(std::vector<float>(10, 1.0f), {2, 5});
  Tensor y = Tensor::fromVector(std::vector<float>(3, 1.0f));
  try {
    x + y;
    FAIL() << "no error";
  } catch (const kiln::Error &error) {
    EXPECT_EQ(error.where().line, 0);
    EXPECT_EQ(std::string(error.what()).rfind("error: ", 0), 0u)
        << error.what();
  }
  // Numbers on either side, comparisons included.
  EXPECT_EQ((1.5 < x.sum({1})).toVector<bool>(),
            (std::vector<bool>{true, true}));
  EXPECT_EQ((5 == x.sum({1})).toVector<bool>(),
            (std::vector<bool>{true, true}));
}

TEST(Errors, IndexOutOfRangeAtRunTime) {
  Tensor x = Tensor::fromVector(std::vector<float>{1, 2, 3});
  Tensor bad = kiln::take(x, Tensor::fromVector(std::vector<int64_t>{0, 7}));
  std::string message = errorMessage([&] { bad.realize(); });
  EXPECT_NE(message.find("out of bounds"), std::string::npos) << message;
}

TEST(Errors, OutOfMemoryIsAnErrorAndTheNextGraphRuns) {
  // A 400 TB temporary (more than the address space): the run stops with
  // an error, frees what it had allocated, and the process goes on.
  Tensor x = Tensor::fromVector(std::vector<float>{0, 1, 2, 3}, {4, 1});
  Tensor huge = kiln::exp(x.expand({4, 25000000000000}));
  Tensor best = kiln::topk(huge, 1, 1).values;
  std::string message = errorMessage([&] { best.realize(); });
  EXPECT_NE(message.find("could not allocate 100000000000064 bytes for a "
                         "temporary tensor"),
            std::string::npos)
      << message;
  Tensor small = kiln::topk(kiln::exp(x.expand({4, 3})), 1, 1).values;
  expectNear(small.toVector<float>(),
             {1.0f, std::exp(1.0f), std::exp(2.0f), std::exp(3.0f)});
}

/// Runs `body` on a thread with a 512 KiB stack.
void onSmallStack(void (*body)()) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 512 << 10);
  pthread_t thread;
  ASSERT_EQ(pthread_create(
                &thread, &attr,
                [](void *f) -> void * {
                  reinterpret_cast<void (*)()>(f)();
                  return nullptr;
                },
                reinterpret_cast<void *>(body)),
            0);
  pthread_join(thread, nullptr);
  pthread_attr_destroy(&attr);
}

TEST(Graphs, DeepChainsNeedNoDeepStack) {
  // Printing, differentiating and releasing a graph walk it without
  // recursion: a 20000-op chain on a 512 KiB stack (one frame per op
  // overflowed 8 MiB at 100000 ops).
  onSmallStack([] {
    Tensor w = Tensor::fromVector(std::vector<float>{1, 2, 3, 4});
    w.requiresGrad();
    Tensor y = w;
    for (int i = 0; i < 20000; ++i)
      y = (i % 2) ? y + 1.0 : y * 0.5; // y -> 0.5 y + 1 -> 2
    expectNear(y.toVector<float>(), {2, 2, 2, 2});
    Tensor z = w;
    for (int i = 0; i < 20000; ++i)
      z = z * 1.0001;
    z.sum().backward();
    float expected = std::pow(1.0001f, 20000.0f);
    std::vector<float> grad = w.grad().toVector<float>();
    for (float g : grad)
      EXPECT_NEAR(g, expected, expected * 1e-3);
  });
}

TEST(Cache, TheSameGraphCompilesOnce) {
  auto graph = [](float value) {
    Tensor x = Tensor::fromVector(std::vector<float>{value, 2 * value});
    return (kiln::tanh(x) * 3.0).sum().item<float>();
  };
  graph(1.0f);
  kiln::RuntimeStats before = kiln::runtimeStats();
  float second = graph(2.0f);
  kiln::RuntimeStats after = kiln::runtimeStats();
  EXPECT_EQ(after.graphsCompiled, before.graphsCompiled);
  EXPECT_EQ(after.graphsReused, before.graphsReused + 1);
  EXPECT_NEAR(second, 3 * (std::tanh(2.0f) + std::tanh(4.0f)), 1e-5);
}

TEST(Cache, GraphsFoundWithoutPrintingAreTheirOwn) {
  // A graph recorded again is found by a description of what its text
  // would be (GraphPrinter's key), without printing it: graphs that differ
  // in any of it each compute their own values.
  Tensor a = Tensor::fromVector(std::vector<float>{1, 2, 3});
  Tensor b = Tensor::fromVector(std::vector<float>{10, 20, 30});
  Tensor c = Tensor::fromVector(std::vector<float>{1, 2, 3, 4});
  auto sum = [](const Tensor &t) { return t.sum().item<float>(); };
  for (int round = 0; round < 2; ++round) {
    // The same value twice, or two values; arguments either way round.
    EXPECT_EQ(sum(a * a), 14);
    EXPECT_EQ(sum(a * b), 140);
    EXPECT_EQ(sum(a - b), -54);
    EXPECT_EQ(sum(b - a), 54);
    EXPECT_EQ(sum(a * b + a * a), 154);
    EXPECT_EQ(sum(a * b + b * b), 1540);
    // Another constant, another argument shape.
    EXPECT_EQ(sum(a * 2.0), 12);
    EXPECT_EQ(sum(a * 3.0), 18);
    EXPECT_EQ(sum(c * 3.0), 30);
    // An intermediate pending (computed) or realized (an argument).
    Tensor h = b * 2.0;
    EXPECT_EQ(sum(h + 1.0), 123);
    h.realize();
    EXPECT_EQ(sum(h + 1.0), 123);
    // An argument only the gradient's shape tells apart: one the output
    // does not depend on (a zero gradient of its shape).
    for (const Tensor &unused : {a, c}) {
      std::vector<Tensor> grads =
          kiln::autograd::grad({(b * 2.0).sum()}, {b, unused});
      expectNear(grads[0].toVector<float>(), {2, 2, 2});
      EXPECT_EQ(grads[1].shape(), unused.shape());
    }
  }
  // Recorded again, nothing is compiled.
  kiln::RuntimeStats before = kiln::runtimeStats();
  EXPECT_EQ(sum(a - b), -54);
  EXPECT_EQ(sum(c * 3.0), 30);
  kiln::RuntimeStats after = kiln::runtimeStats();
  EXPECT_EQ(after.graphsCompiled, before.graphsCompiled);
  EXPECT_EQ(after.graphsReused, before.graphsReused + 2);
}

TEST(Cache, CompiledGraphsAreBounded) {
  int64_t limit = kiln::getCompiledGraphLimit();
  EXPECT_EQ(limit, 256);
  EXPECT_THROW(kiln::setCompiledGraphLimit(0), kiln::Error);
  EXPECT_EQ(kiln::getCompiledGraphLimit(), limit);
  // Graphs no other test builds (the constant is part of the IR).
  auto graph = [](int which) {
    Tensor x = Tensor::fromVector(std::vector<float>{1, 2, 3});
    return (x * (1000.0 + which)).sum().item<float>();
  };
  kiln::setCompiledGraphLimit(2);
  EXPECT_LE(kiln::runtimeStats().graphsCached, 2);
  graph(4);
  graph(5); // the cache is full
  kiln::RuntimeStats before = kiln::runtimeStats();
  for (int which : {1, 2, 3})
    EXPECT_EQ(graph(which), 6 * (1000.0f + which));
  kiln::RuntimeStats after = kiln::runtimeStats();
  EXPECT_EQ(after.graphsCompiled, before.graphsCompiled + 3);
  EXPECT_EQ(after.graphsCached, 2);
  EXPECT_EQ(after.graphsEvicted, before.graphsEvicted + 3);
  // The third is kept (reused), the first was dropped (compiled again, its
  // object code from the compile cache).
  graph(3);
  EXPECT_EQ(kiln::runtimeStats().graphsReused, after.graphsReused + 1);
  EXPECT_EQ(graph(1), 6 * 1001.0f);
  kiln::RuntimeStats again = kiln::runtimeStats();
  EXPECT_EQ(again.graphsCompiled, after.graphsCompiled + 1);
  EXPECT_EQ(again.compileCacheHits, after.compileCacheHits + 1);
  kiln::setCompiledGraphLimit(limit);
  EXPECT_EQ(kiln::getCompiledGraphLimit(), limit);
}

TEST(Autograd, MseAndCrossEntropyMatchPyTorch) {
  Tensor x =
      Tensor::fromVector(std::vector<float>{1, 2, 3, 0.5, -1, 2}, {2, 3});
  x.requiresGrad();
  Tensor t = Tensor::fromVector(std::vector<float>{0, 1, 1, 1, 1, 1}, {2, 3});
  Tensor loss = kiln::mse_loss(x, t);
  EXPECT_NEAR(loss.item<float>(), 1.875f, 1e-6);
  loss.backward();
  expectNear(x.grad().toVector<float>(),
             {0.33333334f, 0.33333334f, 0.6666667f, -0.16666667f, -0.6666667f,
              0.33333334f});

  Tensor z =
      Tensor::fromVector(std::vector<float>{1, 2, 0.5, 0.1, 0.2, 3}, {2, 3});
  z.requiresGrad();
  Tensor labels = Tensor::fromVector(std::vector<int64_t>{2, 0});
  Tensor ce = kiln::cross_entropy(z, labels);
  EXPECT_NEAR(ce.item<float>(), 2.4869852f, 1e-5);
  ce.backward();
  expectNear(z.grad().toVector<float>(),
             {0.11561194f, 0.31426585f, -0.42987782f, -0.47534433f, 0.02724872f,
              0.44809562f});
}

TEST(Autograd, ClassicBackwards) {
  // topk backward: [3, 1, 4, 2], k = 2, upstream [0.1, 0.2].
  Tensor x = Tensor::fromVector(std::vector<float>{3, 1, 4, 2});
  x.requiresGrad();
  kiln::topk(x, 2).values.backward(
      Tensor::fromVector(std::vector<float>{0.1f, 0.2f}));
  expectNear(x.grad().toVector<float>(), {0.2f, 0, 0.1f, 0});
  // max with ties splits the gradient.
  Tensor m = Tensor::fromVector(std::vector<float>{1, 2, 3, 4, 4, 0});
  m.requiresGrad();
  kiln::max(m).backward();
  expectNear(m.grad().toVector<float>(), {0, 0, 0, 0.5f, 0.5f, 0});
  // clip backward, bounds inclusive; gradients accumulate over calls.
  Tensor c = Tensor::fromVector(std::vector<float>{1, 2, 3, 4, 5, 6, 7});
  c.requiresGrad();
  c.clamp(1.5, 5.5).sum().backward();
  c.clamp(1.5, 5.5).sum().backward();
  expectNear(c.grad().toVector<float>(), {0, 2, 2, 2, 2, 0, 0});
}

// The graph is differentiated as written, not in a canonical form: pow(x,
// -2) folds to 1 / (x * x), whose derivation (the division's, then the
// product's rule) gave -inf * -0 = NaN at x = -0 where PyTorch's rule,
// -2 * x^-3, gives inf (the inliner canonicalized the graph before the
// C++ API derived its VJP; found by the API fuzzer, seed 134).
TEST(Autograd, DifferentiatesTheOpsAsWritten) {
  // torch.tensor([-0., 0., 2.], requires_grad=True).pow(-2).sum()
  // .backward(): [inf, -inf, -0.25]; through a gather reading -0 twice, 2 *
  // inf.
  Tensor x = Tensor::fromVector(std::vector<float>{-0.0f, 0.0f, 2.0f});
  x.requiresGrad();
  x.pow(-2).sum().backward();
  std::vector<float> grad = x.grad().toVector<float>();
  float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(grad, (std::vector<float>{inf, -inf, -0.25f}));
  Tensor y = Tensor::fromVector(std::vector<float>{1.0f, -0.0f}, {1, 2});
  y.requiresGrad();
  Tensor index = Tensor::fromVector(std::vector<int64_t>{1, 0, 1}, {1, 3});
  kiln::gather(y, 1, index).pow(-2).sum().backward();
  EXPECT_EQ(y.grad().toVector<float>(), (std::vector<float>{-2.0f, inf}));
}

TEST(Autograd, BackwardAlsoComputesThePendingLoss) {
  // backward() on a loss not read yet runs one graph that computes the loss
  // and the gradients, sharing the forward ops; reading the loss afterwards
  // runs nothing, and gives the forward's own value.
  auto make = [] {
    Tensor x = Tensor::fromVector(std::vector<float>{0.5f, -1, 2, 3}, {2, 2});
    Tensor t = Tensor::fromVector(std::vector<int64_t>{1, 0});
    return std::make_pair(x, t);
  };
  auto [x, t] = make();
  x.requiresGrad();
  Tensor loss = kiln::cross_entropy(kiln::tanh(x) * 3.0, t);
  kiln::RuntimeStats before = kiln::runtimeStats();
  loss.backward();
  EXPECT_EQ(kiln::runtimeStats().runs, before.runs + 1);
  EXPECT_TRUE(loss.isRealized());
  float value = loss.item<float>();
  EXPECT_EQ(kiln::runtimeStats().runs, before.runs + 1);
  auto [y, u] = make();
  float alone = kiln::cross_entropy(kiln::tanh(y) * 3.0, u).item<float>();
  EXPECT_EQ(value, alone);
  // torch.nn.functional.cross_entropy(torch.tanh(x) * 3, t): 2.2185171
  EXPECT_NEAR(value, 2.2185171f, 1e-5);
  // The gradient is the one a separate forward and VJP give.
  auto [z, v] = make();
  z.requiresGrad();
  Tensor again = kiln::cross_entropy(kiln::tanh(z) * 3.0, v);
  again.item<float>(); // realized first: backward computes gradients only
  again.backward();
  EXPECT_EQ(x.grad().toVector<float>(), z.grad().toVector<float>());
}

TEST(Autograd, PendingOutputsGetTheirOwnValues) {
  // autograd::grad computes the outputs not read yet with the gradients.
  // Two outputs, the first realized, then the second: the same graph, but
  // a different output pending, which gets its own value (a compiled graph
  // found for the first call returned the first output's forward value).
  for (int realized = 0; realized < 2; ++realized) {
    Tensor x = Tensor::fromVector(std::vector<float>{1, 2, 3});
    Tensor a = (x * 2.0).sum(); // 12
    Tensor b = (x * x).sum();   // 14
    (realized == 0 ? a : b).realize();
    std::vector<Tensor> grads = kiln::autograd::grad({a, b}, {x});
    expectNear(grads[0].toVector<float>(), {4, 6, 8});
    EXPECT_EQ(a.item<float>(), 12);
    EXPECT_EQ(b.item<float>(), 14);
  }
}

// PyTorch's rule: only floating-point values carry gradients. A loss that
// depends on the leaf only through a comparison or an integer cast is an
// error (PyTorch: "does not require grad"), not a zero gradient; other
// paths still give the gradient.
TEST(Autograd, OnlyFloatValuesCarryGradients) {
  Tensor x = Tensor::fromVector(std::vector<float>{1, -2, 3});
  x.requiresGrad();
  Tensor base = Tensor::fromVector(std::vector<float>{2, 2, 2});
  expectError([&] { kiln::pow(base, x > 0).sum().backward(); },
              "does not depend on any tensor that requires gradients");
  expectError(
      [&] {
        x.to(kiln::DType::Int64).to(kiln::DType::Float32).sum().backward();
      },
      "does not depend on any tensor that requires gradients");
  (x * (x > 0)).sum().backward();
  expectNear(x.grad().toVector<float>(), {1, 0, 1});
}

TEST(Autograd, GradWithRespectToAnIntermediate) {
  Tensor x = Tensor::fromVector(std::vector<float>{1, 2, 3});
  Tensor h = x * 2.0;
  Tensor y = (h * h).sum();
  std::vector<Tensor> grads = kiln::autograd::grad({y}, {h, x});
  expectNear(grads[0].toVector<float>(), {4, 8, 12});
  // x is not a requires-grad leaf, but autograd::grad may ask for it.
  expectNear(grads[1].toVector<float>(), {8, 16, 24});
  Tensor i = Tensor::fromVector(std::vector<int64_t>{1});
  EXPECT_THROW(kiln::autograd::grad({y}, {i}), kiln::Error);
  EXPECT_THROW(Tensor::fromVector(std::vector<int64_t>{1}).requiresGrad(),
               kiln::Error);
}

TEST(IR, PendingGraphPrintsAsKilnIR) {
  Tensor x = Tensor::fromVector(std::vector<float>{1, 2, 3, 4}, {2, 2});
  std::string ir = kiln::softmax(x.t(), 1).toMlir();
  EXPECT_NE(ir.find("func.func @graph(%arg0: tensor<2x2xf32>)"),
            std::string::npos)
      << ir;
  EXPECT_NE(ir.find("\"kiln.permute\""), std::string::npos) << ir;
  EXPECT_NE(ir.find("\"kiln.softmax\""), std::string::npos) << ir;

  std::string path = ::testing::TempDir() + "kiln_api_ir.mlir";
  std::ofstream(path) << ir;
  kiln::RuntimeStats before = kiln::runtimeStats();
  std::vector<Tensor> results = kiln::callIR(path, {x});
  ASSERT_EQ(results.size(), 1u);
  // Lazy: the call is a graph node; it fuses and differentiates like ops.
  EXPECT_EQ(kiln::runtimeStats().runs, before.runs);
  expectNear(results[0].toVector<float>(),
             kiln::softmax(x.t(), 1).toVector<float>(), 0);

  Tensor w = Tensor::fromVector(std::vector<float>{1, 2, 3, 4}, {2, 2});
  w.requiresGrad();
  Tensor viaIR = kiln::callIR(path, {w * 2.0})[0];
  viaIR.sum({0}).amax().backward();
  Tensor direct = Tensor::fromVector(std::vector<float>{1, 2, 3, 4}, {2, 2});
  direct.requiresGrad();
  kiln::softmax((direct * 2.0).t(), 1).sum({0}).amax().backward();
  expectNear(w.grad().toVector<float>(), direct.grad().toVector<float>());

  EXPECT_THROW(kiln::callIR(path, {w.reshape({4})}), kiln::Error);
  EXPECT_THROW(kiln::callIR(path + ".missing", {w}), kiln::Error);
}

TEST(IR, ExplainSaysWhatTheCompilerDoesAtTheCallersLines) {
  Tensor x = Tensor::fromVector(std::vector<float>(64, 0.5f), {4, 16});
  Tensor w = Tensor::fromVector(std::vector<float>(256, 0.25f), {16, 16});
  int matmulLine = __LINE__ + 1;
  Tensor m = kiln::matmul(x, w);
  Tensor e = kiln::exp(kiln::clamp(m, -1.0, 1.0));
  int sumLine = __LINE__ + 1;
  Tensor s = e.sum({1});
  kiln::RuntimeStats before = kiln::runtimeStats();
  std::string text = s.explain();
  // Compiled for the explanation only: nothing ran, nothing was cached.
  EXPECT_EQ(kiln::runtimeStats().runs, before.runs);
  EXPECT_EQ(kiln::runtimeStats().graphsCompiled, before.graphsCompiled);
  EXPECT_FALSE(s.isRealized());
  auto at = [](int line) {
    return std::string(__FILE__) + ":" + std::to_string(line) + ":0: remark: ";
  };
  EXPECT_NE(text.find(at(sumLine) +
                      "[kiln-fuse] 3 ops in one kernel (the elementwise chain "
                      "is evaluated where 'kiln.sum' reads its input): "
                      "kiln.clamp, kiln.exp, kiln.sum"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(at(matmulLine) +
                      "[kiln-fuse, missed] 'kiln.matmul' is "
                      "not fused into the kernel of "
                      "'kiln.sum' (" +
                      std::string(__FILE__) + ":" + std::to_string(sumLine) +
                      ":0): it is neither elementwise"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(at(sumLine) + "[kiln-lower] kiln.sum of "
                                    "tensor<4x16xf32> over dims [1]"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(at(matmulLine) + "[kiln-lower] matmul"),
            std::string::npos)
      << text;
  // The graph still runs, and explains itself again once realized.
  EXPECT_NEAR(s.toVector<float>()[0], 16 * std::exp(1.0f), 1e-4);
  EXPECT_NE(s.explain().find("[kiln-lower] kiln.sum"), std::string::npos);
  // Operators have no location: their remarks point into toMlir()'s text.
  std::string operators = (kiln::exp(x) * 2.0 + 1.0).explain();
  EXPECT_NE(operators.find("graph.mlir:"), std::string::npos) << operators;
  EXPECT_NE(operators.find("[kiln-fuse] 3 ops in one kernel (one elementwise "
                           "loop, no intermediate tensors): kiln.exp, "
                           "kiln.mul, kiln.add"),
            std::string::npos)
      << operators;
  EXPECT_THROW(Tensor().explain(), kiln::Error);
}

TEST(IR, BagsOfSelectedRowsAreSummedThroughTheReshape) {
  // 3 bags of 4 rows selected from a 10x16 table: the sum reads the
  // selection through the reshape, never storing it.
  std::vector<float> table(160);
  for (size_t i = 0; i < table.size(); ++i)
    table[i] = static_cast<float>(i % 37) * 0.5f - 3.0f;
  std::vector<int64_t> rows = {3, 9, 0, 3, 7, 7, 1, 2, 8, 4, 5, 6};
  Tensor w = Tensor::fromVector(table, {10, 16});
  Tensor i = Tensor::fromVector(rows, {12});
  Tensor bags = kiln::index_select(w, 0, i).reshape({3, 4, 16}).sum({1});
  std::string text = bags.explain();
  EXPECT_NE(text.find("[kiln-fuse] 3 ops in one kernel (the elementwise "
                      "chain is evaluated where 'kiln.sum' reads its input; "
                      "indexed reads evaluated in place, their selections "
                      "never stored; views (reshape, permute) read through): "
                      "kiln.index_select, kiln.reshape, kiln.sum"),
            std::string::npos)
      << text;
  std::vector<float> got = bags.toVector<float>();
  ASSERT_EQ(got.size(), 48u);
  for (int64_t b = 0; b < 3; ++b)
    for (int64_t c = 0; c < 16; ++c) {
      float want = 0.0f; // the rows in order, as the one lane adds them
      for (int64_t r = 0; r < 4; ++r)
        want += table[rows[b * 4 + r] * 16 + c];
      EXPECT_EQ(got[b * 16 + c], want) << "bag " << b << " column " << c;
    }
}

/// The mean and (biased) variance of `count` elements of `data` from
/// `begin`: a normalization's statistics, the reference for the norms'
/// tests.
static std::pair<double, double> meanAndVariance(const std::vector<float> &data,
                                                 int64_t begin, int64_t count) {
  double mean = 0, var = 0;
  for (int64_t j = 0; j < count; ++j)
    mean += data[begin + j];
  mean /= count;
  for (int64_t j = 0; j < count; ++j)
    var += (data[begin + j] - mean) * (data[begin + j] - mean);
  return {mean, var / count};
}

TEST(IR, InstanceNormIsOneRowGroupOverHeightAndWidth) {
  // Statistics over H and W of [N, C, H, W] and the normalization: one
  // kernel over rows of H x W elements.
  const int64_t n = 2, c = 3, h = 4, w = 5;
  std::vector<float> data(n * c * h * w);
  for (size_t i = 0; i < data.size(); ++i)
    data[i] = static_cast<float>((i * 7) % 23) * 0.25f - 2.0f;
  Tensor x = Tensor::fromVector(data, {n, c, h, w});
  Tensor d = x - x.mean({2, 3}, true);
  Tensor y = d * ((d * d).mean({-1, -2}, true) + 1e-5).rsqrt();
  std::string text = y.explain();
  EXPECT_NE(text.find("[kiln-fuse] row group over the last 2 dims of [2, 3, "
                      "4, 5]: its rows are one dim of 20 elements"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("[kiln-lower] row group of tensor<2x3x20xf32>: one "
                      "kernel"),
            std::string::npos)
      << text;
  std::vector<float> got = y.toVector<float>();
  ASSERT_EQ(got.size(), data.size());
  for (int64_t row = 0; row < n * c; ++row) {
    auto [mean, var] = meanAndVariance(data, row * h * w, h * w);
    for (int64_t j = 0; j < h * w; ++j)
      EXPECT_NEAR(got[row * h * w + j],
                  (data[row * h * w + j] - mean) / std::sqrt(var + 1e-5), 1e-5)
          << "row " << row << " element " << j;
  }
}

TEST(IR, GroupNormThroughReshapesIsOneRowGroup) {
  // A group norm as PyTorch users write it: reshaped to [N, G, C/G*H*W],
  // normalized, reshaped back, scaled and shifted per channel. The fusion
  // computes it on [N, G, C/G, H, W]: one kernel, rows of [C/G, H*W].
  const int64_t n = 2, c = 6, h = 4, w = 8, g = 2;
  std::vector<float> data(n * c * h * w), weight(c), bias(c);
  for (size_t i = 0; i < data.size(); ++i)
    data[i] = static_cast<float>((i * 7) % 23) * 0.25f - 2.0f;
  for (int64_t k = 0; k < c; ++k) {
    weight[k] = 0.5f + 0.25f * static_cast<float>(k);
    bias[k] = static_cast<float>(k) - 2.0f;
  }
  Tensor x = Tensor::fromVector(data, {n, c, h, w});
  Tensor wt = Tensor::fromVector(weight, {c, 1, 1});
  Tensor bt = Tensor::fromVector(bias, {c, 1, 1});
  Tensor xr = x.reshape({n, g, -1});
  Tensor d = xr - xr.mean({2}, true);
  Tensor y =
      (d * ((d * d).mean({2}, true) + 1e-5).rsqrt()).reshape({n, c, h, w}) *
          wt +
      bt;
  std::string text = y.explain();
  EXPECT_NE(text.find("[kiln-fuse] the reshape of [2, 6, 4, 8] to [2, 2, 96]"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("[kiln-lower] row group of tensor<2x2x3x32xf32>: one "
                      "kernel"),
            std::string::npos)
      << text;
  std::vector<float> got = y.toVector<float>();
  ASSERT_EQ(got.size(), data.size());
  const int64_t k = c / g * h * w; // a group's elements
  for (int64_t row = 0; row < n * g; ++row) {
    auto [mean, var] = meanAndVariance(data, row * k, k);
    for (int64_t j = 0; j < k; ++j) {
      int64_t channel = (row % g) * (c / g) + j / (h * w);
      EXPECT_NEAR(got[row * k + j],
                  (data[row * k + j] - mean) / std::sqrt(var + 1e-5) *
                          weight[channel] +
                      bias[channel],
                  1e-4)
          << "row " << row << " element " << j;
    }
  }
}

TEST(IR, CallIRInlinesTheFileFunctions) {
  // The entry's helpers from the same file are inlined into it; a
  // recursive call is an error.
  std::string path = ::testing::TempDir() + "kiln_api_helpers.mlir";
  std::ofstream(path)
      << "func.func private @sq(%x: tensor<2xf32>) -> tensor<2xf32> {\n"
         "  %y = kiln.mul %x, %x : tensor<2xf32>, tensor<2xf32>\n"
         "  return %y : tensor<2xf32>\n}\n"
         "func.func @f(%x: tensor<2xf32>) -> tensor<2xf32> {\n"
         "  %a = call @sq(%x) : (tensor<2xf32>) -> tensor<2xf32>\n"
         "  %b = call @sq(%a) : (tensor<2xf32>) -> tensor<2xf32>\n"
         "  return %b : tensor<2xf32>\n}\n";
  Tensor x = Tensor::fromVector(std::vector<float>{2, 3});
  x.requiresGrad();
  Tensor y = kiln::callIR(path, {x})[0];
  expectNear(y.toVector<float>(), {16, 81});
  y.sum().backward(); // d(x^4)/dx = 4 x^3
  expectNear(x.grad().toVector<float>(), {32, 108});

  std::string recursive = ::testing::TempDir() + "kiln_api_recursive.mlir";
  std::ofstream(recursive)
      << "func.func @f(%x: tensor<2xf32>) -> tensor<2xf32> {\n"
         "  %y = call @f(%x) : (tensor<2xf32>) -> tensor<2xf32>\n"
         "  return %y : tensor<2xf32>\n}\n";
  std::string message = errorMessage([&] { kiln::callIR(recursive, {x}); });
  EXPECT_NE(message.find("calls @f recursively"), std::string::npos) << message;

  // Upstream ops are held to the kiln ops' shape limit (kiln-check-shapes).
  std::string huge = ::testing::TempDir() + "kiln_api_huge.mlir";
  std::ofstream(huge) << "func.func @f(%x: tensor<2xf32>) -> tensor<2xf32> {\n"
                         "  %c = arith.constant dense<1.0> : "
                         "tensor<4611686018427387904x4xf32>\n"
                         "  return %x : tensor<2xf32>\n}\n";
  message = errorMessage([&] { kiln::callIR(huge, {x}); });
  EXPECT_NE(message.find("'arith.constant' op result #0 type "
                         "'tensor<4611686018427387904x4xf32>' has more than "
                         "2^59 elements"),
            std::string::npos)
      << message;
}

TEST(IR, CallIRRejectsWhatCrashesTheParser) {
  // MLIR 22's parser segfaults on a dense array of index; callIR reports it.
  std::string path = ::testing::TempDir() + "kiln_api_index_array.mlir";
  std::ofstream(path)
      << "func.func @f(%x: tensor<2x2xf32>) -> tensor<2xf32> {\n"
         "  %y = kiln.sum %x {dims = array<index: 0>} : tensor<2x2xf32>\n"
         "  return %y : tensor<2xf32>\n}\n";
  Tensor x = Tensor::fromVector(std::vector<float>{1, 2, 3, 4}, {2, 2});
  std::string message = errorMessage([&] { kiln::callIR(path, {x}); });
  EXPECT_NE(message.find("kiln_api_index_array.mlir:2:28: dense arrays of "
                         "'index' are not supported"),
            std::string::npos)
      << message;
}

TEST(Threads, GraphsBuiltAndRealizedConcurrently) {
  std::vector<float> sums(8);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([t, &sums] {
      Tensor x = Tensor::fromVector(std::vector<float>(1000, float(t)));
      sums[t] = ((x + 1.0) * 2.0).sum().item<float>();
    });
  for (std::thread &thread : threads)
    thread.join();
  for (int t = 0; t < 8; ++t)
    EXPECT_FLOAT_EQ(sums[t], 2000.0f * (t + 1));
}

/// A two-layer network's loss and first-layer weight gradient, computed in
/// double precision: the reference for LargeGraphsCompiledInPieces.
std::pair<double, std::vector<double>>
networkReference(const std::vector<float> &x, const std::vector<float> &w1,
                 const std::vector<float> &w2,
                 const std::vector<int64_t> &target, int n, int d, int h,
                 int c) {
  std::vector<double> hidden(n * h), dlogits(n * c), dhidden(n * h, 0.0);
  std::vector<double> w1grad(d * h, 0.0);
  double loss = 0;
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < h; ++j) {
      double s = 0;
      for (int k = 0; k < d; ++k)
        s += double(x[i * d + k]) * w1[k * h + j];
      hidden[i * h + j] = std::max(s, 0.0);
    }
    std::vector<double> logits(c);
    double top = -1e300, total = 0;
    for (int j = 0; j < c; ++j) {
      for (int k = 0; k < h; ++k)
        logits[j] += hidden[i * h + k] * w2[k * c + j];
      top = std::max(top, logits[j]);
    }
    for (int j = 0; j < c; ++j)
      total += std::exp(logits[j] - top);
    loss -= (logits[target[i]] - top - std::log(total)) / n;
    for (int j = 0; j < c; ++j)
      dlogits[i * c + j] =
          (std::exp(logits[j] - top) / total - (j == target[i])) / n;
    for (int k = 0; k < h; ++k)
      if (hidden[i * h + k] > 0)
        for (int j = 0; j < c; ++j)
          dhidden[i * h + k] += dlogits[i * c + j] * w2[k * c + j];
  }
  for (int k = 0; k < d; ++k)
    for (int j = 0; j < h; ++j)
      for (int i = 0; i < n; ++i)
        w1grad[k * h + j] += double(x[i * d + k]) * dhidden[i * h + j];
  return {loss, w1grad};
}

// Graphs large enough that their machine code is compiled in pieces on
// several threads (SplitCodegen.cpp: the glue's object and one per compile
// thread), compiled by several threads at once: each thread's network has
// its own hidden size, so its own graph.
TEST(Threads, LargeGraphsCompiledInPiecesConcurrently) {
  const char *saved = std::getenv("KILN_COMPILE_THREADS");
  std::string before = saved ? saved : "";
  setenv("KILN_COMPILE_THREADS", "3", 1);
  const int n = 32, d = 24, c = 10;
  std::vector<double> losses(4), errors(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      const int h = 40 + t;
      auto values = [](size_t count, uint32_t seed) {
        std::vector<float> v(count);
        for (float &e : v) {
          seed = seed * 1664525u + 1013904223u;
          e = (static_cast<float>(seed >> 8) / (1u << 24) - 0.5f) * 0.6f;
        }
        return v;
      };
      std::vector<float> xs = values(n * d, 1 + t), w1s = values(d * h, 7 + t),
                         w2s = values(h * c, 13 + t);
      std::vector<int64_t> target(n);
      for (int i = 0; i < n; ++i)
        target[i] = (i * 7 + t) % c;
      Tensor x = Tensor::fromVector(xs, {n, d});
      Tensor w1 = Tensor::fromVector(w1s, {d, h});
      Tensor w2 = Tensor::fromVector(w2s, {h, c});
      w1.requiresGrad();
      w2.requiresGrad();
      Tensor pre = kiln::matmul(x, w1);
      Tensor hidden = kiln::maximum(pre, kiln::zeros_like(pre));
      Tensor loss = kiln::cross_entropy(kiln::matmul(hidden, w2),
                                        Tensor::fromVector(target));
      loss.backward();
      std::vector<float> grad = w1.grad().toVector<float>();
      auto [expectedLoss, expectedGrad] =
          networkReference(xs, w1s, w2s, target, n, d, h, c);
      losses[t] = std::abs(loss.item<float>() - expectedLoss);
      double worst = 0;
      for (size_t i = 0; i < grad.size(); ++i)
        worst = std::max(worst, std::abs(grad[i] - expectedGrad[i]));
      errors[t] = worst;
    });
  for (std::thread &thread : threads)
    thread.join();
  if (saved)
    setenv("KILN_COMPILE_THREADS", before.c_str(), 1);
  else
    unsetenv("KILN_COMPILE_THREADS");
  for (int t = 0; t < 4; ++t) {
    EXPECT_LT(losses[t], 1e-5) << "thread " << t;
    EXPECT_LT(errors[t], 1e-5) << "thread " << t;
  }
}

} // namespace

namespace {
TEST(FromBlob, ReadsTheCallersMemoryWithoutCopying) {
  std::vector<float> data{1, 2, 3, 4};
  Tensor x = Tensor::fromBlob(data.data(), {2, 2}, kiln::DType::Float32);
  Tensor doubled = x * 2.0;
  // Not copied: a change before realization is seen.
  data[0] = 10;
  expectNear(doubled.toVector<float>(), {20, 4, 6, 8});
  // The caller's memory is never written.
  EXPECT_EQ(data, (std::vector<float>{10, 2, 3, 4}));
  EXPECT_THROW(Tensor::fromBlob(nullptr, {2}, kiln::DType::Float32),
               kiln::Error);
}
} // namespace

namespace {
TEST(Methods, NamedLikePyTorch) {
  Tensor x = Tensor::fromVector(std::vector<float>{3, 1, 4, 2}, {2, 2});
  EXPECT_EQ(x.topk(1).indices.toVector<int64_t>(),
            (std::vector<int64_t>{0, 0}));
  expectNear(x.max(0).values.toVector<float>(), {4, 2});
  expectNear(x.max().toVector<float>(), {4});
  expectNear(x.kthvalue(1, 1).values.toVector<float>(), {1, 2});
  Tensor zero = kiln::zeros({2, 2});
  expectNear(x.where(x > 2, zero).toVector<float>(), {3, 0, 4, 0});
  EXPECT_TRUE(x.equal(x));
  EXPECT_FALSE(x.equal(zero));
  Tensor index = Tensor::fromVector(std::vector<int64_t>{1, 1}, {1, 2});
  Tensor src = Tensor::fromVector(std::vector<float>{5, 6}, {1, 2});
  expectNear(zero.scatter_add(0, index, src).toVector<float>(), {0, 0, 5, 6});
  expectNear(x.maximum(zero + 2.5).toVector<float>(), {3, 2.5f, 4, 2.5f});
  expectNear((-x).abs().rsqrt().pow(-2.0).toVector<float>(), {3, 1, 4, 2},
             1e-5f);
}
} // namespace

namespace {
// The PyTorch functions written with the ops (Composite.cpp), against
// torch 1.13's values of the same inputs.
Tensor composite2x4() {
  return Tensor::fromVector(std::vector<float>{1, 2, 3, 4, 0.5f, -1, 2, 8},
                            {2, 4});
}

TEST(Composites, ShapeFunctionsAsInPyTorch) {
  Tensor x =
      Tensor::fromVector(std::vector<float>{0, 1, 2, 3, 4, 5}, {1, 2, 3});
  Tensor t = kiln::transpose(x, 0, -1);
  EXPECT_EQ(t.shape(), (std::vector<int64_t>{3, 2, 1}));
  expectNear(t.toVector<float>(), {0, 3, 1, 4, 2, 5});
  EXPECT_EQ(x.transpose(1, 1).shape(), x.shape());
  EXPECT_EQ(x.squeeze().shape(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(x.squeeze(0).shape(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(x.squeeze(1).shape(), x.shape()); // size 2: unchanged
  EXPECT_EQ(x.unsqueeze(-1).shape(), (std::vector<int64_t>{1, 2, 3, 1}));
  EXPECT_EQ(x.unsqueeze(1).shape(), (std::vector<int64_t>{1, 1, 2, 3}));
  EXPECT_EQ(x.flatten().shape(), (std::vector<int64_t>{6}));
  EXPECT_EQ(x.flatten(1).shape(), (std::vector<int64_t>{1, 6}));
  EXPECT_EQ(x.flatten(0, 1).shape(), (std::vector<int64_t>{2, 3}));
  expectNear(x.flatten(0, 1).toVector<float>(), {0, 1, 2, 3, 4, 5});
  Tensor scalar = kiln::full({}, 2.5);
  EXPECT_EQ(scalar.flatten().shape(), (std::vector<int64_t>{1}));
  EXPECT_EQ(scalar.unsqueeze(0).shape(), (std::vector<int64_t>{1}));
  EXPECT_EQ(scalar.transpose(0, -1).shape(), (std::vector<int64_t>{}));
  EXPECT_EQ(scalar.squeeze().shape(), (std::vector<int64_t>{}));
}

TEST(Composites, StatisticsAsInPyTorch) {
  Tensor x = composite2x4();
  expectNear(kiln::var(x, {1}).toVector<float>(), {1.6666666f, 15.5625f});
  expectNear(x.std({0}, 0).toVector<float>(), {0.25f, 1.5f, 0.5f, 2});
  expectNear(x.var().toVector<float>(), {7.3883929f});
  EXPECT_EQ(x.var({-1}, 1, true).shape(), (std::vector<int64_t>{2, 1}));
  // N - correction <= 0: a division by zero, as in PyTorch.
  EXPECT_TRUE(std::isnan(kiln::var(kiln::ones({1})).item<float>()));
  EXPECT_TRUE(std::isinf(kiln::var(x, {1}, 5).toVector<float>()[0]));
  expectNear(kiln::logsumexp(x, {1}).toVector<float>(), {4.4401898f, 8.00315f});
  Tensor keep = x.logsumexp({0}, true);
  EXPECT_EQ(keep.shape(), (std::vector<int64_t>{1, 4}));
  expectNear(keep.toVector<float>(),
             {1.474077f, 2.0485873f, 3.3132617f, 8.0181503f});
  // Infinite maxima are not subtracted (no inf - inf), large values do not
  // overflow, and an empty reduction is log(0).
  const float inf = std::numeric_limits<float>::infinity();
  Tensor special = Tensor::fromVector(
      std::vector<float>{inf, 1, -inf, -inf, 1000, 1000}, {3, 2});
  std::vector<float> lse = kiln::logsumexp(special, {1}).toVector<float>();
  EXPECT_EQ(lse[0], inf);
  EXPECT_EQ(lse[1], -inf);
  EXPECT_NEAR(lse[2], 1000.6932f, 1e-3);
  EXPECT_EQ(kiln::logsumexp(kiln::zeros({0, 3}), {0}).toVector<float>(),
            (std::vector<float>{-inf, -inf, -inf}));
  // Integers in float32.
  Tensor i = Tensor::fromVector(std::vector<int64_t>{1, 2});
  EXPECT_EQ(kiln::logsumexp(i).dtype(), kiln::DType::Float32);
  EXPECT_NEAR(kiln::logsumexp(i).item<float>(), 2.3132617f, 1e-6);
}

TEST(Composites, NetworkFunctionsAndTheirGradientsAsInPyTorch) {
  Tensor x = composite2x4();
  x.requiresGrad();
  Tensor W = Tensor::fromVector(
      std::vector<float>{0.5f, -1, 0, 2, 1, 1, 1, 1, -0.25f, 0, 3, 0.5f},
      {3, 4});
  W.requiresGrad();
  Tensor b = Tensor::fromVector(std::vector<float>{0.1f, -0.2f, 0.3f});
  Tensor y = kiln::linear(x, W, b);
  expectNear(y.toVector<float>(), {6.6f, 9.8f, 11.05f, 17.35f, 9.3f, 10.175f});
  y.sum().backward();
  expectNear(W.grad().toVector<float>(),
             {1.5f, 1, 5, 12, 1.5f, 1, 5, 12, 1.5f, 1, 5, 12});

  Tensor w = Tensor::fromVector(std::vector<float>{1, 0.5f, -1, 2});
  Tensor bias = Tensor::fromVector(std::vector<float>{0, 1, 0, -1});
  w.requiresGrad();
  bias.requiresGrad();
  Tensor z = composite2x4();
  z.requiresGrad();
  Tensor ln = kiln::layer_norm(z, {4}, w, bias);
  expectNear(ln.toVector<float>(),
             {-1.3416355f, 0.77639407f, -0.4472118f, 1.6832709f, -0.54882109f,
              0.50606102f, 0.10976422f, 2.2929265f});
  ln.backward(Tensor::fromVector(
      std::vector<float>{0.1f, -0.2f, 0.3f, 0.4f, 1, 0.5f, -0.5f, 0.25f},
      {2, 4}));
  expectNear(z.grad().toVector<float>(),
             {0.23254815f, -0.11627576f, -0.46509966f, 0.34882721f, 0.12695621f,
              -0.093453869f, -0.018514439f, -0.014987886f});
  expectNear(w.grad().toVector<float>(),
             {-0.68298465f, -0.40449661f, 0.18904565f, 0.94826996f});
  expectNear(bias.grad().toVector<float>(), {1.1f, 0.3f, -0.2f, 0.65f});

  Tensor v = composite2x4();
  v.requiresGrad();
  kiln::var(v, {1}).sum().backward();
  expectNear(v.grad().toVector<float>(),
             {-1, -0.33333334f, 0.33333334f, 1, -1.25f, -2.25f, -0.25f, 3.75f});
  // std's gradient is 0 where the deviation is 0 (PyTorch's), not NaN.
  Tensor flat =
      Tensor::fromVector(std::vector<float>{2, 2, 2, 1, 3, 5}, {2, 3});
  flat.requiresGrad();
  kiln::std(flat, {1}).sum().backward();
  expectNear(flat.grad().toVector<float>(), {0, 0, 0, -0.5f, 0, 0.5f});
  Tensor l = composite2x4();
  l.requiresGrad();
  kiln::logsumexp(l, {1}).sum().backward();
  expectNear(l.grad().toVector<float>(),
             {0.0320586f, 0.087144308f, 0.23688279f, 0.64391416f,
              0.00055134489f, 0.00012302167f, 0.0024709564f, 0.99685496f});

  expectNear(kiln::silu(composite2x4()).toVector<float>(),
             {0.7310586f, 1.7615941f, 2.8577225f, 3.928055f, 0.31122968f,
              -0.26894143f, 1.7615941f, 7.9973173f});
  expectNear(kiln::leaky_relu(
                 Tensor::fromVector(std::vector<float>{-2, 0, 3, -0.5f}), 0.1)
                 .toVector<float>(),
             {-0.2f, 0, 3, -0.05f});
}

TEST(Composites, SlicingAndJoiningAsInPyTorch) {
  Tensor x = kiln::arange(12, 0, 1, kiln::DType::Float32).reshape({3, 4});
  Tensor middle = kiln::narrow(x, 1, 1, 2);
  EXPECT_EQ(middle.shape(), (std::vector<int64_t>{3, 2}));
  expectNear(middle.toVector<float>(), {1, 2, 5, 6, 9, 10});
  expectNear(x.narrow(0, -1, 1).toVector<float>(), {8, 9, 10, 11});
  EXPECT_EQ(x.narrow(1, 4, 0).shape(), (std::vector<int64_t>{3, 0}));
  std::vector<Tensor> parts = x.split(3, 1);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[1].shape(), (std::vector<int64_t>{3, 1}));
  expectNear(parts[1].toVector<float>(), {3, 7, 11});
  parts = kiln::split_with_sizes(x, {1, 2}, 0);
  ASSERT_EQ(parts.size(), 2u);
  expectNear(parts[0].toVector<float>(), {0, 1, 2, 3});
  EXPECT_EQ(parts[1].shape(), (std::vector<int64_t>{2, 4}));
  parts = x.chunk(3, -1); // ceil(4 / 3) = 2: two pieces
  ASSERT_EQ(parts.size(), 2u);
  expectNear(parts[1].toVector<float>(), {2, 3, 6, 7, 10, 11});
  EXPECT_EQ(kiln::chunk(kiln::zeros({0}), 3).size(), 3u);

  // cat promotes (f32 and f64 give f64), skips 1-D empty tensors and keeps
  // every bit (-0.0 too); stack joins along a new dim.
  Tensor a = Tensor::fromVector(std::vector<float>{-0.0f, 1, 2, 3}, {2, 2});
  Tensor b = Tensor::fromVector(std::vector<double>{4, 5}, {2, 1});
  Tensor joined = kiln::cat({a, kiln::zeros({0}), b}, 1);
  EXPECT_EQ(joined.dtype(), kiln::DType::Float64);
  std::vector<double> values = joined.toVector<double>();
  EXPECT_EQ(values, (std::vector<double>{-0.0, 1, 4, 2, 3, 5}));
  EXPECT_TRUE(std::signbit(values[0]));
  Tensor flags = Tensor::fromVector(std::vector<bool>{true, false});
  Tensor small =
      kiln::arange(2, 5, 1, kiln::DType::Int64).to(kiln::DType::Int32);
  Tensor mixed = kiln::cat({flags, small});
  EXPECT_EQ(mixed.dtype(), kiln::DType::Int32);
  EXPECT_EQ(mixed.toVector<int64_t>(), (std::vector<int64_t>{1, 0, 5, 6}));
  Tensor stacked = kiln::stack({middle, middle * 2}, -1);
  EXPECT_EQ(stacked.shape(), (std::vector<int64_t>{3, 2, 2}));
  expectNear(stacked.toVector<float>(),
             {1, 2, 2, 4, 5, 10, 6, 12, 9, 18, 10, 20});

  // Gradients: each piece gets its part of the upstream gradient.
  Tensor p = Tensor::fromVector(std::vector<float>{1, 2}, {1, 2});
  Tensor q = Tensor::fromVector(std::vector<float>{3, 4, 5, 6}, {2, 2});
  p.requiresGrad();
  q.requiresGrad();
  Tensor weights =
      Tensor::fromVector(std::vector<float>{1, 2, 3, 4, 5, 6}, {3, 2});
  (kiln::cat({p, q}, 0) * weights).sum().backward();
  expectNear(p.grad().toVector<float>(), {1, 2});
  expectNear(q.grad().toVector<float>(), {3, 4, 5, 6});
  Tensor r = Tensor::fromVector(std::vector<float>{0, 1, 2, 3, 4, 5});
  r.requiresGrad();
  (r.narrow(0, 2, 3) * 2).sum().backward();
  expectNear(r.grad().toVector<float>(), {0, 0, 2, 2, 2, 0});
}

// cat of pieces with no elements along the dim: an empty result that
// still depends on every piece, so that backward() reaches them all with
// empty gradients, as PyTorch's does (it had kept only the first piece,
// and backward() from a piece that requires gradients was refused).
TEST(Composites, CatOfEmptyPiecesReachesEveryPiece) {
  Tensor a = kiln::zeros({0, 1, 1});
  Tensor b = Tensor::fromVector(std::vector<double>{}, {0, 1, 1});
  b.requiresGrad();
  Tensor c = kiln::cat({a, b, b}, 0);
  EXPECT_EQ(c.dtype(), kiln::DType::Float64);
  EXPECT_EQ(c.shape(), (std::vector<int64_t>{0, 1, 1}));
  Tensor loss = kiln::clamp(c, 2.0, std::nullopt).sum();
  loss.backward();
  EXPECT_EQ(loss.item<double>(), 0.0);
  ASSERT_TRUE(b.grad().defined());
  EXPECT_EQ(b.grad().shape(), (std::vector<int64_t>{0, 1, 1}));
  Tensor e = Tensor::fromVector(std::vector<float>{}, {0});
  e.requiresGrad();
  Tensor d = kiln::cat({e, e}, 0);
  d.sum().backward();
  ASSERT_TRUE(e.grad().defined());
  EXPECT_EQ(e.grad().shape(), (std::vector<int64_t>{0}));
}

TEST(Composites, SortMasksAndLossesAsInPyTorch) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Tensor x =
      Tensor::fromVector(std::vector<float>{3, 1, 2, 1, nan, 0, -1, 5}, {2, 4});
  // Stable, NaN last ascending and first descending: torch.sort(stable=True).
  kiln::ValuesIndices up = kiln::sort(x, 1);
  EXPECT_EQ(up.indices.toVector<int64_t>(),
            (std::vector<int64_t>{1, 3, 2, 0, 2, 1, 3, 0}));
  std::vector<float> values = up.values.toVector<float>();
  EXPECT_TRUE(std::isnan(values[7]));
  values.pop_back();
  expectNear(values, {1, 1, 2, 3, -1, 0, 5});
  EXPECT_EQ(x.sort(-1, true).indices.toVector<int64_t>(),
            (std::vector<int64_t>{0, 2, 1, 3, 0, 3, 1, 2}));
  EXPECT_EQ(x.argsort(0).toVector<int64_t>(),
            (std::vector<int64_t>{0, 1, 1, 0, 1, 0, 0, 1}));
  Tensor flags = Tensor::fromVector(std::vector<bool>{true, false, true});
  EXPECT_EQ(kiln::sort(flags).values.toVector<int64_t>(),
            (std::vector<int64_t>{0, 1, 1}));
  EXPECT_EQ(kiln::sort(flags).values.dtype(), kiln::DType::Bool);

  Tensor mask = Tensor::fromVector(std::vector<bool>{true, false}, {2, 1});
  Tensor row = Tensor::fromVector(std::vector<float>{1, 2});
  Tensor filled = row.masked_fill(mask, 1.7); // broadcast: [2, 2]
  EXPECT_EQ(filled.shape(), (std::vector<int64_t>{2, 2}));
  expectNear(filled.toVector<float>(), {1.7f, 1.7f, 1, 2});
  Tensor ints = Tensor::fromVector(std::vector<int64_t>{5, -5});
  Tensor both = Tensor::fromVector(std::vector<bool>{true, true});
  EXPECT_EQ(kiln::masked_fill(ints, both, -2.9).toVector<int64_t>(),
            (std::vector<int64_t>{-2, -2})); // toward zero
  EXPECT_EQ(kiln::masked_fill(ints, both, -2.9).dtype(), kiln::DType::Int64);

  Tensor labels = Tensor::fromVector(std::vector<int64_t>{0, 2, 1}, {3, 1});
  Tensor hot = kiln::one_hot(labels, 3);
  EXPECT_EQ(hot.shape(), (std::vector<int64_t>{3, 1, 3}));
  EXPECT_EQ(hot.toVector<int64_t>(),
            (std::vector<int64_t>{1, 0, 0, 0, 0, 1, 0, 1, 0}));
  EXPECT_EQ(kiln::one_hot(labels).shape(), (std::vector<int64_t>{3, 1, 3}));

  Tensor logp = Tensor::fromVector(
      std::vector<float>{-1, -2, -0.5f, -0.25f, -3, -1, -2, -0.1f, -4}, {3, 3});
  logp.requiresGrad();
  Tensor target = Tensor::fromVector(std::vector<int64_t>{2, -100, 1});
  Tensor nll = kiln::nll_loss(logp, target);
  EXPECT_NEAR(nll.item<float>(), 0.3f, 1e-6);
  nll.backward();
  expectNear(logp.grad().toVector<float>(),
             {0, 0, -0.5f, 0, 0, 0, 0, -0.5f, 0});
  expectNear(kiln::nll_loss(logp, target, "none").toVector<float>(),
             {0.5f, 0, 0.1f});
  EXPECT_NEAR(kiln::nll_loss(logp, target, "sum").item<float>(), 0.6f, 1e-6);

  Tensor a = Tensor::fromVector(std::vector<float>{1, -2, 3, 0.5f});
  a.requiresGrad();
  Tensor l1 =
      kiln::l1_loss(a, Tensor::fromVector(std::vector<float>{0, -2, 5, 1}));
  EXPECT_NEAR(l1.item<float>(), 0.875f, 1e-6);
  l1.backward();
  expectNear(a.grad().toVector<float>(), {0.25f, 0, -0.25f, -0.25f});

  Tensor z = Tensor::fromVector(std::vector<float>{1, -200, 300, 0.5f});
  z.requiresGrad();
  Tensor y = Tensor::fromVector(std::vector<float>{1, 0.5f, 0, 0.25f});
  expectNear(
      kiln::binary_cross_entropy_with_logits(z, y, "none").toVector<float>(),
      {0.31326166f, 100, 300, 0.84907699f});
  Tensor bce = kiln::binary_cross_entropy_with_logits(z, y);
  EXPECT_NEAR(bce.item<float>(), 100.29059f, 1e-4);
  bce.backward();
  expectNear(z.grad().toVector<float>(),
             {-0.067235351f, -0.125f, 0.25f, 0.093114838f});
}

// A value outside the classes is the runtime index error of one_hot's
// index_select (reported where the result is read, as every runtime index
// error of the API).
TEST(Composites, OneHotOfAValueOutsideTheClassesIsAnError) {
  Tensor labels = Tensor::fromVector(std::vector<int64_t>{0, 3});
  expectError(
      [&] { (void)kiln::one_hot(labels, 3).toVector<int64_t>(); },
      "kiln.index_select at -:4:9: index 3 is out of bounds for size 3");
  Tensor negative = Tensor::fromVector(std::vector<int64_t>{0, -1});
  expectError([&] { (void)kiln::one_hot(negative, 3).toVector<int64_t>(); },
              "index -1 is out of bounds for size 3");
  expectError([&] { (void)kiln::one_hot(negative * 2 - 1); },
              "one_hot: class values must be non-negative, got a largest "
              "value of -1");
}

// A layer norm written with layer_norm is the row group of one written out.
TEST(Composites, LayerNormIsOneRowGroup) {
  Tensor x = kiln::ones({64, 256}) * 0.5 +
             kiln::arange(256, 0, 1, kiln::DType::Float32);
  std::string remarks = kiln::layer_norm(x, {256}).explain();
  EXPECT_NE(remarks.find("row group"), std::string::npos) << remarks;
}

TEST(Composites, BadArgumentsAtTheCall) {
  Tensor x = composite2x4();
  Tensor i = Tensor::fromVector(std::vector<int64_t>{1, 2});
  expectError([&] { (void)kiln::transpose(x, 0, 2); },
              "transpose: dim 2 is out of range (expected to be in range of "
              "[-2, 1])");
  expectError([&] { (void)x.squeeze(-3); }, "squeeze: dim -3 is out of range");
  expectError([&] { (void)x.unsqueeze(3); },
              "unsqueeze: dim 3 is out of range (expected to be in range of "
              "[-3, 2])");
  expectError([&] { (void)x.flatten(1, 0); },
              "flatten: start_dim (1) cannot come after end_dim (0)");
  expectError(
      [&] { (void)kiln::var(i); },
      "var: expects a floating-point tensor (as PyTorch does), got i64");
  expectError(
      [&] {
        (void)kiln::std(x, {1, -1});
      },
      "std: dim 1 appears more than once");
  expectError([&] { (void)kiln::logsumexp(x, {2}); },
              "logsumexp: dim 2 is out of range");
  expectError(
      [&] {
        (void)kiln::linear(x, kiln::ones({1, 3, 4}));
      },
      "linear: weight must be 1-D or 2-D ([out, in]), got shape [1, "
      "3, 4]");
  expectError(
      [&] {
        (void)kiln::linear(x, kiln::ones({3, 5}));
      },
      "kiln.matmul");
  expectError([&] { (void)kiln::layer_norm(x, {2}); },
              "layer_norm: given normalized_shape=[2], expected input with "
              "shape [*, 2], but got input of size [2, 4]");
  expectError([&] { (void)kiln::layer_norm(x, {}); },
              "normalized_shape must have at least one dim");
  expectError([&] { (void)kiln::layer_norm(x, {4}, kiln::ones({2})); },
              "layer_norm: weight of shape [2], expected normalized_shape [4]");
  expectError([&] { (void)kiln::silu(i); }, "silu: expects a floating-point");
  expectError([&] { (void)kiln::leaky_relu(i); },
              "leaky_relu: expects a floating-point");
  expectError([&] { (void)kiln::squeeze(Tensor()); }, "squeeze: undefined");
  expectError([&] { (void)x.narrow(1, 3, 2); },
              "narrow: start (3) + length (2) exceeds the size (4) of dim 1");
  expectError([&] { (void)x.narrow(1, -5, 1); },
              "narrow: start -5 is out of range (expected to be in range of "
              "[-4, 3], or 4)");
  EXPECT_EQ(kiln::narrow(kiln::zeros({2, 0}), 1, -1, 0).shape(),
            (std::vector<int64_t>{2, 0})); // an empty dim takes -1 and 0
  expectError([&] { (void)kiln::narrow(kiln::full({}, 1), 0, 0, 1); },
              "narrow: cannot be applied to a rank-0 tensor");
  expectError([&] { (void)x.split(0, 1); },
              "split: split_size must be positive");
  expectError(
      [&] {
        (void)kiln::split_with_sizes(x, {1, 2}, 1);
      },
      "split_with_sizes: the sizes [1, 2] add up to 3, not to the "
      "size (4) of dim 1");
  expectError([&] { (void)x.chunk(0); },
              "chunk: chunks must be greater than 0, got 0");
  expectError([&] { (void)kiln::cat({}); },
              "cat: expects a non-empty list of tensors");
  expectError([&] { (void)kiln::cat({Tensor(), x}); }, "cat: undefined tensor");
  expectError(
      [&] {
        (void)kiln::stack({x, Tensor()});
      },
      "stack: undefined tensor");
  expectError(
      [&] {
        (void)kiln::cat({x, kiln::ones({3, 4})}, 1);
      },
      "cat: sizes of tensors must match except in dim 1: expected "
      "size 2 but got size 3 for tensor 1 (of shape [3, 4])");
  expectError(
      [&] {
        (void)kiln::cat({x, kiln::ones({4})});
      },
      "cat: tensors must have the same number of dims: got 2 and 1");
  expectError(
      [&] {
        (void)kiln::cat({kiln::full({}, 1), kiln::full({}, 2)});
      },
      "cat: a rank-0 tensor (tensor 0) cannot be concatenated");
  expectError(
      [&] {
        (void)kiln::stack({x, kiln::ones({4, 2})});
      },
      "stack: expects each tensor to be equal size, but got [2, 4] at "
      "entry 0 and [4, 2] at entry 1");
  expectError([&] { (void)x.masked_fill(x, 1.0); },
              "masked_fill: the mask must be a bool tensor, got f32");
  expectError([&] { (void)kiln::one_hot(x); },
              "one_hot: expects an int64 tensor of class indices, got f32");
  expectError([&] { (void)kiln::one_hot(i, 0); },
              "one_hot: numClasses must be positive, or -1 to infer it, got 0");
  expectError(
      [&] { (void)kiln::one_hot(kiln::zeros({0}, kiln::DType::Int64)); },
      "one_hot: cannot infer the number of classes from an empty "
      "tensor");
  expectError([&] { (void)kiln::nll_loss(x, i, "avg"); },
              "nll_loss: reduction must be \"mean\", \"sum\" or \"none\", "
              "got \"avg\"");
  expectError([&] { (void)kiln::nll_loss(x, x); },
              "nll_loss: expects int64 class indices as the target, got f32");
  expectError(
      [&] { (void)kiln::nll_loss(x, kiln::zeros({3}, kiln::DType::Int64)); },
      "nll_loss: expects input [N, C] with target [N], or [C] with "
      "target [], got input [2, 4] and target [3]");
  expectError([&] { (void)kiln::l1_loss(i, i); },
              "l1_loss: the mean of integer differences is not computed (as "
              "in PyTorch), got i64 and i64");
  EXPECT_EQ(kiln::l1_loss(i, i * 3, "sum").item<int64_t>(), 6);
  expectError(
      [&] {
        (void)kiln::binary_cross_entropy_with_logits(
            x, kiln::ones(x.shape(), kiln::DType::Int64));
      },
      "binary_cross_entropy_with_logits: expects a floating-point tensor");
  expectError(
      [&] { (void)kiln::binary_cross_entropy_with_logits(x, kiln::ones({4})); },
      "binary_cross_entropy_with_logits: the target's shape [4] must be the "
      "input's shape [2, 4]");
  // At the caller's line.
  try {
    (void)kiln::var(i);
    FAIL() << "no error";
  } catch (const kiln::Error &error) {
    EXPECT_NE(std::string(error.where().file).find("TensorTest.cpp"),
              std::string::npos);
  }
}
} // namespace

namespace {
// equal is torch.equal: the operands' common dtype, shapes that differ
// never equal, a NaN equal to nothing, -0 equal to +0; two stored
// operands (the CPU runtime's comparison, which stops at the first
// difference) and an operand computed in place (the fused sum) alike.
TEST(Methods, EqualIsTorchEqual) {
  Tensor f32 = Tensor::fromVector(std::vector<float>{1, -0.0f, 2.5f}, {3});
  Tensor f64 = Tensor::fromVector(std::vector<double>{1, 0.0, 2.5}, {3});
  EXPECT_TRUE(f32.equal(f64));
  EXPECT_TRUE(kiln::equal(f64, f32).item<bool>());
  Tensor mask = Tensor::fromVector(std::vector<bool>{true, false});
  EXPECT_TRUE(mask.equal(Tensor::fromVector(std::vector<int64_t>{1, 0})));
  EXPECT_FALSE(mask.equal(Tensor::fromVector(std::vector<int64_t>{2, 0})));
  EXPECT_FALSE(f32.equal(f32.reshape({1, 3})));
  Tensor nan = Tensor::fromVector(std::vector<float>{1, NAN}, {2});
  EXPECT_FALSE(nan.equal(nan));
  std::vector<float> values(1 << 20);
  for (size_t i = 0; i < values.size(); ++i)
    values[i] = static_cast<float>(i % 1000) - 500.0f;
  std::vector<float> last = values;
  last.back() += 1;
  Tensor big = Tensor::fromVector(values, {1 << 20});
  EXPECT_TRUE(big.equal(Tensor::fromVector(values, {1 << 20})));
  EXPECT_FALSE(big.equal(Tensor::fromVector(last, {1 << 20})));
  EXPECT_TRUE(kiln::maximum(big, big).equal(big));
  EXPECT_FALSE(
      kiln::maximum(big, big).equal(Tensor::fromVector(last, {1 << 20})));
}

TEST(Threads, SameBitsForEveryThreadCount) {
  std::vector<float> data(1 << 16);
  for (size_t i = 0; i < data.size(); ++i)
    data[i] = std::sin(float(i));
  Tensor x = Tensor::fromVector(data, {256, 256});
  int before = kiln::getNumThreads();
  kiln::setNumThreads(1);
  std::vector<float> one = kiln::softmax(x * 3.0, 1).sum({0}).toVector<float>();
  kiln::setNumThreads(2);
  std::vector<float> two = kiln::softmax(x * 3.0, 1).sum({0}).toVector<float>();
  kiln::setNumThreads(before);
  EXPECT_EQ(one, two);
}

TEST(Threads, CountOutOfRangeIsAnError) {
  int before = kiln::getNumThreads();
  EXPECT_THROW(kiln::setNumThreads(0), kiln::Error);
  EXPECT_THROW(kiln::setNumThreads(100000), kiln::Error);
  EXPECT_EQ(kiln::getNumThreads(), before);
}
} // namespace

namespace {
TEST(Threads, SharedPendingAncestorRealizedConcurrently) {
  Tensor x = Tensor::fromVector(std::vector<float>(4096, 0.5f));
  Tensor shared = kiln::exp(x) * 2.0; // pending, used by every thread
  std::vector<float> results(8);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([t, &shared, &results] {
      if (t % 2 == 0)
        shared.realize(); // some threads realize the ancestor itself
      results[t] = (shared + float(t)).sum().item<float>();
    });
  for (std::thread &thread : threads)
    thread.join();
  float base = 4096 * 2 * std::exp(0.5f);
  for (int t = 0; t < 8; ++t)
    EXPECT_NEAR(results[t], base + 4096.0f * t, 1e-5f * (base + 4096.0f * t));
}
} // namespace

namespace {
// Device::CUDA runs the same graphs on the GPU; without one, choosing it is
// a kiln::Error that says why (and the CPU stays selected).
TEST(Device, CudaRunsTheSameGraphsOrSaysWhyNot) {
  std::string reason;
  if (!kiln::isCudaAvailable(&reason)) {
    EXPECT_FALSE(reason.empty());
    try {
      kiln::setDevice(kiln::Device::CUDA);
      FAIL() << "setDevice(CUDA) succeeded without a GPU";
    } catch (const kiln::Error &error) {
      EXPECT_NE(std::string(error.what()).find("setDevice(Device::CUDA)"),
                std::string::npos);
    }
    EXPECT_EQ(kiln::getDevice(), kiln::Device::CPU);
    GTEST_SKIP() << "no CUDA device: " << reason;
  }
  Tensor x =
      Tensor::fromVector(std::vector<float>{3, 1, 4, 1, 5, 9, 2, 6}, {2, 4});
  auto cpu = kiln::topk(kiln::softmax(x, 1), 2, 1);
  std::vector<float> cpuValues = cpu.values.toVector<float>();
  std::vector<int64_t> cpuIndices = cpu.indices.toVector<int64_t>();
  kiln::setDevice(kiln::Device::CUDA);
  auto gpu = kiln::topk(kiln::softmax(x, 1), 2, 1);
  std::vector<float> gpuValues = gpu.values.toVector<float>();
  std::vector<int64_t> gpuIndices = gpu.indices.toVector<int64_t>();
  kiln::setDevice(kiln::Device::CPU);
  EXPECT_EQ(gpuIndices, cpuIndices);
  for (size_t i = 0; i < cpuValues.size(); ++i)
    EXPECT_NEAR(gpuValues[i], cpuValues[i], 1e-6f);
}
} // namespace

//===----------------------------------------------------------------------===//
// The functions of Functional.cpp, against PyTorch 1.13's values.
//===----------------------------------------------------------------------===//

namespace {
Tensor activationInputs() {
  Tensor x =
      Tensor::fromVector(std::vector<float>{-3, -1, 0, 0.5f, 1, 2, 3, 6});
  x.requiresGrad();
  return x;
}

/// f(x) and the gradient of its sum, against PyTorch's.
void expectActivation(const std::function<Tensor(const Tensor &)> &f,
                      const std::vector<float> &values,
                      const std::vector<float> &gradient) {
  Tensor x = activationInputs();
  Tensor y = f(x);
  expectNear(y.toVector<float>(), values);
  y.sum().backward();
  expectNear(x.grad().toVector<float>(), gradient);
}
} // namespace

TEST(Functional, ActivationsAndTheirGradientsAsInPyTorch) {
  // hardtanh's gradient is 0 at its bounds (-1 and 1), clamp's is not.
  expectActivation([](const Tensor &x) { return kiln::hardtanh(x); },
                   {-1, -1, 0, 0.5f, 1, 1, 1, 1}, {0, 0, 1, 1, 0, 0, 0, 0});
  expectActivation([](const Tensor &x) { return kiln::relu6(x); },
                   {0, 0, 0, 0.5f, 1, 2, 3, 6}, {0, 0, 0, 1, 1, 1, 1, 0});
  expectActivation(
      [](const Tensor &x) { return kiln::hardsigmoid(x); },
      {0, 0.333333343f, 0.5f, 0.583333313f, 0.666666687f, 0.833333313f, 1, 1},
      {0, 0.166666672f, 0.166666672f, 0.166666672f, 0.166666672f, 0.166666672f,
       0, 0});
  // hardswish's gradient at -3 and 3: x/3 + 1/2 (bounds inclusive).
  expectActivation(
      [](const Tensor &x) { return kiln::hardswish(x); },
      {0, -0.333333343f, 0, 0.291666657f, 0.666666687f, 1.66666663f, 3, 6},
      {-0.5f, 0.166666657f, 0.5f, 0.666666687f, 0.833333373f, 1.16666675f, 1.5f,
       1});
  expectActivation([](const Tensor &x) { return kiln::softplus(x); },
                   {0.048587352f, 0.313261688f, 0.693147182f, 0.974076986f,
                    1.31326163f, 2.12692809f, 3.04858732f, 6.00247574f},
                   {0.0474258736f, 0.268941432f, 0.5f, 0.622459352f,
                    0.731058598f, 0.880797088f, 0.952574134f, 0.997527361f});
  expectActivation([](const Tensor &x) { return kiln::elu(x, 0.5); },
                   {-0.475106478f, -0.316060275f, 0, 0.5f, 1, 2, 3, 6},
                   {0.0248935334f, 0.183939725f, 0.5f, 1, 1, 1, 1, 1});
  expectActivation([](const Tensor &x) { return kiln::selu(x); },
                   {-1.6705687f, -1.11133075f, 0, 0.525350511f, 1.05070102f,
                    2.10140204f, 3.15210295f, 6.30420589f},
                   {0.0875306055f, 0.64676863f, 1.75809932f, 1.05070102f,
                    1.05070102f, 1.05070102f, 1.05070102f, 1.05070102f});
  expectActivation([](const Tensor &x) { return kiln::celu(x, 2.0); },
                   {-1.55373967f, -0.786938667f, 0, 0.5f, 1, 2, 3, 6},
                   {0.223130167f, 0.606530666f, 1, 1, 1, 1, 1, 1});
  expectActivation([](const Tensor &x) { return kiln::gelu(x); },
                   {-0.00404986739f, -0.158655286f, 0, 0.345731199f,
                    0.841344714f, 1.95449996f, 2.99595022f, 6},
                   {-0.0119456053f, -0.0833154321f, 0.5f, 0.86749506f,
                    1.08331537f, 1.0852319f, 1.01194561f, 1});
  expectActivation([](const Tensor &x) { return kiln::gelu(x, "tanh"); },
                   {-0.00363743305f, -0.158807993f, 0, 0.345714003f,
                    0.841192007f, 1.95459771f, 2.99636269f, 6},
                   {-0.0115842968f, -0.0829640925f, 0.5f, 0.86736989f,
                    1.08296406f, 1.08609927f, 1.01158428f, 1});
  expectActivation([](const Tensor &x) { return kiln::mish(x); },
                   {-0.145647466f, -0.30340144f, 0, 0.375245243f, 0.865098357f,
                    1.943959f, 2.98653507f, 5.99992657f},
                   {-0.0933931246f, 0.0592167303f, 0.600000024f, 0.886424422f,
                    1.04903626f, 1.06931794f, 1.02110696f, 1.00013399f});
  expectActivation([](const Tensor &x) { return kiln::logsigmoid(x); },
                   {-3.04858732f, -1.31326175f, -0.693147182f, -0.474076986f,
                    -0.313261688f, -0.126928017f, -0.048587352f,
                    -0.00247568521f},
                   {0.952574134f, 0.731058598f, 0.5f, 0.377540678f,
                    0.268941432f, 0.119202919f, 0.0474258736f, 0.00247262325f});
  expectActivation(
      [](const Tensor &x) { return kiln::softsign(x); },
      {-0.75f, -0.5f, 0, 0.333333343f, 0.5f, 0.666666687f, 0.75f, 0.857142866f},
      {0.0625f, 0.25f, 1, 0.444444478f, 0.25f, 0.111111119f, 0.0625f,
       0.0204081684f});
  // No overflow, and no loss to rounding, far out.
  std::vector<float> far =
      kiln::softplus(Tensor::fromVector(std::vector<float>{-80, -20, 30}))
          .toVector<float>();
  EXPECT_FLOAT_EQ(far[0], 1.80485133e-35f);
  EXPECT_FLOAT_EQ(far[1], 2.06115369e-09f);
  EXPECT_FLOAT_EQ(far[2], 30);
  expectNear(kiln::logsigmoid(Tensor::fromVector(std::vector<float>{-200, 200}))
                 .toVector<float>(),
             {-200, 0});
}

TEST(Functional, PointwiseMathAsInPyTorch) {
  Tensor t = Tensor::fromVector(
      std::vector<float>{1e-10f, -1e-7f, 1e-3f, 0.75f, -0.9f, 20});
  // log1p and expm1 keep their small arguments' digits (log(1 + x) and
  // exp(x) - 1 in float32 would give 0 for 1e-10).
  std::vector<float> log1p = kiln::log1p(t).toVector<float>();
  std::vector<float> want1 = {1.00000001e-10f, -1.00000008e-07f,
                              0.000999500393f, 0.559615791f,
                              -2.30258489f,    3.04452252f};
  std::vector<float> expm1 = kiln::expm1(t).toVector<float>();
  std::vector<float> want2 = {1.00000001e-10f, -9.99999941e-08f, 0.00100050017f,
                              1.11699998f,     -0.59343034f,     485165184.0f};
  std::vector<float> erf = kiln::erf(t).toVector<float>();
  std::vector<float> want3 = {1.1283792e-10f, -1.12837917e-07f, 0.00112837879f,
                              0.711155653f,   -0.7969082f,      1};
  for (size_t i = 0; i < want1.size(); ++i) {
    EXPECT_NEAR(log1p[i], want1[i], 2e-7 * std::fabs(want1[i])) << i;
    EXPECT_NEAR(expm1[i], want2[i], 2e-7 * std::fabs(want2[i])) << i;
    EXPECT_NEAR(erf[i], want3[i], 4e-7 * std::fabs(want3[i])) << i;
  }
  Tensor c = Tensor::fromVector(
      std::vector<float>{NAN, INFINITY, -INFINITY, 0, -2, 3});
  EXPECT_EQ(kiln::isnan(c).toVector<bool>(),
            (std::vector<bool>{true, false, false, false, false, false}));
  EXPECT_EQ(kiln::isinf(c).toVector<bool>(),
            (std::vector<bool>{false, true, true, false, false, false}));
  EXPECT_EQ(kiln::isfinite(c).toVector<bool>(),
            (std::vector<bool>{false, false, false, true, true, true}));
  expectNear(kiln::sign(c).toVector<float>(), {0, 1, -1, 0, -1, 1});
  expectNear(kiln::nan_to_num(c, 1, 2.0, -3.0).toVector<float>(),
             {1, 2, -3, 0, -2, 3});
  std::vector<float> n = kiln::nan_to_num(c).toVector<float>();
  EXPECT_EQ(n[1], std::numeric_limits<float>::max());
  EXPECT_EQ(n[2], std::numeric_limits<float>::lowest());
  Tensor ints = Tensor::fromVector(std::vector<int64_t>{1, 2, 0, 3}, {2, 2});
  EXPECT_EQ(kiln::all(ints, 0, true).toVector<bool>(),
            (std::vector<bool>{false, true}));
  EXPECT_EQ(kiln::any(kiln::zeros({0})).toVector<bool>(),
            std::vector<bool>{false});
  EXPECT_EQ(kiln::all(kiln::zeros({0})).toVector<bool>(),
            std::vector<bool>{true});
  EXPECT_EQ(kiln::logical_xor(Tensor::fromVector(std::vector<float>{0, 1, 2}),
                              Tensor::fromVector(std::vector<int64_t>{1, 1, 0}))
                .toVector<bool>(),
            (std::vector<bool>{true, false, true}));
  EXPECT_EQ(
      kiln::square(Tensor::fromVector(std::vector<bool>{true, false})).dtype(),
      kiln::DType::Int64);
  EXPECT_EQ(kiln::reciprocal(ints).dtype(), kiln::DType::Float32);
  Tensor a = Tensor::fromVector(std::vector<float>{1, 2});
  Tensor b = Tensor::fromVector(std::vector<float>{3, 4});
  Tensor w = Tensor::fromVector(std::vector<float>{0.5f, 2});
  expectNear(kiln::lerp(a, Tensor::fromVector(std::vector<float>{3, 6}),
                        Tensor::fromVector(std::vector<float>{0.25f, 1}))
                 .toVector<float>(),
             {1.5f, 6});
  expectNear(kiln::addcmul(a, b, w, 2).toVector<float>(), {4, 18});
  expectNear(kiln::addcdiv(a, b, w, -1).toVector<float>(), {-5, 0});
}

TEST(Functional, LossesAndSimilaritiesAsInPyTorch) {
  Tensor a =
      Tensor::fromVector(std::vector<float>{1, -2, 3, 0.5f, 0, -1}, {2, 3});
  a.requiresGrad();
  Tensor b =
      Tensor::fromVector(std::vector<float>{0, 1, 2, -1, 2, 0.5f}, {2, 3});
  expectNear(kiln::smooth_l1_loss(a, b, "mean", 1.5).toVector<float>(),
             {0.944444478f});
  expectNear(kiln::huber_loss(a, b, "sum", 1.5).toVector<float>(), {8.5f});
  kiln::smooth_l1_loss(a, b, "sum", 1.5).backward();
  expectNear(a.grad().toVector<float>(),
             {0.666666687f, -1, 0.666666687f, 1, -1, -1});
  Tensor logp = kiln::log_softmax(
      Tensor::fromVector(std::vector<float>{1, 2, 3, 0, 0, 1}, {2, 3}), 1);
  Tensor p = Tensor::fromVector(
      std::vector<float>{0.2f, 0.3f, 0.5f, 0, 0.5f, 0.5f}, {2, 3});
  expectNear(kiln::kl_div(logp, p, "batchmean").toVector<float>(),
             {0.218125239f});
  // 0 log 0 is 0.
  expectNear(kiln::kl_div(logp, p, "none").toVector<float>(),
             {0.159633607f, 0.0610899031f, -0.142770618f, 0, 0.429148793f,
              -0.0708512366f});
  expectNear(kiln::cosine_similarity(a, b).toVector<float>(),
             {0.478091389f, -0.390359998f});
  expectNear(kiln::cosine_similarity(a, b, 0).toVector<float>(),
             {-0.44721359f, -0.44721359f, 0.843661487f});
  expectNear(kiln::normalize(a, 1.0, 0).toVector<float>(),
             {0.666666687f, -1, 0.75f, 0.333333343f, 0, -0.25f});
}

TEST(Functional, ShapeAndMatrixFunctionsAsInPyTorch) {
  Tensor x = kiln::arange(6, 0, 1, kiln::DType::Float32).reshape({2, 3});
  expectNear(kiln::flip(x, {0, 1}).toVector<float>(), {5, 4, 3, 2, 1, 0});
  expectNear(kiln::roll(x, {1}, {1}).toVector<float>(), {2, 0, 1, 5, 3, 4});
  expectNear(kiln::roll(x, {-2}).toVector<float>(), {2, 3, 4, 5, 0, 1});
  expectNear(kiln::roll(x, {1, 2}, {0, 1}).toVector<float>(),
             {4, 5, 3, 1, 2, 0});
  Tensor r = kiln::repeat(x, {2, 1, 2});
  EXPECT_EQ(r.shape(), (std::vector<int64_t>{2, 2, 6}));
  expectNear(r.toVector<float>(), {0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5,
                                   0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5});
  expectNear(kiln::tile(x, {2}).toVector<float>(),
             {0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5});
  expectNear(kiln::tril(kiln::ones({3, 4}), -1).toVector<float>(),
             {0, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0});
  expectNear(
      kiln::triu(kiln::arange(12, 0, 1, kiln::DType::Float32).reshape({3, 4}),
                 1)
          .toVector<float>(),
      {0, 1, 2, 3, 0, 0, 6, 7, 0, 0, 0, 11});
  expectNear(kiln::eye(2, 3).toVector<float>(), {1, 0, 0, 0, 1, 0});
  expectNear(kiln::outer(Tensor::fromVector(std::vector<float>{1, 2}),
                         Tensor::fromVector(std::vector<float>{3, 4, 5}))
                 .toVector<float>(),
             {3, 4, 5, 6, 8, 10});
  Tensor m = Tensor::fromVector(std::vector<float>{1, 2, 3, 4}, {2, 2});
  // beta 0 ignores the input, NaN included.
  expectNear(kiln::addmm(Tensor::fromVector(std::vector<float>{1, NAN}),
                         kiln::ones({2, 2}), m, 0.0, 2.0)
                 .toVector<float>(),
             {8, 12, 8, 12});
  expectNear(kiln::addmm(Tensor::fromVector(std::vector<float>{1, 2}),
                         kiln::ones({2, 2}), m, 0.5)
                 .toVector<float>(),
             {4.5f, 7, 4.5f, 7});
  // The flip's gradient goes back to each element's place.
  Tensor y = Tensor::fromVector(std::vector<float>{1, 2, 3});
  y.requiresGrad();
  (kiln::flip(y, {0}) * Tensor::fromVector(std::vector<float>{1, 10, 100}))
      .sum()
      .backward();
  expectNear(y.grad().toVector<float>(), {100, 10, 1});
}

TEST(Functional, BadArgumentsAtTheCall) {
  Tensor x = Tensor::fromVector(std::vector<float>{1, 2, 3, 4}, {2, 2});
  Tensor i = Tensor::fromVector(std::vector<int64_t>{1, 2});
  Tensor flags = Tensor::fromVector(std::vector<bool>{true, false});
  expectError([&] { (void)kiln::softplus(i); },
              "softplus: expects a floating-point tensor");
  expectError([&] { (void)kiln::gelu(x, "erf"); },
              "gelu: approximate must be \"none\" or \"tanh\", got \"erf\"");
  expectError([&] { (void)kiln::hardtanh(x, 1, -1); },
              "hardtanh: min_val (1.000000) must not be greater than max_val");
  expectError([&] { (void)kiln::hardtanh(flags); },
              "hardtanh: bool inputs are not supported");
  expectError([&] { (void)kiln::celu(x, 0); }, "celu: alpha must not be 0");
  expectError([&] { (void)kiln::softsign(flags); },
              "softsign: bool inputs are not supported");
  expectError([&] { (void)kiln::any(x, 2); },
              "any: dim 2 is out of range (expected to be in range of [-2, "
              "1])");
  expectError([&] { (void)kiln::lerp(x, x.to(kiln::DType::Float64), 0.5); },
              "lerp: expects start, end and weight of one dtype");
  expectError([&] { (void)kiln::addcdiv(x, i, i); },
              "addcdiv: integer division is not supported");
  expectError([&] { (void)kiln::smooth_l1_loss(x, x, "mean", -1); },
              "smooth_l1_loss: beta must not be negative");
  expectError([&] { (void)kiln::huber_loss(x, x, "mean", 0); },
              "huber_loss: delta must be positive");
  expectError([&] { (void)kiln::kl_div(x, x, "batch"); },
              "kl_div: reduction must be");
  expectError([&] { (void)kiln::cosine_similarity(x, kiln::ones({3})); },
              "cosine_similarity: shapes [2, 2] and [3] do not broadcast");
  expectError([&] { (void)kiln::normalize(x, 2.0, 2); },
              "normalize: dim 2 is out of range");
  expectError(
      [&] {
        (void)kiln::flip(x, {0, -2});
      },
      "flip: dim 0 appears more than once");
  expectError(
      [&] {
        (void)kiln::roll(x, {1, 2}, {0});
      },
      "roll: shifts and dims must align: got 2 shifts and 1 dims");
  expectError([&] { (void)kiln::repeat(x, {2}); },
              "repeat: the number of repeats (1) can not be smaller than the "
              "number of dims of the tensor (2)");
  expectError(
      [&] {
        (void)kiln::repeat(x, {2, -1});
      },
      "repeat: repeats must not be negative, got -1");
  expectError([&] { (void)kiln::tril(i); },
              "tril: expects a tensor of at least 2 dims, got 1");
  expectError([&] { (void)kiln::eye(-1); }, "eye: n must be non-negative");
  expectError([&] { (void)kiln::outer(x, i); },
              "outer: expects two 1-D tensors, got 2-D and 1-D");
  expectError([&] { (void)kiln::dot(i, i.to(kiln::DType::Float32)); },
              "dot: expects both operands to have the same dtype, got i64 and "
              "f32");
  expectError([&] { (void)kiln::dot(flags, flags); },
              "dot: bool operands are not supported");
  expectError([&] { (void)kiln::mv(x, x); },
              "mv: expects 2-D and 1-D tensors, got 2-D and 2-D");
  expectError(
      [&] {
        (void)kiln::bmm(kiln::ones({2, 2, 2}), kiln::ones({3, 2, 2}));
      },
      "bmm: expects the same batch size, got [2, 2, 2] and [3, 2, 2]");
  expectError([&] { (void)kiln::addmm(kiln::ones({3}), x, x); },
              "addmm: shapes [3] and [2, 2] do not broadcast");
  expectError([&] { (void)kiln::isnan(Tensor()); }, "isnan: undefined tensor");
}

// Values and gradients (of the sum) against PyTorch 1.13's, computed with
// it for these inputs.
TEST(Functional, ShrinkageMarginAndDistanceFunctionsAsInPyTorch) {
  struct Case {
    const char *name;
    std::function<Tensor(const Tensor &)> f;
    std::vector<float> values, gradient;
  };
  Tensor y = Tensor::fromVector(std::vector<float>{1, -1, 1, -1, 1, 1});
  Tensor z = Tensor::fromVector(std::vector<float>{0.5f, 0.25f, -1, 1, 3, -2});
  std::vector<Case> cases = {
      {"softmin",
       [](const Tensor &x) {
         return kiln::softmin(x.reshape({2, 3}), 1);
       },
       {0.662411809f, 0.189784169f, 0.147804052f, 0.389024794f, 0.111457475f,
        0.499517739f},
       {0, 0, 0, 0, 0, 0}},
      {"softshrink",
       [](const Tensor &x) { return kiln::softshrink(x, 0.5); },
       {-1, 0, 0, 0.25f, 1.5f, 0},
       {1, 0, 0, 1, 1, 0}},
      {"tanhshrink",
       [](const Tensor &x) { return kiln::tanhshrink(x); },
       {-0.594851732f, -0.00508134067f, 0, 0.114851058f, 1.03597236f,
        0.0378828347f},
       {0.81929338f, 0.0599851608f, 0, 0.40341419f, 0.929349184f,
        0.213552296f}},
      {"glu",
       [](const Tensor &x) {
         return kiln::glu(x.reshape({3, 2}), 1);
       },
       {-0.656735241f, 0, 1.2449187f},
       {0.437823504f, -0.369201124f, 0.679178715f, 0, 0.622459352f,
        0.47000742f}},
      {"margin_ranking_loss",
       [&](const Tensor &x) {
         return kiln::margin_ranking_loss(x, z, y, 0.5, "none");
       },
       {2.5f, 0, 0, 0.25f, 1.5f, 0},
       {-1, 1, 0, 1, -1, 0}},
      {"hinge_embedding_loss",
       [&](const Tensor &x) {
         return kiln::hinge_embedding_loss(x, y, 1.0, "none");
       },
       {-1.5f, 1.25f, 0, 0.25f, 2, 0.5f},
       {1, -1, 1, -1, 1, 1}},
      {"soft_margin_loss",
       [&](const Tensor &x) { return kiln::soft_margin_loss(x, y, "none"); },
       {1.70141327f, 0.575939417f, 0.693147182f, 1.13687098f, 0.126928046f,
        0.474076986f},
       {-0.817574501f, 0.437823504f, -0.5f, 0.679178715f, -0.119202919f,
        -0.377540678f}},
      {"poisson_nll_loss",
       [&](const Tensor &x) {
         return kiln::poisson_nll_loss(x, kiln::abs(z) * 2.0, true, true, 1e-8,
                                       "none");
       },
       {1.72313023f, 0.903800786f, 1.65180647f, 1.26880658f, 1.95443153f,
        2.8059845f},
       {-0.776869833f, 0.278800786f, -1, 0.117000103f, 1.38905621f,
        -2.35127878f}},
      {"multilabel_soft_margin_loss",
       [&](const Tensor &x) {
         return kiln::multilabel_soft_margin_loss(
             x.reshape({2, 3}),
             (y.reshape({2, 3}) > 0.0).to(kiln::DType::Float32), "none");
       },
       {0.990166664f, 0.579291999f},
       {-0.272524834f, 0.145941168f, -0.166666672f, 0.22639291f, -0.0397343077f,
        -0.125846893f}},
      {"pairwise_distance",
       [&](const Tensor &x) {
         return kiln::pairwise_distance(x.reshape({2, 3}), z.reshape({2, 3}));
       },
       {2.29128718f, 2.70416379f},
       {-0.872871399f, -0.218217507f, 0.436436325f, -0.0924496502f,
        -0.369799703f, 0.924500585f}},
      {"triplet_margin_loss",
       [&](const Tensor &x) {
         return kiln::triplet_margin_loss(x.reshape({2, 3}), z.reshape({2, 3}),
                                          y.reshape({2, 3}), 1.0, 2.0, 1e-6,
                                          true, "none");
       },
       {0.880374908f, 1.62750673f},
       {-0.872871399f, -0.218217507f, 0.436436325f, -0.935150683f,
        -0.851343334f, 1.16527164f}},
      {"trace",
       [](const Tensor &x) {
         return kiln::trace(x.reshape({2, 3}));
       },
       {0.5f},
       {1, 0, 0, 0, 1, 0}},
  };
  for (const Case &c : cases) {
    SCOPED_TRACE(c.name);
    Tensor x = Tensor::fromVector(
        std::vector<float>{-1.5f, -0.25f, 0, 0.75f, 2, 0.5f});
    x.requiresGrad();
    Tensor out = c.f(x);
    expectNear(out.toVector<float>(), c.values);
    out.sum().backward();
    expectNear(x.grad().toVector<float>(), c.gradient);
  }
  // NaN: hardshrink keeps it, softshrink gives 0 (PyTorch's kernels), both
  // with the zero gradient of PyTorch's vectorized backward; threshold
  // keeps it and passes its gradient.
  const float nan = NAN;
  Tensor x = Tensor::fromVector(std::vector<float>{nan, 0.25f, -3});
  x.requiresGrad();
  Tensor hard = kiln::hardshrink(x);
  hard.sum().backward();
  std::vector<float> hv = hard.toVector<float>(),
                     hg = x.grad().toVector<float>();
  EXPECT_TRUE(std::isnan(hv[0]));
  EXPECT_EQ(hv[1], 0.0f);
  EXPECT_FALSE(std::signbit(hv[1]));
  EXPECT_EQ(hv[2], -3.0f);
  expectNear(hg, {0, 0, 1});
  Tensor x2 = Tensor::fromVector(std::vector<float>{nan, -0.25f, -3});
  x2.requiresGrad();
  Tensor soft = kiln::softshrink(x2);
  soft.sum().backward();
  expectNear(soft.toVector<float>(), {0, 0, -2.5f});
  EXPECT_FALSE(std::signbit(soft.toVector<float>()[1]));
  expectNear(x2.grad().toVector<float>(), {0, 0, 1});
  Tensor x3 = Tensor::fromVector(std::vector<float>{nan, 0.25f, 3});
  x3.requiresGrad();
  Tensor th = kiln::threshold(x3, 0.5, -1.0);
  th.sum().backward();
  EXPECT_TRUE(std::isnan(th.toVector<float>()[0]));
  expectNear(x3.grad().toVector<float>(), {1, 0, 1});
  // Integers: threshold keeps the dtype (numbers truncated), trace sums to
  // int64, hinge_embedding_loss computes in the input's dtype.
  Tensor i = Tensor::fromVector(std::vector<int64_t>{1, -1, 2, 0}, {2, 2});
  EXPECT_EQ(kiln::threshold(i, -0.5, 7).toVector<int64_t>(),
            (std::vector<int64_t>{1, 7, 2, 7}));
  EXPECT_EQ(kiln::trace(i).dtype(), kiln::DType::Int64);
  EXPECT_EQ(kiln::trace(i).item<int64_t>(), 1);
  EXPECT_EQ(kiln::hinge_embedding_loss(i, i, 1.5, "none").toVector<int64_t>(),
            (std::vector<int64_t>{1, 2, 2, 1}));
  EXPECT_EQ(kiln::margin_ranking_loss(i, i, i, 0.0, "sum").dtype(),
            kiln::DType::Float32);
}

TEST(Functional, ShrinkageMarginAndDistanceFunctionsRefuseWhatPyTorchRefuses) {
  Tensor x = kiln::ones({2, 3});
  Tensor i = Tensor::fromVector(std::vector<int64_t>{1, 2});
  Tensor flags = Tensor::fromVector(std::vector<bool>{true, false});
  expectError([&] { (void)kiln::softmin(i, 0); },
              "softmin: expects a floating-point tensor");
  expectError([&] { (void)kiln::hardshrink(i); },
              "hardshrink: expects a floating-point tensor");
  expectError([&] { (void)kiln::softshrink(x, -1.0); },
              "softshrink: lambda must be greater or equal to 0");
  expectError([&] { (void)kiln::tanhshrink(flags); },
              "tanhshrink: bool inputs are not supported");
  expectError([&] { (void)kiln::threshold(flags, 0, 1); },
              "threshold: bool inputs are not supported");
  expectError([&] { (void)kiln::glu(x); },
              "glu: halving dimension must be even, but dimension 1 is size 3");
  expectError([&] { (void)kiln::glu(kiln::full({}, 1.0)); },
              "glu: does not support scalars");
  expectError(
      [&] { (void)kiln::margin_ranking_loss(x, x, kiln::ones({3})); },
      "margin_ranking_loss: expects inputs of the same number of dims, got "
      "2-D, 2-D, 1-D");
  expectError([&] { (void)kiln::hinge_embedding_loss(x, x, 1.0, "avg"); },
              "hinge_embedding_loss: reduction must be");
  expectError([&] { (void)kiln::hinge_embedding_loss(flags, flags); },
              "hinge_embedding_loss: bool inputs are not supported");
  expectError([&] { (void)kiln::soft_margin_loss(i, i); },
              "soft_margin_loss: expects a floating-point tensor");
  expectError([&] { (void)kiln::multilabel_soft_margin_loss(x, x > 0.0); },
              "multilabel_soft_margin_loss: bool targets are not supported");
  expectError(
      [&] {
        (void)kiln::multilabel_soft_margin_loss(kiln::full({}, 1.0),
                                                kiln::full({}, 1.0));
      },
      "multilabel_soft_margin_loss: expects an input with a class dim");
  expectError([&] { (void)kiln::pairwise_distance(x, kiln::ones({4})); },
              "pairwise_distance: shapes [2, 3] and [4] do not broadcast");
  expectError([&] { (void)kiln::triplet_margin_loss(x, x, kiln::ones({3})); },
              "triplet_margin_loss: expects inputs of the same number of dims");
  expectError([&] { (void)kiln::trace(i); },
              "trace: expects a matrix, got a tensor of 1 dims");
  expectError(
      [&] {
        (void)kiln::trace(kiln::ones({2, 2}) > 0.0);
      },
      "trace: bool inputs are not supported");
}

TEST(Functional, MethodsAreTheFunctions) {
  Tensor x = Tensor::fromVector(std::vector<float>{1, -2, 0, NAN}, {2, 2});
  EXPECT_EQ(x.isnan().toVector<bool>(), kiln::isnan(x).toVector<bool>());
  EXPECT_EQ(x.any(1).toVector<bool>(), (std::vector<bool>{true, true}));
  EXPECT_EQ(x.all().toVector<bool>(), std::vector<bool>{false});
  expectNear(x.sign().toVector<float>(), {1, -1, 0, 0});
  Tensor m = Tensor::fromVector(std::vector<float>{1, 2, 3, 4}, {2, 2});
  expectNear(m.flip({1}).toVector<float>(), {2, 1, 4, 3});
  EXPECT_EQ(m.repeat({1, 2}).shape(), (std::vector<int64_t>{2, 4}));
  expectNear(m.roll({1}, {0}).toVector<float>(), {3, 4, 1, 2});
  expectNear(m.tril().toVector<float>(), {1, 0, 3, 4});
  expectNear(m.mm(m).toVector<float>(), {7, 10, 15, 22});
  expectNear(m.erf().toVector<float>(), kiln::erf(m).toVector<float>());
}

namespace {
/// Equal as floats, NaN equal to NaN (PyTorch's NaN gradients included).
void expectSameOrBothNaN(const std::vector<float> &got,
                         const std::vector<float> &want,
                         const std::string &what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(want[i]))
      EXPECT_TRUE(std::isnan(got[i])) << what << " element " << i;
    else
      EXPECT_FLOAT_EQ(got[i], want[i]) << what << " element " << i;
  }
}
} // namespace

TEST(Functional, ValuesAndGradientsAtNaNAndInfinitiesAsInPyTorch) {
  const float nan = NAN, inf = INFINITY;
  struct Case {
    const char *name;
    std::function<Tensor(const Tensor &)> f;
    std::vector<float> values, gradient;
  };
  Tensor zeros = kiln::zeros({3});
  std::vector<Case> cases = {
      {"softplus",
       [](const Tensor &x) { return kiln::softplus(x); },
       {nan, inf, 0},
       {nan, 1, 0}},
      {"elu",
       [](const Tensor &x) { return kiln::elu(x); },
       {nan, inf, -1},
       {1, 1, 0}},
      {"selu",
       [](const Tensor &x) { return kiln::selu(x); },
       {nan, inf, -1.7580993f},
       {1.050701f, 1.050701f, 0}},
      {"celu",
       [](const Tensor &x) { return kiln::celu(x); },
       {nan, inf, -1},
       {1, 1, 0}},
      // PyTorch's vectorized hardtanh_backward (lo < x < hi) gives 0 at
      // NaN; its scalar tail, which these 3 elements take, the gradient.
      {"hardtanh",
       [](const Tensor &x) { return kiln::hardtanh(x); },
       {nan, 1, -1},
       {0, 0, 0}},
      {"relu6",
       [](const Tensor &x) { return kiln::relu6(x); },
       {nan, 6, 0},
       {0, 0, 0}},
      {"hardsigmoid",
       [](const Tensor &x) { return kiln::hardsigmoid(x); },
       {nan, 1, 0},
       {0, 0, 0}},
      // PyTorch's vectorized hardswish_backward multiplies the gradient
      // by x / 3 + 1/2 at NaN (NaN; 16 f32 elements take it), its scalar
      // tail passes it (these 3 elements: 1).
      {"hardswish",
       [](const Tensor &x) { return kiln::hardswish(x); },
       {nan, inf, nan},
       {nan, 1, 0}},
      {"logsigmoid",
       [](const Tensor &x) { return kiln::logsigmoid(x); },
       {nan, 0, -inf},
       {nan, 0, 1}},
      {"smooth_l1_loss",
       [&](const Tensor &x) { return kiln::smooth_l1_loss(x, zeros, "none"); },
       {nan, inf, inf},
       {nan, 1, -1}},
      {"huber_loss",
       [&](const Tensor &x) { return kiln::huber_loss(x, zeros, "none"); },
       {nan, inf, inf},
       {nan, 1, -1}},
      {"log1p",
       [](const Tensor &x) { return kiln::log1p(x); },
       {nan, inf, nan},
       {nan, 0, 0}},
      {"expm1",
       [](const Tensor &x) { return kiln::expm1(x); },
       {nan, inf, -1},
       {nan, inf, 0}},
      {"sign",
       [](const Tensor &x) { return kiln::sign(x); },
       {0, 1, -1},
       {0, 0, 0}},
      {"nan_to_num",
       [](const Tensor &x) { return kiln::nan_to_num(x); },
       {0, std::numeric_limits<float>::max(),
        std::numeric_limits<float>::lowest()},
       {0, 0, 0}},
      {"erf",
       [](const Tensor &x) { return kiln::erf(x); },
       {nan, 1, -1},
       {nan, 0, 0}},
  };
  for (const Case &c : cases) {
    Tensor x = Tensor::fromVector(std::vector<float>{nan, inf, -inf});
    x.requiresGrad();
    Tensor y = c.f(x);
    expectSameOrBothNaN(y.toVector<float>(), c.values, c.name);
    y.sum().backward();
    expectSameOrBothNaN(x.grad().toVector<float>(), c.gradient, c.name);
  }
}
