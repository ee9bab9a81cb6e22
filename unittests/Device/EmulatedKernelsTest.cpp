//===- EmulatedKernelsTest.cpp - Device kernels run on the host -----------===//
//
// Kiln's GPU kernels (lib/Runtime/Device/Kernels.cpp), compiled for the
// host and run by the emulator (Emulator.h) with the grid the runtime
// (lib/Runtime/Cuda.cpp) launches, against a direct implementation of the
// spec's order: NaN above every number, equal values (+0 and -0 included)
// by ascending index. This checks the kernels' logic (radix selection, the
// fast path and its fallbacks, bitonic sorts, warp and block scans) on
// every machine; test/GPU/numerics.test checks them on a GPU.
//
//===----------------------------------------------------------------------===//

#include "Emulator.h"

#include "../../lib/Runtime/Device/Kernels.cpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <random>

namespace {

/// Whether a comes before b in a `largest` selection (the spec's order).
template <typename T> bool before(T a, T b, bool largest) {
  bool nanA = a != a, nanB = b != b;
  if (nanA || nanB)
    return largest ? nanA && !nanB : nanB && !nanA;
  return largest ? a > b : a < b;
}

/// The expected sorted topk of one strided row: indices.
template <typename T>
std::vector<int64_t> referenceTopk(const std::vector<T> &row, int64_t k,
                                   bool largest) {
  std::vector<int64_t> order(row.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return before(row[a], row[b], largest);
  });
  order.resize(k);
  return order;
}

template <typename T> bool sameBits(T a, T b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

/// Rows of random values with many repeats, NaNs and signed zeros.
template <typename T>
std::vector<T> randomData(size_t n, std::mt19937_64 &rng, int distinct) {
  std::vector<T> data(n);
  std::uniform_int_distribution<int> pick(0, distinct - 1);
  std::uniform_int_distribution<int> special(0, 99);
  for (T &v : data) {
    v = T(pick(rng)) - T(distinct / 2);
    if constexpr (!std::is_integral_v<T>) {
      int s = special(rng);
      if (s == 0)
        v = T(NAN);
      else if (s == 1)
        v = T(-0.0);
      else if (s < 50)
        v += T(pick(rng)) / T(distinct);
    }
  }
  return data;
}

/// Runs kiln_gpu_topk on an [outer, size, inner] tensor as the runtime
/// does and compares every row with the reference.
template <typename T>
void checkTopk(void (*kernel)(const T *, T *, i64 *, i64, i64, i64, int, u64 *,
                              i64 *),
               int64_t outer, int64_t size, int64_t inner, int64_t k,
               bool largest, int distinct, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::vector<T> in = randomData<T>(outer * size * inner, rng, distinct);
  int64_t rows = outer * inner;
  std::vector<T> values(rows * k);
  std::vector<i64> indices(rows * k, -1);
  int64_t padded = 1;
  while (padded < k)
    padded <<= 1;
  std::vector<u64> scratchKeys;
  std::vector<i64> scratchIndices;
  if (padded > 2048) { // kSharedCandidates
    scratchKeys.resize(rows * padded);
    scratchIndices.resize(rows * padded);
  }
  emulator::launch(rows, 512, [&] {
    kernel(in.data(), values.data(), indices.data(), size, inner, k, largest,
           scratchKeys.data(), scratchIndices.data());
  });
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      std::vector<T> row(size);
      for (int64_t j = 0; j < size; ++j)
        row[j] = in[(o * size + j) * inner + i];
      std::vector<int64_t> want = referenceTopk(row, k, largest);
      for (int64_t j = 0; j < k; ++j) {
        int64_t at = (o * k + j) * inner + i;
        ASSERT_EQ(indices[at], want[j])
            << "row (" << o << ", " << i << ") position " << j << " of " << size
            << "x k=" << k << (largest ? " largest" : " smallest");
        ASSERT_TRUE(sameBits(values[at], row[want[j]]));
      }
    }
}

TEST(EmulatedTopk, SmallKFastPath) {
  checkTopk<float>(kiln_gpu_topk_f32, 3, 1000, 1, 16, true, 1000, 1);
  checkTopk<float>(kiln_gpu_topk_f32, 2, 777, 1, 5, false, 50, 2);
  checkTopk<double>(kiln_gpu_topk_f64, 2, 600, 1, 32, true, 300, 3);
  checkTopk<i64>(kiln_gpu_topk_i64, 2, 900, 1, 20, false, 100, 4);
}

TEST(EmulatedTopk, StridedRows) {
  checkTopk<float>(kiln_gpu_topk_f32, 2, 300, 3, 7, true, 200, 5);
  checkTopk<i64>(kiln_gpu_topk_i64, 1, 257, 4, 9, true, 30, 6);
}

TEST(EmulatedTopk, ManyTiesTakeTheExactSelection) {
  // Few distinct values: more than kSharedCandidates elements reach the
  // k-th's bucket, so the fast path gives way to the radix selection.
  checkTopk<float>(kiln_gpu_topk_f32, 2, 5000, 1, 100, true, 4, 7);
  checkTopk<double>(kiln_gpu_topk_f64, 1, 4000, 1, 64, false, 3, 8);
}

TEST(EmulatedTopk, LargeKUsesGlobalScratch) {
  checkTopk<float>(kiln_gpu_topk_f32, 1, 6000, 1, 3000, true, 2000, 9);
  checkTopk<i64>(kiln_gpu_topk_i64, 2, 3000, 1, 2100, false, 500, 10);
}

TEST(EmulatedTopk, WholeRowAndOne) {
  checkTopk<float>(kiln_gpu_topk_f32, 2, 40, 1, 40, true, 10, 11);
  checkTopk<float>(kiln_gpu_topk_f32, 3, 1, 1, 1, false, 10, 12);
}

template <typename T>
void checkKthvalue(void (*kernel)(const T *, T *, i64 *, i64, i64, i64),
                   int64_t rows, int64_t size, int64_t k, int distinct,
                   unsigned seed) {
  std::mt19937_64 rng(seed);
  std::vector<T> in = randomData<T>(rows * size, rng, distinct);
  std::vector<T> values(rows);
  std::vector<i64> indices(rows, -1);
  emulator::launch(rows, 512, [&] {
    kernel(in.data(), values.data(), indices.data(), size, 1, k);
  });
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<T> row(in.begin() + r * size, in.begin() + (r + 1) * size);
    // The k-th smallest value, reported at the lowest index holding it.
    int64_t kth = referenceTopk(row, k, /*largest=*/false)[k - 1];
    int64_t lowest = kth;
    for (int64_t j = 0; j < size; ++j)
      if (!before(row[j], row[kth], false) && !before(row[kth], row[j], false))
        lowest = std::min(lowest, j);
    ASSERT_EQ(indices[r], lowest) << "row " << r << " k=" << k;
    ASSERT_TRUE(sameBits(values[r], row[lowest]));
  }
}

TEST(EmulatedKthvalue, AgainstSortedOrder) {
  checkKthvalue<float>(kiln_gpu_kthvalue_f32, 3, 1000, 1, 100, 21);
  checkKthvalue<float>(kiln_gpu_kthvalue_f32, 2, 1000, 500, 7, 22);
  checkKthvalue<double>(kiln_gpu_kthvalue_f64, 2, 333, 333, 1000, 23);
  checkKthvalue<i64>(kiln_gpu_kthvalue_i64, 2, 700, 42, 20, 24);
}

/// The spec's max/argmax: the first NaN wins, else the first best value.
template <typename T>
int64_t referenceArg(const std::vector<T> &row, bool isMax) {
  int64_t best = 0;
  for (int64_t j = 0; j < int64_t(row.size()); ++j) {
    if (row[best] != row[best])
      break;
    if (row[j] != row[j] || (isMax ? row[j] > row[best] : row[j] < row[best]))
      best = j;
  }
  return best;
}

template <typename T> void checkArgReductions(unsigned seed) {
  std::mt19937_64 rng(seed);
  for (bool isMax : {true, false}) {
    // Contiguous rows: one warp per row (many rows) or one block per row.
    int64_t rows = 20, size = 1000;
    std::vector<T> in = randomData<T>(rows * size, rng, 40);
    std::vector<T> values(rows);
    std::vector<i64> indices(rows, -1);
    std::vector<T> blockValues(rows);
    std::vector<i64> blockIndices(rows, -1);
    emulator::launch((rows + 7) / 8, 256, [&] {
      if constexpr (std::is_same_v<T, float>)
        kiln_gpu_arg_warp_f32(in.data(), values.data(), indices.data(), rows,
                              size, isMax);
      else
        kiln_gpu_arg_warp_f64(in.data(), values.data(), indices.data(), rows,
                              size, isMax);
    });
    emulator::launch(rows, 1024, [&] {
      if constexpr (std::is_same_v<T, float>)
        kiln_gpu_arg_block_f32(in.data(), blockValues.data(),
                               blockIndices.data(), size, 1, isMax);
      else
        kiln_gpu_arg_block_f64(in.data(), blockValues.data(),
                               blockIndices.data(), size, 1, isMax);
    });
    for (int64_t r = 0; r < rows; ++r) {
      std::vector<T> row(in.begin() + r * size, in.begin() + (r + 1) * size);
      int64_t want = referenceArg(row, isMax);
      EXPECT_EQ(indices[r], want) << "warp kernel, row " << r;
      EXPECT_EQ(blockIndices[r], want) << "block kernel, row " << r;
      EXPECT_TRUE(sameBits(values[r], row[want]));
      EXPECT_TRUE(sameBits(blockValues[r], row[want]));
    }
    // A reduced dim that is not innermost: one thread per position.
    int64_t outer = 3, inner = 70;
    std::vector<T> strided = randomData<T>(outer * size * inner, rng, 40);
    std::vector<T> stridedValues(outer * inner);
    std::vector<i64> stridedIndices(outer * inner, -1);
    int64_t positions = outer * inner;
    emulator::launch((positions + 255) / 256, 256, [&] {
      if constexpr (std::is_same_v<T, float>)
        kiln_gpu_arg_strided_f32(strided.data(), stridedValues.data(),
                                 stridedIndices.data(), positions, size, inner,
                                 isMax);
      else
        kiln_gpu_arg_strided_f64(strided.data(), stridedValues.data(),
                                 stridedIndices.data(), positions, size, inner,
                                 isMax);
    });
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        std::vector<T> row(size);
        for (int64_t j = 0; j < size; ++j)
          row[j] = strided[(o * size + j) * inner + i];
        EXPECT_EQ(stridedIndices[o * inner + i], referenceArg(row, isMax))
            << "strided kernel, position (" << o << ", " << i << ")";
      }
  }
}

TEST(EmulatedArgReductions, WarpBlockAndStridedKernels) {
  checkArgReductions<float>(31);
  checkArgReductions<double>(32);
}

/// softmax rows (streamed and in registers) against a double reference.
TEST(EmulatedSoftmax, StreamedAndInRegisters) {
  std::mt19937_64 rng(41);
  std::normal_distribution<float> normal(0.0f, 4.0f);
  for (int64_t size : {4, 100, 1024, 3000}) {
    int64_t rows = 3;
    std::vector<float> in(rows * size);
    for (float &v : in)
      v = normal(rng);
    in[size + 7 % size] = -INFINITY; // row 1 holds -inf
    for (bool isLog : {false, true})
      for (int kernel = 0; kernel < 2; ++kernel) {
        // As the runtime launches them: streamed rows with 512 threads;
        // in registers (size % 4 == 0, at most 8 * 4 * 256 floats) 256.
        std::vector<float> out(rows * size, NAN);
        if (kernel == 0)
          emulator::launch(rows, 512, [&] {
            kiln_gpu_softmax_f32(in.data(), out.data(), size, isLog);
          });
        else
          emulator::launch(rows, 256, [&] {
            kiln_gpu_softmax_f32_v8(in.data(), out.data(), size, isLog);
          });
        for (int64_t r = 0; r < rows; ++r) {
          double m = -INFINITY, s = 0;
          for (int64_t j = 0; j < size; ++j)
            m = std::max(m, double(in[r * size + j]));
          for (int64_t j = 0; j < size; ++j)
            s += std::exp(double(in[r * size + j]) - m);
          for (int64_t j = 0; j < size; ++j) {
            double shifted = double(in[r * size + j]) - m;
            double want = isLog ? shifted - std::log(s) : std::exp(shifted) / s;
            if (std::isinf(want)) // log_softmax of the -inf element
              EXPECT_EQ(out[r * size + j], want);
            else
              EXPECT_NEAR(out[r * size + j], want, 1e-5 + 1e-5 * std::abs(want))
                  << "size " << size << " row " << r << " element " << j
                  << (kernel ? " (registers)" : " (streamed)")
                  << (isLog ? " log_softmax" : " softmax");
          }
        }
      }
  }
}

} // namespace
