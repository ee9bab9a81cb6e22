//===- ArgReduce.cpp - max/min/argmax/argmin with indices on the CPU ------===//
//
// max and min with dim (values and indices), argmax and argmin, flattened or
// along one dim of a contiguous tensor. Each result is the first NaN, else
// the extreme value at its lowest index (-0.0 equal to +0.0; ops.md), the
// same for every thread count: lanes, tiles and segments scan in order and
// fold by that rule. Rows along the innermost dim are scanned 16 lanes at a
// time (short rows: 16 rows transposed into a tile, a row per lane; few long
// rows: split into segments scanned in parallel); strided dims scan blocks
// of adjacent columns, a column per lane.
//
//===----------------------------------------------------------------------===//

#include "kiln/Runtime/Kernels.h"
#include "kiln/Runtime/SelectionPlan.h"

#include "KernelSupport.h"
#include "MemRefViews.h"

#include "mlir/ExecutionEngine/CRunnerUtils.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

using namespace kiln::runtime;
// The helpers of KernelSupport.h and MemRefViews.h.
using namespace kiln::runtime::detail;

namespace {

/// max/min/argmax/argmin scan of 16 independent lanes: lane l sees
/// x[l + j * stride] for j in [0, count). Each lane keeps its
/// first NaN, else its strictly best value with the lowest index; the
/// lanes' `positions` are j * positionStep + l * laneStep (a flat index
/// along the reduced dim). Vectorized across lanes, one clone per ISA.
#if defined(__clang__)
/// The lanes where `value` replaces `best` in an arg-extreme scan in
/// order: the best holds no NaN yet, and the value is a NaN or strictly
/// better (so the first NaN, else the lowest index of the extreme, stays).
template <bool IsMax, typename Vector>
__attribute__((always_inline)) inline auto argTakes(Vector value, Vector best) {
  auto better = IsMax ? value > best : value < best;
  return (best == best) & ((value != value) | better);
}

// Explicit vectors of 8 lanes (LLVM's vectorizer left the lane loop of
// 64-bit elements scalar, through the stack: argmin over dim 0 of 1024x1024
// f64 took 8.1 ms, PyTorch 3.7).
template <bool IsMax, typename T>
__attribute__((always_inline)) inline void
argScanLanes(const T *x, int64_t count, int64_t stride, int64_t positionStep,
             int64_t laneStep, T *best, int64_t *bestIndex) {
  static_assert(sizeof(T) == 8, "8-byte elements: indices share the lanes");
  constexpr int kWidth = 8, kVectors = 16 / kWidth;
  typedef T Vector __attribute__((ext_vector_type(kWidth)));
  typedef int64_t Index __attribute__((ext_vector_type(kWidth)));
  Vector b[kVectors];
  Index bi[kVectors], position[kVectors];
  std::memcpy(b, best, sizeof(b));
  std::memcpy(bi, bestIndex, sizeof(bi));
  for (int v = 0; v < kVectors; ++v)
    for (int l = 0; l < kWidth; ++l)
      position[v][l] = (v * kWidth + l) * laneStep;
  for (int64_t j = 0; j < count; ++j) {
    const T *row = x + j * stride;
    for (int v = 0; v < kVectors; ++v) {
      Vector value;
      std::memcpy(&value, row + v * kWidth, sizeof(value));
      Index take = argTakes<IsMax>(value, b[v]);
      b[v] = take ? value : b[v];
      bi[v] = take ? position[v] : bi[v];
      position[v] += positionStep;
    }
  }
  std::memcpy(best, b, sizeof(b));
  std::memcpy(bestIndex, bi, sizeof(bi));
}
#else
template <bool IsMax, typename T>
inline void argScanLanes(const T *x, int64_t count, int64_t stride,
                         int64_t positionStep, int64_t laneStep, T *best,
                         int64_t *bestIndex) {
  for (int64_t j = 0; j < count; ++j)
    for (int l = 0; l < 16; ++l) {
      T v = x[j * stride + l];
      bool better = IsMax ? v > best[l] : v < best[l];
      if (best[l] == best[l] && (v != v || better)) {
        best[l] = v;
        bestIndex[l] = j * positionStep + l * laneStep;
      }
    }
}
#endif
#define KILN_ARG_SCAN(T)                                                       \
  KILN_VECTORIZE void argScan16(const T *x, int64_t count, int64_t stride,     \
                                int64_t positionStep, int64_t laneStep,        \
                                bool isMax, T *best, int64_t *bestIndex) {     \
    if (isMax)                                                                 \
      argScanLanes<true>(x, count, stride, positionStep, laneStep, best,       \
                         bestIndex);                                           \
    else                                                                       \
      argScanLanes<false>(x, count, stride, positionStep, laneStep, best,      \
                          bestIndex);                                          \
  }
KILN_ARG_SCAN(double)
KILN_ARG_SCAN(int64_t)
#undef KILN_ARG_SCAN

// f32: explicit 16-lane vectors (GCC vector extensions), the best block
// number per lane kept as i32 (positions are formed at the end).
typedef float F32x16v __attribute__((vector_size(64)));
typedef int32_t I32x16v __attribute__((vector_size(64)));

/// One direction of the f32 scan; two interleaved sets of accumulators
/// (even and odd blocks) halve the compare-select dependency chain, then
/// merge with the same rules (first NaN, else best, ties to the lower
/// block).
#define KILN_ARG_SCAN_F32(NAME, BETTER)                                        \
  KILN_VECTORIZE void NAME(const float *x, int64_t count, int64_t stride,      \
                           float *best, int32_t *bestBlock) {                  \
    F32x16v b0, b1, v0, v1;                                                    \
    I32x16v j0 = {}, bj0, bj1;                                                 \
    std::memcpy(&b0, best, sizeof(b0));                                        \
    std::memcpy(&bj0, bestBlock, sizeof(bj0));                                 \
    b1 = b0;                                                                   \
    bj1 = bj0;                                                                 \
    I32x16v j1 = j0 + 1;                                                       \
    int64_t n = 0;                                                             \
    for (; n + 2 <= count; n += 2) {                                           \
      std::memcpy(&v0, x + n * stride, sizeof(v0));                            \
      std::memcpy(&v1, x + (n + 1) * stride, sizeof(v1));                      \
      I32x16v t0 = (b0 == b0) & ((v0 != v0) | (BETTER(v0, b0)));               \
      I32x16v t1 = (b1 == b1) & ((v1 != v1) | (BETTER(v1, b1)));               \
      b0 = t0 ? v0 : b0;                                                       \
      bj0 = t0 ? j0 : bj0;                                                     \
      b1 = t1 ? v1 : b1;                                                       \
      bj1 = t1 ? j1 : bj1;                                                     \
      j0 += 2;                                                                 \
      j1 += 2;                                                                 \
    }                                                                          \
    if (n < count) {                                                           \
      std::memcpy(&v0, x + n * stride, sizeof(v0));                            \
      I32x16v t0 = (b0 == b0) & ((v0 != v0) | (BETTER(v0, b0)));               \
      b0 = t0 ? v0 : b0;                                                       \
      bj0 = t0 ? j0 : bj0;                                                     \
    }                                                                          \
    /* Merge: set 1 wins if it holds a NaN and set 0 does not, or both hold */ \
    /* NaNs / equal values and set 1's block is lower, or it is better. */     \
    I32x16v nan0 = b0 != b0, nan1 = b1 != b1;                                  \
    I32x16v lower = bj1 < bj0;                                                 \
    I32x16v take =                                                             \
        (nan1 & ~nan0) | (nan1 & nan0 & lower) |                               \
        (~nan1 & ~nan0 & ((BETTER(b1, b0)) | ((b1 == b0) & lower)));           \
    b0 = take ? b1 : b0;                                                       \
    bj0 = take ? bj1 : bj0;                                                    \
    std::memcpy(best, &b0, sizeof(b0));                                        \
    std::memcpy(bestBlock, &bj0, sizeof(bj0));                                 \
  }
#define KILN_GREATER(a, b) ((a) > (b))
#define KILN_LESS(a, b) ((a) < (b))
KILN_ARG_SCAN_F32(argMaxScan16F32, KILN_GREATER)
KILN_ARG_SCAN_F32(argMinScan16F32, KILN_LESS)
#undef KILN_GREATER
#undef KILN_LESS
#undef KILN_ARG_SCAN_F32

void argScan16(const float *x, int64_t count, int64_t stride,
               int64_t positionStep, int64_t laneStep, bool isMax, float *best,
               int64_t *bestIndex) {
  // Block numbers fit in i32 for any row of fewer than 2^31 blocks; longer
  // rows go through in pieces.
  int64_t done = 0;
  while (done < count) {
    int64_t piece = std::min<int64_t>(count - done, int64_t(1) << 30);
    float pieceBest[16];
    int32_t block[16] = {};
    std::copy(best, best + 16, pieceBest);
    for (int l = 0; l < 16; ++l)
      pieceBest[l] = best[l];
    (isMax ? argMaxScan16F32 : argMinScan16F32)(x + done * stride, piece,
                                                stride, pieceBest, block);
    for (int l = 0; l < 16; ++l) {
      // A lane's new best replaces the old only if the scan took a value
      // (it never takes an equal one, so compare values and NaN-ness).
      bool changed = !(pieceBest[l] == best[l]) &&
                     !(std::isnan(pieceBest[l]) && std::isnan(best[l]));
      if (changed) {
        best[l] = pieceBest[l];
        bestIndex[l] = (done + block[l]) * positionStep + l * laneStep;
      }
    }
    done += piece;
  }
}

template <typename T> T lowestValue(bool isMax) {
  if constexpr (std::is_floating_point_v<T>)
    return isMax ? -std::numeric_limits<T>::infinity()
                 : std::numeric_limits<T>::infinity();
  else
    return isMax ? std::numeric_limits<T>::min()
                 : std::numeric_limits<T>::max();
}

#if defined(__clang__)

/// Rows ahead that argScanColumns prefetches (as the column reductions).
constexpr int64_t kArgColumnPrefetchRows = 4;

/// argmax/argmin of each of the kiln::runtime::argColumnBlock(sizeof(T))
/// adjacent columns x[c + j * stride], j in [0, count) in order, count < 2^31:
/// each column's first NaN, else its strictly best value with the lowest row,
/// written to outValues/outIndices[c]. A row's 512 bytes are 8 independent
/// vector compare-selects (no dependence chain to split), the rows 4 ahead
/// prefetched: each row's block lies a row apart, in another page, where
/// the hardware's stream prefetch does not follow. Blocks of 16 columns
/// (one cache line per row, unprefetched) took 3-4x longer: argmax over
/// dim 0 at 1 thread, 4096x4096 f32 8.2-8.8 -> 2.0-2.5 ms (the sum of the
/// same bytes 2.6), 1024x1024 f32 284-330 -> 54-57 us, f64 argmin 292-316
/// -> 113-123 us, i64 192 -> 99-110 us (PyTorch 86 ms, 3.5, 3.3, 3.1).
template <bool IsMax, typename T>
__attribute__((always_inline)) inline void
argColumnLanes(const T *x, int64_t count, int64_t stride, T *outValues,
               int64_t *outIndices) {
  constexpr int kWidth = 64 / sizeof(T);
  constexpr int kVectors = kiln::runtime::argColumnBlock(sizeof(T)) / kWidth;
  using Lane = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;
  typedef T Vector __attribute__((ext_vector_type(kWidth)));
  typedef Lane Rows __attribute__((ext_vector_type(kWidth)));
  Vector b[kVectors];
  Rows r[kVectors];
  for (int v = 0; v < kVectors; ++v) {
    b[v] = lowestValue<T>(IsMax);
    r[v] = 0;
  }
  for (int64_t j = 0; j < count; ++j) {
    const T *row = x + j * stride;
    // Past the last row these address memory after the input: prefetches
    // never fault.
    for (int v = 0; v < kVectors; ++v)
      __builtin_prefetch(row + kArgColumnPrefetchRows * stride + v * kWidth, 0,
                         3);
    Rows current = static_cast<Lane>(j);
    for (int v = 0; v < kVectors; ++v) {
      Vector value;
      std::memcpy(&value, row + v * kWidth, sizeof(value));
      auto take = argTakes<IsMax>(value, b[v]);
      b[v] = take ? value : b[v];
      r[v] = take ? current : r[v];
    }
  }
  for (int v = 0; v < kVectors; ++v)
    for (int l = 0; l < kWidth; ++l) {
      outValues[v * kWidth + l] = b[v][l];
      outIndices[v * kWidth + l] = r[v][l];
    }
}
#define KILN_ARG_COLUMNS(T)                                                    \
  KILN_VECTORIZE void argScanColumns(const T *x, int64_t count,                \
                                     int64_t stride, bool isMax, T *outValues, \
                                     int64_t *outIndices) {                    \
    if (isMax)                                                                 \
      argColumnLanes<true>(x, count, stride, outValues, outIndices);           \
    else                                                                       \
      argColumnLanes<false>(x, count, stride, outValues, outIndices);          \
  }
KILN_ARG_COLUMNS(float)
KILN_ARG_COLUMNS(double)
KILN_ARG_COLUMNS(int64_t)
#undef KILN_ARG_COLUMNS
#endif // defined(__clang__)

/// argmax/argmin of 16 lanes, lane l the `count` elements x[l + j * stride]
/// (j in order), from the initial extreme: each lane's answer (its index
/// j) written to outValues/outIndices[l].
template <typename T>
void argScan16Into(const T *x, int64_t count, int64_t stride, bool isMax,
                   T *outValues, int64_t *outIndices) {
  T best[16];
  int64_t bestIndex[16];
  std::fill(best, best + 16, lowestValue<T>(isMax));
  std::fill(bestIndex, bestIndex + 16, 0);
  argScan16(x, count, stride, 1, 0, isMax, best, bestIndex);
  std::copy(best, best + 16, outValues);
  std::copy(bestIndex, bestIndex + 16, outIndices);
}

/// Scalar scan of x[j * stride], j in [0, count), positions j + offset,
/// continuing from (best, index).
template <typename T>
void argScanScalar(const T *x, int64_t count, int64_t stride, int64_t offset,
                   bool isMax, T &best, int64_t &index) {
  // Branch-free (on random data the updates mispredict), in locals (the
  // references may alias x: kept in memory, every step stored and
  // reloaded), with whether a NaN was taken kept apart from the best value,
  // off the compare's dependence chain.
  T value = best;
  int64_t at = index;
  bool nan = isNan(value);
  for (int64_t j = 0; j < count; ++j) {
    T v = x[j * stride];
    bool better = isMax ? v > value : v < value;
    bool take = !nan & (isNan(v) | better);
    value = take ? v : value;
    at = take ? j + offset : at;
    nan |= isNan(v);
  }
  best = value;
  index = at;
}

/// Folds lane results: the first NaN wins, else the best value at the
/// lowest index (the lanes' candidates are each lane's first best).
template <typename T>
void combineLanes(const T *best, const int64_t *index, int lanes, bool isMax,
                  T &outValue, int64_t &outIndex) {
  for (int l = 0; l < lanes; ++l) {
    T v = best[l];
    int64_t i = index[l];
    bool take;
    if (isNan(outValue) || isNan(v))
      take = isNan(v) && (!isNan(outValue) || i < outIndex);
    else if (v == outValue)
      take = i < outIndex;
    else
      take = isMax ? v > outValue : v < outValue;
    if (take) {
      outValue = v;
      outIndex = i;
    }
  }
}

/// max/min with indices along `dim` (or over the flattened tensor).
#if defined(__clang__)
/// Elements per block of the float row scan below (2 or 4 KB: pass 2
/// reads one).
constexpr int64_t kExtremeBlock = 512;

/// Pass 1 of argExtremeRow: the NaN-blind maximum or minimum of a float
/// row over 2 x 64 bytes of lanes (one vmax/vmin per vector, so the row
/// streams at memory speed), block by block: returns the start of the
/// first block holding the row's extreme, or of the first block holding a
/// NaN (where the scan stops; `*hasNan` is then set).
///
/// Nothing is folded across lanes per block: each lane keeps its own
/// extreme and the number of the first block that reached it (a block's
/// two accumulators are merged lane by lane, then a strictly better lane
/// takes the block's number). At the end the row's extreme is the best
/// lane, and its first block the lowest block number among the lanes
/// holding it -- a block holding the extreme holds it in some lane, whose
/// recorded block is the first to reach it. (A fold of 32 lanes per
/// 512-element block was a serial chain of 32 vmaxss, slower than the
/// block's loads: max with indices over dim 1 of 4096x32768 f32 at 1
/// thread 19.2 -> 14.3-15.9 ms, sum 14.2.)
///
/// NaNs are watched as a mask of lanes still ordered, and-ed with one
/// compare of each step's two vectors (`ordered`, a vector of bools): with
/// AVX-512 a single masked vcmpordps per step, where a vector of integer
/// NaN flags took a compare, a mask or and a masked move (same bytes, 1
/// thread, alternating runs: 13.9-15.2 -> 13.6-13.9 ms, sum 12.7-13.0).
/// The mask of the lanes l < count of a 64-byte vector of T (none when
/// count <= 0): the lanes a masked load of a row's last elements takes.
template <typename T>
__attribute__((always_inline)) inline auto lanesBelow(int64_t count) {
  constexpr int kWidth = 64 / sizeof(T);
  using Lane = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;
  typedef Lane Lanes __attribute__((ext_vector_type(kWidth)));
  typedef bool Mask __attribute__((ext_vector_type(kWidth)));
  Lanes lane;
  for (int l = 0; l < kWidth; ++l)
    lane[l] = l;
  Lane bound = static_cast<Lane>(std::max<int64_t>(count, 0));
  return __builtin_convertvector(lane < bound, Mask);
}

template <bool IsMax, typename T>
__attribute__((always_inline)) inline int64_t
rowExtreme(const T *x, int64_t n, T initial, T *extremeOut, bool *hasNan) {
  constexpr int kWidth = 64 / sizeof(T);
  using Lane = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;
  typedef T Vector __attribute__((ext_vector_type(kWidth)));
  typedef Lane Blocks __attribute__((ext_vector_type(kWidth)));
  typedef bool Mask __attribute__((ext_vector_type(kWidth)));
  auto better = [](auto a, auto b) { return IsMax ? a > b : a < b; };
  // Block numbers are lane-sized integers: a longer row is taken in spans
  // of 2^30 blocks, their answers folded in order.
  constexpr int64_t kSpan = (int64_t(1) << 30) * kExtremeBlock;
  T extreme = initial;
  int64_t first = 0;
  *hasNan = false;
  for (int64_t base = 0; base < n; base += kSpan) {
    const T *span = x + base;
    int64_t length = std::min(n - base, kSpan);
    Vector best = initial;
    Blocks bestBlock = 0;
    Lane block = 0;
    for (int64_t start = 0; start < length; start += kExtremeBlock, ++block) {
      int64_t end = std::min(length, start + kExtremeBlock);
      Vector e0 = initial, e1 = initial, a, b;
      Mask ordered = true;
      auto step = [&]() {
        ordered &= __builtin_convertvector((a == a) & (b == b), Mask);
        e0 = better(a, e0) ? a : e0;
        e1 = better(b, e1) ? b : e1;
      };
      int64_t i = start;
      for (; i + 2 * kWidth <= end; i += 2 * kWidth) {
        std::memcpy(&a, span + i, sizeof(a));
        std::memcpy(&b, span + i + kWidth, sizeof(b));
        step();
      }
      if (i < end) {
        // The last block's tail: masked loads, the initial value in the
        // lanes past the row (a copy into a padded buffer, a call of
        // memcpy, made rows of 513 or 1025 f32 40% slower than of 512).
        Vector padding = initial;
        a = __builtin_masked_load(lanesBelow<T>(end - i), span + i, padding);
        b = __builtin_masked_load(lanesBelow<T>(end - i - kWidth),
                                  span + i + kWidth, padding);
        step();
      }
      if (!__builtin_reduce_and(ordered)) {
        *hasNan = true;
        *extremeOut = extreme;
        return base + start;
      }
      Vector blockBest = better(e1, e0) ? e1 : e0;
      auto improved = better(blockBest, best);
      best = improved ? blockBest : best;
      Blocks current = block;
      bestBlock = improved ? current : bestBlock;
    }
    T spanExtreme = initial;
    for (int l = 0; l < kWidth; ++l)
      spanExtreme = better(best[l], spanExtreme) ? best[l] : spanExtreme;
    Lane firstBlock = std::numeric_limits<Lane>::max();
    for (int l = 0; l < kWidth; ++l)
      if (best[l] == spanExtreme && bestBlock[l] < firstBlock)
        firstBlock = bestBlock[l];
    // Strictly better only: the first span reaching the extreme.
    if (better(spanExtreme, extreme)) {
      extreme = spanExtreme;
      first = base + int64_t(firstBlock) * kExtremeBlock;
    }
  }
  *extremeOut = extreme;
  return first;
}

/// The first index in x[0, n) holding `target` (== compares, so -0.0
/// matches +0.0), or the first NaN when `nan`; two vectors per step.
template <typename T>
__attribute__((always_inline)) inline int64_t firstMatch(const T *x, int64_t n,
                                                         T target, bool nan) {
  constexpr int kWidth = 64 / sizeof(T);
  typedef T Vector __attribute__((ext_vector_type(kWidth)));
  int64_t i = 0;
  for (; i + 2 * kWidth <= n; i += 2 * kWidth) {
    uint32_t bits = 0;
    for (int v = 0; v < 2; ++v) {
      Vector block;
      std::memcpy(&block, x + i + v * kWidth, sizeof(block));
      bits |= (nan ? laneBits(block != block) : laneBits(block == target))
              << (v * kWidth);
    }
    if (bits)
      return i + __builtin_ctz(bits);
  }
  for (; i < n; ++i)
    if (nan ? x[i] != x[i] : x[i] == target)
      return i;
  return 0;
}

/// The passes per element type, one clone per instruction set.
#define KILN_EXTREME_ROW(T)                                                    \
  KILN_VECTORIZE int64_t rowMax(const T *x, int64_t n, T initial,              \
                                T *extremeOut, bool *hasNan) {                 \
    return rowExtreme<true>(x, n, initial, extremeOut, hasNan);                \
  }                                                                            \
  KILN_VECTORIZE int64_t rowMin(const T *x, int64_t n, T initial,              \
                                T *extremeOut, bool *hasNan) {                 \
    return rowExtreme<false>(x, n, initial, extremeOut, hasNan);               \
  }                                                                            \
  KILN_VECTORIZE int64_t firstMatchIn(const T *x, int64_t n, T target,         \
                                      bool nan) {                              \
    return firstMatch(x, n, target, nan);                                      \
  }
KILN_EXTREME_ROW(float)
KILN_EXTREME_ROW(double)
#undef KILN_EXTREME_ROW

/// max/min/argmax/argmin of a contiguous float row in two passes: the
/// extreme at memory speed, with the first block holding it, then (that
/// block now in cache) the first index in it holding the extreme. The
/// same answer as the one-pass scan: the first NaN if any, else the lowest
/// index of the extreme value (-0.0 and +0.0 equal).
template <typename T>
void argExtremeRow(const T *row, int64_t n, bool isMax, T &value,
                   int64_t &index) {
  bool hasNan = false;
  T extreme = 0;
  int64_t block =
      isMax ? rowMax(row, n, lowestValue<T>(true), &extreme, &hasNan)
            : rowMin(row, n, lowestValue<T>(false), &extreme, &hasNan);
  index = block + firstMatchIn(row + block, std::min(n - block, kExtremeBlock),
                               extreme, hasNan);
  value = row[index];
}
/// The extreme of a vector's lanes, NaN-blind: a tree of whole-vector
/// compare-selects. (`__builtin_reduce_max` of floats folds lane after
/// lane, NaN-aware: a serial chain of 15 max-and-blend steps for 16 lanes,
/// which made rows of 4 to 16 elements 5 times slower.)
template <bool IsMax, typename Vector>
__attribute__((always_inline)) inline auto laneExtreme(Vector v) {
  constexpr int kWidth = sizeof(Vector) / sizeof(v[0]);
  static_assert(kWidth == 8 || kWidth == 16, "512-bit vectors");
  auto pick = [](Vector a, Vector b) {
    return (IsMax ? a > b : a < b) ? a : b;
  };
  if constexpr (kWidth == 16) {
    v = pick(v, __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 0,
                                        1, 2, 3, 4, 5, 6, 7));
    v = pick(v, __builtin_shufflevector(v, v, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13,
                                        14, 15, 8, 9, 10, 11));
    v = pick(v, __builtin_shufflevector(v, v, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8,
                                        9, 14, 15, 12, 13));
    v = pick(v, __builtin_shufflevector(v, v, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11,
                                        10, 13, 12, 15, 14));
  } else {
    v = pick(v, __builtin_shufflevector(v, v, 4, 5, 6, 7, 0, 1, 2, 3));
    v = pick(v, __builtin_shufflevector(v, v, 2, 3, 0, 1, 6, 7, 4, 5));
    v = pick(v, __builtin_shufflevector(v, v, 1, 0, 3, 2, 5, 4, 7, 6));
  }
  return v[0];
}

/// Rows of at least this many whole vectors end shortRowArg's second pass
/// at the first match: half the row on average, for one mispredicted
/// branch.
constexpr int64_t kEarlyExitVectors = 32;

/// argmax/argmin of a contiguous row of n <= argShortRow(sizeof(T)) elements
/// (n > 0), in the two passes of argExtremeRow without its blocks: the
/// row's NaN-blind extreme in whole vectors (the last one's lanes past the
/// row the initial value), folded across the lanes by a tree, then the
/// first index holding it -- or the first NaN, if any lane saw one -- from
/// cache.
template <bool IsMax, typename T, typename Mask>
__attribute__((always_inline)) inline int64_t
shortRowArg(const T *x, int64_t n, T initial, Mask tail) {
  constexpr int kWidth = 64 / sizeof(T);
  typedef T Vector __attribute__((ext_vector_type(kWidth)));
  constexpr bool kFloat = std::is_floating_point_v<T>;
  auto better = [](auto a, auto b) { return IsMax ? a > b : a < b; };
  Vector e0 = initial, e1 = initial, a, b, padding = initial;
  Mask ordered = true;
  int64_t i = 0;
  for (; i + 2 * kWidth <= n; i += 2 * kWidth) {
    std::memcpy(&a, x + i, sizeof(a));
    std::memcpy(&b, x + i + kWidth, sizeof(b));
    if constexpr (kFloat)
      ordered &= __builtin_convertvector((a == a) & (b == b), Mask);
    e0 = better(a, e0) ? a : e0;
    e1 = better(b, e1) ? b : e1;
  }
  // The last vector's lanes past the row are loaded masked: never read
  // (so never faulting past the input), the initial value in their place.
  int64_t whole = n / kWidth * kWidth;
  if (i < whole) {
    std::memcpy(&a, x + i, sizeof(a));
    if constexpr (kFloat)
      ordered &= __builtin_convertvector(a == a, Mask);
    e0 = better(a, e0) ? a : e0;
  }
  if (whole < n) {
    b = __builtin_masked_load(tail, x + whole, padding);
    if constexpr (kFloat)
      ordered &= __builtin_convertvector(b == b, Mask);
    e1 = better(b, e1) ? b : e1;
  }
  bool nan = false;
  if constexpr (kFloat)
    nan = !__builtin_reduce_and(ordered);
  T extreme = laneExtreme<IsMax>(better(e1, e0) ? e1 : e0);
  // Every vector of the row compared, the first match kept without a
  // branch (where it lies is random: a branch out of the loop mispredicts;
  // rows of 32 to 48 f32 took 3 times longer); rows of kEarlyExitVectors
  // or more stop at it (firstMatch).
  auto match = [&](Vector v) {
    return nan ? laneBits(v != v) : laneBits(v == extreme);
  };
  if (whole >= kEarlyExitVectors * kWidth)
    return firstMatch(x, n, extreme, nan);
  int64_t first = n;
  for (i = 0; i < whole; i += kWidth) {
    std::memcpy(&a, x + i, sizeof(a));
    uint32_t bits = match(a);
    first = std::min(first, bits ? i + __builtin_ctz(bits) : n);
  }
  if (whole < n) {
    // `b` still holds the row's last, partial vector.
    uint32_t bits = match(b) & ((uint32_t(1) << (n - whole)) - 1);
    first = std::min(first, bits ? whole + __builtin_ctz(bits) : n);
  }
  return first;
}

/// argmax/argmin (values and indices) of rows [begin, end) of contiguous
/// rows of n <= argShortRow(sizeof(T)) elements at x, one after another: the
/// rows' chains are independent, so the core overlaps them (a row per lane of a
/// 16-row tile, copied transposed element by element, took 2 to 3 times
/// longer over rows of 4 to 16 f32, and the blocks of argExtremeRow over
/// rows of 32 to 1000 1.1 to 7 times longer).
template <bool IsMax, typename T>
__attribute__((always_inline)) inline void
shortRowsArg(const T *x, int64_t n, int64_t begin, int64_t end, T *outValues,
             int64_t *outIndices) {
  T initial = lowestValue<T>(IsMax);
  // The lanes of each row's last, partial vector (if any).
  auto tail = lanesBelow<T>(n % (64 / sizeof(T)));
  for (int64_t o = begin; o < end; ++o) {
    const T *row = x + o * n;
    int64_t index = shortRowArg<IsMax>(row, n, initial, tail);
    outValues[o] = row[index];
    outIndices[o] = index;
  }
}
#define KILN_SHORT_ROWS(T)                                                     \
  KILN_VECTORIZE void argShortRows(const T *x, int64_t n, int64_t begin,       \
                                   int64_t end, bool isMax, T *outValues,      \
                                   int64_t *outIndices) {                      \
    if (isMax)                                                                 \
      shortRowsArg<true>(x, n, begin, end, outValues, outIndices);             \
    else                                                                       \
      shortRowsArg<false>(x, n, begin, end, outValues, outIndices);            \
  }
KILN_SHORT_ROWS(float)
KILN_SHORT_ROWS(double)
KILN_SHORT_ROWS(int64_t)
#undef KILN_SHORT_ROWS
#endif // defined(__clang__)

/// argmax/argmin of the contiguous row x[0, n), n > 0: the first NaN if
/// any, else the lowest index of the extreme (-0.0 and +0.0 equal).
template <typename T>
void argRow(const T *row, int64_t n, bool isMax, T &value, int64_t &index) {
  T initial = lowestValue<T>(isMax);
#if defined(__clang__)
  // (Many rows of up to 4 KB go through argShortRows.)
  if constexpr (std::is_floating_point_v<T>) {
    argExtremeRow(row, n, isMax, value, index);
    return;
  }
#endif
  // Lane l takes every 16th element from offset l.
  T best[16];
  int64_t bestIndex[16];
  std::fill(best, best + 16, initial);
  std::fill(bestIndex, bestIndex + 16, 0);
  int64_t blocks = n / 16;
  argScan16(row, blocks, 16, 16, 1, isMax, best, bestIndex);
  value = initial;
  index = 0;
  combineLanes(best, bestIndex, 16, isMax, value, index);
  argScanScalar(row + blocks * 16, n - blocks * 16, 1, blocks * 16, isMax,
                value, index);
}

} // namespace

template <typename T>
void kiln::runtime::detail::argReduce(UnrankedMemRefType<T> *in,
                                      UnrankedMemRefType<T> *values,
                                      UnrankedMemRefType<int64_t> *indices,
                                      int64_t dim, bool isMax, bool flatten) {
  View<T> input = view(in);
  T *outValues = view(values).data;
  int64_t *outIndices = view(indices).data;
  Split s = kiln::runtime::detail::splitForReduction(input.shape, dim, flatten);
  T initial = lowestValue<T>(isMax);
  if (s.inner == 1 && s.size > 0) {
    // Fewer rows than threads (a flattened argmax, 1x16M): each row is
    // split into segments scanned in parallel, then the segments' answers
    // are combined in order -- a later segment wins only with a NaN where
    // the earlier has none, or a strictly better value -- which is the
    // whole row's answer whatever the split.
    int64_t segments = argSegments(s.outer, s.size, getNumThreads());
    // Rows of up to 4 KB (argmax over 10 or 1000 classes) are taken whole,
    // one after another (argShortRows).
#if defined(__clang__)
    if (segments == 1 && s.size <= kiln::runtime::argShortRow(sizeof(T))) {
      parallelFor(s.outer, itemsPerChunk(s.size, int64_t(1) << 16),
                  [&](int64_t begin, int64_t end) {
                    argShortRows(input.data, s.size, begin, end, isMax,
                                 outValues, outIndices);
                  });
      return;
    }
#endif
    if (segments == 1) {
      parallelFor(s.outer, itemsPerChunk(s.size, int64_t(1) << 16),
                  [&](int64_t begin, int64_t end) {
                    for (int64_t o = begin; o < end; ++o)
                      argRow(input.data + o * s.size, s.size, isMax,
                             outValues[o], outIndices[o]);
                  });
      return;
    }
    // Every segment holds elements: segments <= size / kArgMinSegment.
    int64_t length = (s.size + segments - 1) / segments;
    ScratchVector<T> partValue(s.outer * segments);
    ScratchVector<int64_t> partIndex(s.outer * segments);
    parallelFor(s.outer * segments, 1, [&](int64_t begin, int64_t end) {
      for (int64_t w = begin; w < end; ++w) {
        int64_t o = w / segments, first = (w % segments) * length;
        int64_t last = std::min(s.size, first + length);
        argRow(input.data + o * s.size + first, last - first, isMax,
               partValue[w], partIndex[w]);
        partIndex[w] += first;
      }
    });
    for (int64_t o = 0; o < s.outer; ++o) {
      // The segments' answers fold like lanes: the first NaN, else the
      // best value at the lowest index.
      T value = partValue[o * segments];
      int64_t index = partIndex[o * segments];
      combineLanes(partValue.data() + o * segments + 1,
                   partIndex.data() + o * segments + 1,
                   static_cast<int>(segments - 1), isMax, value, index);
      outValues[o] = value;
      outIndices[o] = index;
    }
    return;
  }
  // Strided: lanes are adjacent inner columns, each its own result --
  // blocks of 512 bytes of columns (argScanColumns), then of 16 columns
  // for the rest. Chunks of at least 2^16 elements, as above: a small
  // input is one.
#if defined(__clang__)
  constexpr int64_t kWide = kiln::runtime::argColumnBlock(sizeof(T));
  int64_t wideBlocks = s.size < (int64_t(1) << 31) ? s.inner / kWide : 0;
#else
  constexpr int64_t kWide = 16;
  int64_t wideBlocks = 0;
#endif
  int64_t wideColumns = wideBlocks * kWide;
  int64_t columnBlocks = wideBlocks + (s.inner - wideColumns + 15) / 16;
  parallelFor(
      s.outer * columnBlocks,
      itemsPerChunk((wideBlocks ? kWide : 16) * s.size, int64_t(1) << 16),
      [&](int64_t begin, int64_t end) {
        for (int64_t w = begin; w < end; ++w) {
          int64_t o = w / columnBlocks, block = w % columnBlocks;
          int64_t c = block < wideBlocks
                          ? block * kWide
                          : wideColumns + (block - wideBlocks) * 16;
          const T *base = input.data + o * s.size * s.inner + c;
          int64_t out = o * s.inner + c;
#if defined(__clang__)
          if (block < wideBlocks) {
            argScanColumns(base, s.size, s.inner, isMax, outValues + out,
                           outIndices + out);
            continue;
          }
#endif
          if (c + 16 <= s.inner) {
            argScan16Into(base, s.size, s.inner, isMax, outValues + out,
                          outIndices + out);
          } else {
            for (int64_t l = 0; c + l < s.inner; ++l) {
              T value = initial;
              int64_t index = 0;
              argScanScalar(base + l, s.size, s.inner, 0, isMax, value, index);
              outValues[out + l] = value;
              outIndices[out + l] = index;
            }
          }
        }
      });
}

#define KILN_INSTANTIATE(T)                                                    \
  template void kiln::runtime::detail::argReduce<T>(                           \
      UnrankedMemRefType<T> *, UnrankedMemRefType<T> *,                        \
      UnrankedMemRefType<int64_t> *, int64_t, bool, bool);
KILN_INSTANTIATE(float)
KILN_INSTANTIATE(double)
KILN_INSTANTIATE(int64_t)
#undef KILN_INSTANTIATE

extern "C" {
#define KILN_ARG_ENTRY_POINT(T, SUFFIX)                                        \
  void _mlir_ciface_kiln_rt_argreduce_##SUFFIX(                                \
      UnrankedMemRefType<T> *in, UnrankedMemRefType<T> *values,                \
      UnrankedMemRefType<int64_t> *indices, int64_t /*k*/, int64_t dim,        \
      bool isMax, bool flatten) {                                              \
    runKernel("the scratch of kiln.max, kiln.min, kiln.argmax or kiln.argmin", \
              [&] { argReduce(in, values, indices, dim, isMax, flatten); });   \
  }
KILN_ARG_ENTRY_POINT(float, f32)
KILN_ARG_ENTRY_POINT(double, f64)
KILN_ARG_ENTRY_POINT(int64_t, i64)
#undef KILN_ARG_ENTRY_POINT
}
