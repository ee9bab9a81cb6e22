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
#include "../../lib/Runtime/Device/SortPlan.h"
#include "../../lib/Runtime/Device/TopkPlan.h"

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

/// The selection kernels of one element type.
template <typename T> struct Kernels;
#define KILN_SELECTION_KERNELS(T, SUFFIX)                                      \
  template <> struct Kernels<T> {                                              \
    static constexpr auto topkRows = kiln_gpu_topk_##SUFFIX;                   \
    static constexpr auto topkChunks = kiln_gpu_topk_chunks_##SUFFIX;          \
    static constexpr auto topkMerge = kiln_gpu_topk_merge_##SUFFIX;            \
    static constexpr auto kthRows = kiln_gpu_kthvalue_##SUFFIX;                \
    static constexpr auto kthCount = kiln_gpu_kth_count_##SUFFIX;              \
    static constexpr auto kthLowest = kiln_gpu_kth_lowest_##SUFFIX;            \
    static constexpr auto kthFinish = kiln_gpu_kth_finish_##SUFFIX;            \
  };
KILN_SELECTION_KERNELS(float, f32)
KILN_SELECTION_KERNELS(double, f64)
KILN_SELECTION_KERNELS(i64, i64)
#undef KILN_SELECTION_KERNELS

/// Runs topk on an [outer, size, inner] tensor with the runtime's launches
/// (lib/Runtime/Cuda.cpp: one block per row, or split rows when there are
/// few) and compares every row with the reference. Returns the number of
/// ranges each row was split into.
template <typename T>
int64_t checkTopk(int64_t outer, int64_t size, int64_t inner, int64_t k,
                  bool largest, int distinct, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::vector<T> in = randomData<T>(outer * size * inner, rng, distinct);
  int64_t rows = outer * inner;
  std::vector<T> values(rows * k);
  std::vector<i64> indices(rows * k, -1);
  int64_t padded = 1;
  while (padded < k)
    padded <<= 1;
  int64_t chunks = kiln::runtime::device_kernels::topkChunks(rows, size, k);
  int64_t blocks = rows * chunks;
  std::vector<u64> scratchKeys;
  std::vector<i64> scratchIndices;
  if (padded > 2048) { // kSharedCandidates
    scratchKeys.resize(blocks * padded);
    scratchIndices.resize(blocks * padded);
  }
  if (chunks == 1) {
    emulator::launch(rows, 512, [&] {
      Kernels<T>::topkRows(in.data(), values.data(), indices.data(), size,
                           inner, k, largest, scratchKeys.data(),
                           scratchIndices.data());
    });
  } else {
    std::vector<T> candidateValues(blocks * k);
    std::vector<i64> candidateRows(blocks * k, -1);
    emulator::launch(blocks, 512, [&] {
      Kernels<T>::topkChunks(in.data(), candidateValues.data(),
                             candidateRows.data(), size, inner, k, largest,
                             chunks, scratchKeys.data(), scratchIndices.data());
    });
    emulator::launch(rows, 512, [&] {
      Kernels<T>::topkMerge(candidateValues.data(), candidateRows.data(),
                            values.data(), indices.data(), chunks * k, inner, k,
                            largest, scratchKeys.data(), scratchIndices.data());
    });
  }
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      std::vector<T> row(size);
      for (int64_t j = 0; j < size; ++j)
        row[j] = in[(o * size + j) * inner + i];
      std::vector<int64_t> want = referenceTopk(row, k, largest);
      for (int64_t j = 0; j < k; ++j) {
        int64_t at = (o * k + j) * inner + i;
        if (indices[at] != want[j] || !sameBits(values[at], row[want[j]])) {
          ADD_FAILURE() << "row (" << o << ", " << i << ") position " << j
                        << " of " << size << " x k=" << k
                        << (largest ? " largest" : " smallest") << ": index "
                        << indices[at] << ", expected " << want[j];
          return chunks;
        }
      }
    }
  return chunks;
}

TEST(EmulatedTopk, SmallKFastPath) {
  checkTopk<float>(3, 1000, 1, 16, true, 1000, 1);
  checkTopk<float>(2, 777, 1, 5, false, 50, 2);
  checkTopk<double>(2, 600, 1, 32, true, 300, 3);
  checkTopk<i64>(2, 900, 1, 20, false, 100, 4);
}

TEST(EmulatedTopk, StridedRows) {
  checkTopk<float>(2, 300, 3, 7, true, 200, 5);
  checkTopk<i64>(1, 257, 4, 9, true, 30, 6);
}

TEST(EmulatedTopk, ManyTiesTakeTheExactSelection) {
  // Few distinct values: more than kSharedCandidates elements reach the
  // k-th's bucket, so the fast path gives way to the radix selection.
  checkTopk<float>(2, 5000, 1, 100, true, 4, 7);
  checkTopk<double>(1, 4000, 1, 64, false, 3, 8);
}

TEST(EmulatedTopk, LargeKUsesGlobalScratch) {
  checkTopk<float>(1, 6000, 1, 3000, true, 2000, 9);
  checkTopk<i64>(2, 3000, 1, 2100, false, 500, 10);
}

TEST(EmulatedTopk, FewLongRowsSplitIntoRanges) {
  // One row: ranges of a 100000-element row, then their 24 * 100 best.
  EXPECT_EQ(checkTopk<float>(1, 100000, 1, 100, true, 100000, 13), 24);
  // Ties across range boundaries keep the lowest-index-first rule.
  EXPECT_EQ(checkTopk<float>(1, 20000, 1, 50, false, 4, 14), 4);
  EXPECT_EQ(checkTopk<i64>(3, 12000, 1, 30, true, 7, 15), 2);
  // Strided rows, and k large enough for the global scratch.
  EXPECT_EQ(checkTopk<double>(1, 9000, 2, 16, true, 5000, 16), 2);
  EXPECT_EQ(checkTopk<float>(1, 40000, 1, 2500, false, 30000, 17), 4);
}

TEST(EmulatedTopk, WholeRowAndOne) {
  checkTopk<float>(2, 40, 1, 40, true, 10, 11);
  checkTopk<float>(3, 1, 1, 1, false, 10, 12);
}

/// Runs kthvalue on an [outer, size, inner] tensor with the runtime's
/// launches (one block per row, or the split radix passes when rows are
/// few) and compares every row with the reference. Returns the number of
/// ranges each row was split into.
template <typename T>
int64_t checkKthvalue(int64_t outer, int64_t size, int64_t inner, int64_t k,
                      int distinct, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::vector<T> in = randomData<T>(outer * size * inner, rng, distinct);
  int64_t rows = outer * inner;
  std::vector<T> values(rows);
  std::vector<i64> indices(rows, -1);
  int64_t chunks = kiln::runtime::device_kernels::kthvalueChunks(rows, size);
  if (chunks == 1) {
    emulator::launch(rows, 512, [&] {
      Kernels<T>::kthRows(in.data(), values.data(), indices.data(), size, inner,
                          k);
    });
  } else {
    std::vector<KthState> state(rows);
    int64_t blocks = rows * chunks, perRow = (rows + 127) / 128;
    emulator::launch(rows, 256, [&] { kiln_gpu_kth_init(state.data(), k); });
    for (int shift = int(sizeof(T) * 8) - 8; shift >= 0; shift -= 8) {
      emulator::launch(blocks, 512, [&] {
        Kernels<T>::kthCount(in.data(), state.data(), size, inner, chunks,
                             shift);
      });
      emulator::launch(perRow, 128,
                       [&] { kiln_gpu_kth_pick(state.data(), rows, shift); });
    }
    emulator::launch(blocks, 512, [&] {
      Kernels<T>::kthLowest(in.data(), state.data(), size, inner, chunks);
    });
    emulator::launch(perRow, 128, [&] {
      Kernels<T>::kthFinish(in.data(), state.data(), values.data(),
                            indices.data(), rows, size, inner);
    });
  }
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      std::vector<T> row(size);
      for (int64_t j = 0; j < size; ++j)
        row[j] = in[(o * size + j) * inner + i];
      // The k-th smallest value, reported at the lowest index holding it.
      int64_t kth = referenceTopk(row, k, /*largest=*/false)[k - 1];
      int64_t lowest = kth;
      for (int64_t j = 0; j < size; ++j)
        if (!before(row[j], row[kth], false) &&
            !before(row[kth], row[j], false))
          lowest = std::min(lowest, j);
      int64_t r = o * inner + i;
      EXPECT_EQ(indices[r], lowest)
          << "row (" << o << ", " << i << ") of " << size << " k=" << k;
      EXPECT_TRUE(sameBits(values[r], row[lowest]));
    }
  return chunks;
}

TEST(EmulatedKthvalue, AgainstSortedOrder) {
  checkKthvalue<float>(3, 1000, 1, 1, 100, 21);
  checkKthvalue<float>(2, 1000, 1, 500, 7, 22);
  checkKthvalue<double>(2, 333, 1, 333, 1000, 23);
  checkKthvalue<i64>(2, 700, 1, 42, 20, 24);
}

TEST(EmulatedKthvalue, FewLongRowsSplitIntoRanges) {
  // One long row: 24 ranges, four radix passes over all of them.
  EXPECT_EQ(checkKthvalue<float>(1, 100000, 1, 50000, 100000, 25), 24);
  // Heavy ties (the lowest index holding the key spans ranges), NaNs and
  // signed zeros; the first and the last rank.
  EXPECT_EQ(checkKthvalue<float>(1, 20000, 1, 7000, 4, 26), 4);
  EXPECT_EQ(checkKthvalue<float>(2, 12000, 1, 1, 50, 27), 2);
  EXPECT_EQ(checkKthvalue<float>(1, 12000, 1, 12000, 50, 28), 2);
  // 64-bit keys (eight passes), strided rows.
  EXPECT_EQ(checkKthvalue<double>(1, 9000, 2, 4321, 5000, 29), 2);
  EXPECT_EQ(checkKthvalue<i64>(3, 12000, 1, 6000, 7, 30), 2);
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

/// kiln_rt_sort_positions as the runtime launches it (Cuda.cpp:
/// sortPositions): the positions of `index` stably sorted by target, and
/// where each target's run starts; checked against a counting sort.
void checkSortPositions(const std::vector<i64> &index, int64_t size,
                        bool wrap) {
  namespace plan = kiln::runtime::device_kernels;
  int64_t count = index.size(), tiles = plan::sortTiles(count);
  std::vector<u32> keys[2], positions[2];
  for (int b = 0; b < 2; ++b) {
    keys[b].assign(count, 0xdeadbeef);
    positions[b].assign(count, 0xdeadbeef);
  }
  std::vector<u32> counts(plan::kSortDigits * tiles + 1);
  emulator::launch((count + 255) / 256, 256, [&] {
    kiln_gpu_sort_keys(index.data(), keys[0].data(), positions[0].data(), count,
                       size, wrap);
  });
  int from = 0;
  for (int pass = 0; pass < plan::sortPasses(size); ++pass, from ^= 1) {
    int shift = pass * plan::kSortDigitBits;
    emulator::launch(tiles, plan::kSortThreads, [&] {
      kiln_gpu_sort_count(keys[from].data(), counts.data(), count, tiles,
                          shift);
    });
    emulator::launch(1, plan::kSortScanThreads, [&] {
      kiln_gpu_sort_offsets(counts.data(), plan::kSortDigits * tiles);
    });
    emulator::launch(tiles, plan::kSortThreads, [&] {
      kiln_gpu_sort_move(keys[from].data(), positions[from].data(),
                         keys[from ^ 1].data(), positions[from ^ 1].data(),
                         counts.data(), count, tiles, shift);
    });
  }
  std::vector<i64> order(count, -1), starts(size + 1, -1);
  emulator::launch((std::max(count, size + 1) + 255) / 256, 256, [&] {
    kiln_gpu_sort_finish(keys[from].data(), positions[from].data(),
                         order.data(), starts.data(), count, size);
  });
  // The reference: a stable counting sort of the wrapped, clamped keys.
  std::vector<std::vector<i64>> runs(size);
  for (int64_t p = 0; p < count; ++p) {
    i64 v = index[p] < 0 && wrap ? index[p] + size : index[p];
    runs[v >= 0 && v < size ? v : 0].push_back(p);
  }
  int64_t at = 0;
  for (int64_t t = 0; t < size; ++t) {
    ASSERT_EQ(starts[t], at) << "start of target " << t;
    for (i64 p : runs[t])
      ASSERT_EQ(order[at++], p)
          << "target " << t << " (count " << count << ", size " << size << ")";
  }
  EXPECT_EQ(starts[size], count);
}

TEST(EmulatedSort, PositionsByTargetStable) {
  std::mt19937_64 rng(51);
  // (count, size): one pass, two and three passes; partial last tiles;
  // more targets than positions; a single target (no pass).
  for (auto [count, size] :
       std::vector<std::pair<int64_t, int64_t>>{{1, 1},
                                                {5000, 1},
                                                {9000, 7},
                                                {10000, 256},
                                                {12345, 257},
                                                {3000, 70000},
                                                {20000, 1 << 17},
                                                {9000, (1 << 16) + 1}}) {
    std::uniform_int_distribution<i64> pick(0, size - 1);
    std::vector<i64> index(count);
    for (i64 &v : index)
      v = pick(rng);
    checkSortPositions(index, size, /*wrap=*/false);
  }
  // Every position on one target (the whole sort is one digit's run).
  checkSortPositions(std::vector<i64>(9000, 300), 1000, false);
  // put: negative indices count from the end.
  std::vector<i64> index(7000);
  std::uniform_int_distribution<i64> pick(-600, 599);
  for (i64 &v : index)
    v = pick(rng);
  checkSortPositions(index, 600, /*wrap=*/true);
}

} // namespace
