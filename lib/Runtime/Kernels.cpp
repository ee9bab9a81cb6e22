//===- Kernels.cpp - Kiln runtime kernels ---------------------------------===//
//
// topk and kthvalue over one dim of a contiguous tensor, parallel over rows.
//
// Ordering (ops.md): NaN compares greater than every number; among equal
// values the lowest index wins, and a sorted topk lists equal values by
// ascending index. Both kernels compare (value, index) keys under that
// total order, so results are the same for every thread count.
//
// topk and kthvalue choose their algorithm by k, the row length n, the
// number of rows and the thread count (SelectionPlan.h): a collector makes
// one pass per row behind a vectorized threshold test -- for k <= 32 (f32;
// k > 16 in rows of 32 k or more) the best k kept sorted, otherwise a
// buffer of 2k+16 candidates compacted by a branch-free quickselect
// (selectGreatest) -- and rows much longer than the work per thread, when
// there are fewer rows than threads, are split into segments whose
// collectors merge. Small k (up to 32) in rows short enough to stay in
// cache takes bound selection instead: the best of 32 or 64 lanes bounds
// the k-th best, and a second pass collects the few elements that reach it.
// Short rows with many winners (k > 16, n <= 16 k, n <= 1024; f32, f64,
// i64, where bound selection does not take them: f32 rows shorter than 8 k
// or k > 32) take direct selection: every element packed and selected. f32 rows
// with k > 64 and k >= n / 64 take radix selection instead (a histogram of
// 32-bit keys finds the bucket holding the k-th, then the k winners are sorted)
// when the rows keep every thread busy.
//
//===----------------------------------------------------------------------===//

#include "kiln/Runtime/Kernels.h"
#include "kiln/Runtime/SelectionPlan.h"

#include "HugePages.h"
#include "MemRefViews.h"

#include "mlir/ExecutionEngine/CRunnerUtils.h"
#include "llvm/Support/MathExtras.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <tuple>
#include <type_traits>
#include <unordered_set>
#include <utility>

#include <omp.h>

using namespace kiln::runtime;

// The prefilter is compiled for several instruction sets and picked at load
// time (the runtime itself targets baseline x86-64).
#if defined(__clang__) && defined(__x86_64__)
#define KILN_VECTORIZE                                                         \
  __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define KILN_VECTORIZE
#endif

namespace {

std::atomic<bool> hasError{false};
/// kiln_rt_profile_enter/exit: when each site's kernel started, its totals.
std::vector<std::chrono::steady_clock::time_point> profileStarts;
std::vector<kiln::runtime::ProfileCount> profile;
std::mutex errorMutex;
IndexError recordedError{0, 0, 0};
std::atomic<int> numThreads{
    static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))};

using kiln::runtime::detail::split;
using kiln::runtime::detail::Split;
using kiln::runtime::detail::view;
using kiln::runtime::detail::View;

#if defined(__clang__)
/// One round of a W x W register transpose (W lanes of 4 or 8 bytes): in
/// each 2B x 2B block of the tile, the two off-diagonal B x B blocks swap.
/// Rows i and i + B (i & B == 0) become `low` and `high`; each is one
/// two-input shuffle (a vpermt2ps/pd on AVX-512).
template <int B, typename Vector, size_t... C>
__attribute__((always_inline)) inline void
swapBlocks(Vector &low, Vector &high, std::index_sequence<C...>) {
  constexpr int W = sizeof...(C);
  Vector a = low, b = high;
  low = __builtin_shufflevector(a, b, ((C & B) ? W + (C ^ B) : C)...);
  high = __builtin_shufflevector(a, b, ((C & B) ? W + C : (C ^ B))...);
}

/// Copies rows [0, rows) x columns [0, lines x W) of `src` (row stride
/// `srcStride`, W = 64 / sizeof(T): `lines` cache lines of each row)
/// transposed into `dst`: element (j, c) to dst[c * dstStride + j]. W rows
/// at a time, each line of them is loaded as W vectors, transposed in
/// registers (log2 W rounds of swapBlocks) and stored as W contiguous
/// runs; the next W rows are prefetched (each row's lines lie a row apart,
/// in another page, where the hardware's stream prefetch does not follow).
/// Rows after the last W go element by element.
template <typename T>
__attribute__((always_inline)) inline void
transposeLines(const T *src, int64_t srcStride, int64_t rows, int64_t lines,
               T *dst, int64_t dstStride) {
  constexpr int W = 64 / sizeof(T);
  typedef T Vector __attribute__((ext_vector_type(W)));
  auto lanes = std::make_index_sequence<W>();
  int64_t j = 0;
  for (; j + W <= rows; j += W) {
    for (int r = 0; r < W; ++r)
      for (int64_t c = 0; c < lines; ++c)
        __builtin_prefetch(src + (j + W + r) * srcStride + c * W, 0, 3);
    for (int64_t c = 0; c < lines; ++c) {
      Vector t[W];
      for (int r = 0; r < W; ++r)
        std::memcpy(&t[r], src + (j + r) * srcStride + c * W, sizeof(Vector));
      auto round = [&](auto blockSize) {
        constexpr int B = decltype(blockSize)::value;
        for (int i = 0; i < W; ++i)
          if (!(i & B))
            swapBlocks<B>(t[i], t[i + B], lanes);
      };
      round(std::integral_constant<int, 1>());
      round(std::integral_constant<int, 2>());
      round(std::integral_constant<int, 4>());
      if constexpr (W == 16)
        round(std::integral_constant<int, 8>());
      for (int g = 0; g < W; ++g)
        std::memcpy(dst + (c * W + g) * dstStride + j, &t[g], sizeof(Vector));
    }
  }
  for (; j < rows; ++j)
    for (int64_t g = 0; g < lines * W; ++g)
      dst[g * dstStride + j] = src[j * srcStride + g];
}
#define KILN_TRANSPOSE_LINES(T)                                                \
  KILN_VECTORIZE void transposeLinesOf(const T *src, int64_t srcStride,        \
                                       int64_t rows, int64_t lines, T *dst,    \
                                       int64_t dstStride) {                    \
    transposeLines(src, srcStride, rows, lines, dst, dstStride);               \
  }
KILN_TRANSPOSE_LINES(float)
KILN_TRANSPOSE_LINES(double)
KILN_TRANSPOSE_LINES(int64_t)
#undef KILN_TRANSPOSE_LINES
#endif // defined(__clang__)

/// The rows of `data` split as `s`, contiguous: in place when the dim is
/// innermost; else copied, a block of adjacent rows at a time -- up to 8
/// cache lines of each element's neighbours (512 bytes), as many as keep
/// the block within 2 MB -- so every line of the input is read once rather
/// than once per row (topk k=8 over dim 0 of 4096x4096 f32: 129 -> 27 ms
/// at 1 thread), and its whole lines transposed in registers
/// (transposeLines). One line of 16 rows copied element by element took
/// 15 ms of that topk's 15.2 -> 6.0 ms (1024x1024: 487 -> 326 us; 2
/// threads 7.5 -> 3.1 ms). Rows are asked for in order; a block may hold
/// rows another thread also copies.
template <typename T> class ContiguousRows {
public:
  const T *row(const T *data, const Split &s, int64_t o, int64_t i) {
    const T *row = data + o * s.size * s.inner + i;
    if (s.inner == 1)
      return row;
    if (o != blockOuter || i < blockFirst || i >= blockFirst + blockCount) {
      // Up to kMaxLines cache lines of each element's neighbours, as many
      // as keep the block within kBlockBytes.
      int64_t lines = std::clamp<int64_t>(
          kBlockBytes / std::max<int64_t>(1, s.size * kLine * sizeof(T)), 1,
          kMaxLines);
      blockOuter = o;
      blockFirst = i;
      blockCount = std::min<int64_t>(lines * kLine, s.inner - i);
      // Rows a cache line apart more than their length: rows of a
      // power-of-two length would all map to the same cache sets.
      stride = s.size + kLine;
      buffer.resize(blockCount * stride);
      // Whole lines transposed in registers, the columns after them (the
      // end of the inner dim) element by element.
      int64_t whole = 0;
#if defined(__clang__)
      whole = blockCount / kLine * kLine;
      if (whole)
        transposeLinesOf(row, s.inner, s.size, whole / kLine, buffer.data(),
                         stride);
#endif
      for (int64_t j = 0; j < s.size; ++j)
        for (int64_t g = whole; g < blockCount; ++g)
          buffer[g * stride + j] = row[j * s.inner + g];
    }
    return buffer.data() + (i - blockFirst) * stride;
  }

private:
  static constexpr int64_t kLine = 64 / sizeof(T);
  static constexpr int64_t kMaxLines = 8;
  static constexpr int64_t kBlockBytes = 2 << 20;
  std::vector<T> buffer;
  int64_t blockOuter = -1, blockFirst = 0, blockCount = 0, stride = 0;
};

/// A (key, ~index) pair of 64-bit halves: the packed word of f64 and i64
/// selection, ordered like a 128-bit integer (branch-free compares).
struct WideWord {
  uint64_t key, index;
  friend bool operator>(WideWord a, WideWord b) {
    return (a.key > b.key) | ((a.key == b.key) & (a.index > b.index));
  }
  friend bool operator<(WideWord a, WideWord b) { return b > a; }
};

/// f32's packed selection word: the 32-bit key in the high half,
/// 0xFFFFFFFF - index in the low one (lower indices are better).
inline uint64_t packWord(uint32_t key, int64_t index) {
  return (uint64_t(key) << 32) | (0xFFFFFFFFu - uint32_t(index));
}

/// f64's and i64's: the 64-bit key and ~index.
inline WideWord packWord(uint64_t key, int64_t index) {
  return {key, ~uint64_t(index)};
}

/// The position and the key of a packed selection word (f32's uint64 or a
/// WideWord).
inline int64_t wordIndex(uint64_t word) {
  return int64_t(0xFFFFFFFFu - uint32_t(word));
}
inline int64_t wordIndex(WideWord word) { return int64_t(~word.index); }
inline uint64_t wordKey(uint64_t word) { return word >> 32; }
inline uint64_t wordKey(WideWord word) { return word.key; }

/// The position of the least of the selected words `words[0, k)`, the k-th
/// best, reported at the lowest position holding its key: the greatest
/// word with that key, as lower positions of an equal key are selected
/// first.
template <typename Word>
int64_t lowestIndexOfLeast(const Word *words, int64_t k) {
  Word least = *std::min_element(words, words + k), lowest = least;
  for (int64_t j = 0; j < k; ++j)
    if (wordKey(words[j]) == wordKey(least))
      lowest = std::max(lowest, words[j]);
  return wordIndex(lowest);
}

/// Writes the rows' elements at the positions of `words[0, k)` and the
/// positions to `outValues`/`outIndices`, every `stride`.
template <typename T, typename Word>
void emitWords(const T *row, const Word *words, int64_t k, T *outValues,
               int64_t *outIndices, int64_t stride) {
  for (int64_t j = 0; j < k; ++j) {
    int64_t index = wordIndex(words[j]);
    outValues[j * stride] = row[index];
    outIndices[j * stride] = index;
  }
}

/// Calls `use(word, rank)` for each of the distinct words `words[0, n)`, in
/// order of position, rank being how many words are greater. Branch-free,
/// n^2 compares, eight words ranked at once (one vector compare per word
/// against them, for 64-bit words).
template <typename Word, typename Use>
__attribute__((always_inline)) inline void forEachRank(const Word *words,
                                                       size_t n, Use use) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t rank[8] = {};
    for (size_t j = 0; j < n; ++j)
      for (size_t l = 0; l < 8; ++l)
        rank[l] += words[j] > words[i + l];
    for (size_t l = 0; l < 8; ++l)
      use(words[i + l], rank[l]);
  }
  for (; i < n; ++i) {
    uint64_t rank = 0;
    for (size_t j = 0; j < n; ++j)
      rank += words[j] > words[i];
    use(words[i], rank);
  }
}

/// Stores each of the distinct words `from[0, m)` ranked below `need`
/// (fewer than `need` words greater) to `out`, in order of position;
/// returns how many (need). For the last few words of a selection. `out`
/// has room for m words and must not overlap `from`.
template <typename Word>
__attribute__((always_inline)) inline size_t
keepRankedOf(const Word *from, size_t m, size_t need, Word *out) {
  size_t count = 0;
  forEachRank(from, m, [&](Word x, uint64_t rank) {
    out[count] = x;
    count += rank < need;
  });
  return count;
}
KILN_VECTORIZE size_t keepRanked(const uint64_t *from, size_t m, size_t need,
                                 uint64_t *out) {
  return keepRankedOf(from, m, need, out);
}

/// The distinct words `keys[0, n)` in descending order, to `out` (not
/// overlapping), each at its rank (forEachRank); below kRankSortMax words
/// it beats std::sort, whose compares mispredict on every other word (topk
/// k=64 of rows of 512: the sort was a quarter of the time).
constexpr size_t kRankSortMax = 64;
KILN_VECTORIZE void rankSortDescending(const uint64_t *keys, size_t n,
                                       uint64_t *out) {
  forEachRank(keys, n, [&](uint64_t x, uint64_t rank) { out[rank] = x; });
}

/// Sorts the distinct words `keys[0, n)` in descending order: 64-bit words
/// by rank below kRankSortMax words (`scratch` holds the sorted copy), else
/// std::sort (the rank's compares of WideWords do not vectorize: 48% of
/// an f64 topk k=64 over rows of 512, twice std::sort's time).
template <typename Word>
void sortDistinctDescending(Word *keys, size_t n, std::vector<Word> &scratch) {
  if constexpr (std::is_same_v<Word, uint64_t>) {
    if (n <= kRankSortMax) {
      if (scratch.size() < n)
        scratch.resize(n);
      rankSortDescending(keys, n, scratch.data());
      std::copy(scratch.data(), scratch.data() + n, keys);
      return;
    }
  }
  std::sort(keys, keys + n, std::greater<Word>());
}

/// Moves the `k` greatest of the distinct words `keys[0, n)` to
/// `keys[0, k)`, in no particular order (0 < k <= n). A quickselect whose
/// partitions are branch-free: every word is written to both ends of the
/// other buffer and the end it belongs to advances, so the work per word
/// is a load, two stores and a compare, whatever the data. std::nth_element
/// (branches on every compare) took 55% of topk k=64 over rows of 512; its
/// mispredictions cost more than the whole partition. The pivot is the
/// median of three; a round that keeps more than 7/8 of its words counts
/// as bad, and after a few std::nth_element finishes (adversarial orders).
/// `scratch` is reused between calls.
template <typename Word>
void selectGreatest(Word *keys, size_t n, size_t k,
                    std::vector<Word> &scratch) {
  if (k >= n)
    return;
  if (scratch.size() < 2 * n)
    scratch.resize(2 * n);
  Word *from = keys, *to = scratch.data(), *spare = scratch.data() + n;
  // The winners found so far are keys[0, done); the rest of the k lie
  // among from[0, m).
  size_t done = 0, m = n, need = k;
  int badRounds = 0;
  while (need > 0 && need < m) {
    if (m <= 24 && from != keys) {
      // (keepRanked may also store to keys[done + need], past the
      // winners: k < n, in bounds.)
      if constexpr (std::is_same_v<Word, uint64_t>)
        keepRanked(from, m, need, keys + done);
      else
        keepRankedOf(from, m, need, keys + done);
      return;
    }
    if (m <= 24 || badRounds > 4) {
      std::nth_element(from, from + (need - 1), from + m, std::greater<Word>());
      break;
    }
    Word a = from[0], b = from[m / 2], c = from[m - 1];
    Word pivot = std::max(std::min(a, b), std::min(std::max(a, b), c));
    size_t high = 0, low = 0;
    for (size_t i = 0; i < m; ++i) {
      Word x = from[i];
      bool greater = x > pivot;
      to[high] = x;
      to[m - 1 - low] = x;
      high += greater;
      low += !greater;
    }
    badRounds += 8 * std::max(high, low) > 7 * m;
    if (need <= high) {
      // The k-th lies among the greater ones.
      from = to;
      m = high;
    } else {
      // Every greater one wins; the rest lie among the others.
      std::copy(to, to + high, keys + done);
      done += high;
      need -= high;
      from = to + high;
      m = low;
    }
    // Rounds alternate between the scratch halves (never `keys`, which
    // collects the winners).
    std::swap(to, spare);
  }
  // from[0, need) are the last winners (all of from[0, m) when need == m).
  if (from != keys + done)
    std::copy(from, from + need, keys + done);
}

template <typename T> bool isNan(T value) {
  if constexpr (std::is_floating_point_v<T>)
    return std::isnan(value);
  else
    return false;
}

/// Whether (a, ia) comes before (b, ib) in descending order (largest
/// first): NaN is the greatest value; ties go to the lower index.
template <typename T>
bool before(T a, int64_t ia, T b, int64_t ib, bool largest) {
  bool aNan = isNan(a), bNan = isNan(b);
  if (aNan || bNan) {
    if (aNan && bNan)
      return ia < ib;
    // NaN first when largest, last when smallest.
    return largest ? aNan : bNan;
  }
  if (a != b)
    return largest ? a > b : a < b;
  return ia < ib;
}

/// Keeps the best `k` (value, index) pairs offered, in the total order of
/// `before`: an unsorted buffer of up to `capacity` candidates; when full,
/// nth_element keeps the best k and the k-th becomes a threshold that later
/// offers must beat. Offers are O(1) amortized, and once the threshold is
/// set most elements of a long row are rejected by one comparison.
template <typename T> class Collector {
public:
  struct Candidate {
    T value;
    int64_t index;
  };

  // A small capacity raises the threshold early (compaction costs O(k) and
  // happens after at least k + 16 accepted offers).
  Collector(int64_t k, bool largest, int64_t /*rowLength*/ = 0)
      : k(k), capacity(2 * k + 16), largest(largest) {
    candidates.reserve(capacity);
  }

  /// Empty again, for the next row (keeps the buffer).
  void reset() {
    candidates.clear();
    thresholdSet = false;
  }

  bool hasThreshold() const { return thresholdSet; }
  T threshold() const { return thresholdValue; }

  void offer(T v, int64_t i) {
    if (thresholdSet && !before(v, i, thresholdValue, thresholdIndex, largest))
      return;
    candidates.push_back({v, i});
    if (static_cast<int64_t>(candidates.size()) == capacity)
      compact();
  }

  /// Offers the candidates kept by another collector.
  void merge(const Collector &other) {
    for (const Candidate &c : other.candidates)
      offer(c.value, c.index);
  }

  /// The indices of the best k, best first (ties by ascending index).
  void finishSorted(int64_t *outIndices, int64_t stride) {
    selectBest();
    std::sort(candidates.begin(), candidates.end(), cmp());
    for (int64_t j = 0; j < k; ++j)
      outIndices[j * stride] = candidates[j].index;
  }

  /// The lowest index holding the k-th best value.
  int64_t finishKth() {
    selectBest();
    const Candidate &kth =
        *std::max_element(candidates.begin(), candidates.end(), cmp());
    T v = kth.value;
    int64_t lowest = kth.index;
    for (const Candidate &c : candidates)
      if ((c.value == v || (isNan(c.value) && isNan(v))) && c.index < lowest)
        lowest = c.index;
    return lowest;
  }

private:
  auto cmp() const {
    bool l = largest;
    return [l](const Candidate &a, const Candidate &b) {
      return before(a.value, a.index, b.value, b.index, l);
    };
  }

  /// Keeps only the best k candidates (unordered); the k-th is last.
  void selectBest() {
    if (static_cast<int64_t>(candidates.size()) > k) {
      std::nth_element(candidates.begin(), candidates.begin() + (k - 1),
                       candidates.end(), cmp());
      candidates.resize(k);
    }
  }

  void compact() {
    selectBest();
    // After nth_element, position k-1 holds the k-th best.
    thresholdValue = candidates[k - 1].value;
    thresholdIndex = candidates[k - 1].index;
    thresholdSet = true;
  }

  int64_t k, capacity;
  bool largest;
  std::vector<Candidate> candidates;
  bool thresholdSet = false;
  T thresholdValue{};
  int64_t thresholdIndex = 0;
};

/// The f32 collector: each (value, index) pair is packed into one uint64
/// whose unsigned order is the selection order (better is greater): the
/// high half a monotone key of the value (NaN greatest for largest, least
/// for smallest), the low half the complemented index (lower index is
/// better). Selection and sorting then compare plain integers. Rows must
/// have fewer than 2^32 elements (callers fall back to Collector<float>).
///
/// For small k (up to 32, in rows long enough: useSortedCollector) the best
/// k are kept sorted (best first) and each accepted key is inserted in
/// place, so the threshold is the exact k-th best of everything seen so
/// far (not one that lags by a buffer of offers): fewer elements pass the
/// block prefilter, and there is no selection to run. topk k=16 over
/// 4096x32768: 34 -> 28 ms at 1 thread. Otherwise they collect into a
/// buffer of 2k+16 compacted by selectGreatest.
class PackedCollector {
public:
  /// Rows of `rowLength` (or segments of that length) will be offered.
  PackedCollector(int64_t k, bool largest,
                  int64_t rowLength = std::numeric_limits<int64_t>::max())
      : k(k), sorted(kiln::runtime::useSortedCollector(k, rowLength)),
        capacity(sorted ? k : 2 * k + 16), largest(largest) {
    keys.reserve(capacity);
  }

  /// Empty again, for the next row (keeps the buffer).
  void reset() {
    keys.clear();
    thresholdSet = false;
  }

  bool hasThreshold() const { return thresholdSet; }
  float threshold() const { return thresholdValue; }

  void offer(float v, int64_t i) { offerKey(pack(v, i)); }

  void merge(const PackedCollector &other) {
    for (uint64_t key : other.keys)
      offerKey(key);
  }

  /// The indices of the best k, best first (the caller reads the values
  /// from the input: keys do not keep the sign of zero).
  void finishSorted(int64_t *outIndices, int64_t stride) {
    selectBest();
    sortDistinctDescending(keys.data(), keys.size(), scratch);
    for (int64_t j = 0; j < k; ++j)
      outIndices[j * stride] = wordIndex(keys[j]);
  }

  /// The index of the lowest position holding the k-th best value.
  int64_t finishKth() {
    selectBest();
    return lowestIndexOfLeast(keys.data(), static_cast<int64_t>(keys.size()));
  }

private:
  static uint32_t orderedBits(float v) {
    uint32_t bits;
    std::memcpy(&bits, &v, sizeof(bits));
    if (v == 0.0f) // -0.0 and +0.0 are equal values: same key
      bits = 0;
    return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
  }

  uint64_t pack(float v, int64_t i) const {
    uint32_t key;
    if (std::isnan(v))
      key = largest ? 0xFFFFFFFFu : 0u;
    else
      key = largest ? orderedBits(v) : ~orderedBits(v);
    return packWord(key, i);
  }

  /// Values are recovered from the original data's order: NaN keys map
  /// back to NaN, others invert orderedBits.
  float valueOf(uint64_t packed) const {
    uint32_t key = uint32_t(packed >> 32);
    if (largest ? key == 0xFFFFFFFFu : key == 0u)
      return std::numeric_limits<float>::quiet_NaN();
    if (!largest)
      key = ~key;
    uint32_t bits = (key & 0x80000000u) ? (key & 0x7FFFFFFFu) : ~key;
    float v;
    std::memcpy(&v, &bits, sizeof(v));
    return v;
  }

  void offerKey(uint64_t key) {
    if (thresholdSet && key <= thresholdKey)
      return;
    if (sorted) {
      insertSorted(key);
      return;
    }
    keys.push_back(key);
    if (static_cast<int64_t>(keys.size()) == capacity)
      compact();
  }

  /// Small k: inserts `key` into the sorted best k (dropping the k-th when
  /// full); the threshold is then the k-th best key.
  void insertSorted(uint64_t key) {
    int64_t n = static_cast<int64_t>(keys.size());
    if (n < k)
      keys.push_back(key);
    int64_t j = std::min(n, k - 1);
    for (; j > 0 && keys[j - 1] < key; --j)
      keys[j] = keys[j - 1];
    keys[j] = key;
    if (static_cast<int64_t>(keys.size()) == k) {
      thresholdKey = keys[k - 1];
      thresholdValue = valueOf(thresholdKey);
      thresholdSet = true;
    }
  }

  void selectBest() {
    if (static_cast<int64_t>(keys.size()) > k) {
      selectGreatest(keys.data(), keys.size(), k, scratch);
      keys.resize(k);
    }
  }

  void compact() {
    selectBest();
    // The best k are in no order: the threshold is the least of them.
    thresholdKey = *std::min_element(keys.begin(), keys.end());
    thresholdValue = valueOf(thresholdKey);
    thresholdSet = true;
  }

  int64_t k;
  /// The best k kept sorted, each accepted key inserted
  /// (useSortedCollector); otherwise a buffer compacted by
  /// selectGreatest.
  bool sorted;
  int64_t capacity;
  bool largest;
  std::vector<uint64_t> keys, scratch;
  bool thresholdSet = false;
  uint64_t thresholdKey = 0;
  float thresholdValue = 0;
};

/// The collector for element type T (and row length).
template <typename T> struct CollectorFor { using type = Collector<T>; };
template <> struct CollectorFor<float> { using type = PackedCollector; };

/// Bit j set when x[j] (j < 32) might beat `threshold`: the vectorizable
/// prefilter of `scan`, one overload per element type (target clones cannot
/// be templates). NaN-aware: !(x <= t) is true for NaN x or NaN t, and the
/// exact check then decides.
#define KILN_CANDIDATE_MASK(T)                                                 \
  KILN_VECTORIZE uint32_t candidateMask(const T *x, T threshold,               \
                                        bool largest) {                        \
    uint32_t mask = 0;                                                         \
    if (largest) {                                                             \
      for (uint32_t j = 0; j < 32; ++j)                                        \
        mask |= uint32_t(!(x[j] <= threshold)) << j;                           \
    } else {                                                                   \
      for (uint32_t j = 0; j < 32; ++j)                                        \
        mask |= uint32_t(!(x[j] >= threshold)) << j;                           \
    }                                                                          \
    return mask;                                                               \
  }
KILN_CANDIDATE_MASK(double)
KILN_CANDIDATE_MASK(int64_t)
#undef KILN_CANDIDATE_MASK

#if defined(__clang__)
// f32: two 16-lane compares whose i1 vectors are the mask bits (one
// vcmpps + kmov per 16 lanes with AVX-512).
typedef float F32x16 __attribute__((ext_vector_type(16)));

/// The lanes of a vector compare as bits, lane l to bit l (one kmov with
/// AVX-512).
template <typename Compare>
__attribute__((always_inline)) inline uint32_t laneBits(Compare compare) {
  constexpr int kLanes = sizeof(compare) / sizeof(compare[0]);
  typedef bool Mask __attribute__((ext_vector_type(kLanes)));
  Mask mask = __builtin_convertvector(compare, Mask);
  uint32_t bits = 0;
  std::memcpy(&bits, &mask, sizeof(mask));
  return bits;
}
__attribute__((always_inline)) inline uint32_t
candidateMaskF32(const float *x, float threshold, bool largest) {
  F32x16 lo, hi;
  std::memcpy(&lo, x, sizeof(lo));
  std::memcpy(&hi, x + 16, sizeof(hi));
  if (largest)
    return laneBits(!(lo <= threshold)) | laneBits(!(hi <= threshold)) << 16;
  return laneBits(!(lo >= threshold)) | laneBits(!(hi >= threshold)) << 16;
}
KILN_VECTORIZE uint32_t candidateMask(const float *x, float threshold,
                                      bool largest) {
  return candidateMaskF32(x, threshold, largest);
}
#else
inline uint32_t candidateMaskF32(const float *x, float threshold,
                                 bool largest) {
  uint32_t mask = 0;
  for (uint32_t j = 0; j < 32; ++j)
    mask |= uint32_t(largest ? !(x[j] <= threshold) : !(x[j] >= threshold))
            << j;
  return mask;
}
KILN_VECTORIZE uint32_t candidateMask(const float *x, float threshold,
                                      bool largest) {
  uint32_t mask = 0;
  for (uint32_t j = 0; j < 32; ++j)
    mask |= uint32_t(largest ? !(x[j] <= threshold) : !(x[j] >= threshold))
            << j;
  return mask;
}
#endif

/// Offers x[begin, end) (contiguous; element j has index j) to `collector`:
/// one by one until the collector has a threshold, then only the elements
/// of each 32-element block that `mask(block, threshold, largest)` flags,
/// in index order (the exact test and a rising threshold decide).
// Always inlined: each target_clones clone of a caller (scanF32) must
// contain the loop itself, compiled for that clone's instruction set; an
// out-of-line template would be compiled once, for the baseline (SSE2).
template <typename T, typename CollectorT, typename Mask>
__attribute__((always_inline)) inline void
scanWith(const T *x, int64_t begin, int64_t end, CollectorT &collector,
         bool largest, Mask mask) {
  int64_t i = begin;
  for (; i < end && !collector.hasThreshold(); ++i)
    collector.offer(x[i], i);
  // No software prefetch: the hardware prefetchers follow the sequential
  // row, and one line 8 KB ahead per two lines read made topk k=16 over
  // 4096x32768 15% slower on the development machine (AMD EPYC, 2 MiB
  // pages); both lines, 5% slower.
  for (; i + 32 <= end; i += 32) {
    for (uint32_t bits = mask(x + i, collector.threshold(), largest); bits;
         bits &= bits - 1) {
      int64_t j = i + __builtin_ctz(bits);
      collector.offer(x[j], j);
    }
  }
  for (; i < end; ++i)
    collector.offer(x[i], i);
}

template <typename T, typename CollectorT>
void scan(const T *x, int64_t begin, int64_t end, CollectorT &collector,
          bool largest) {
  scanWith(x, begin, end, collector, largest,
           [](const T *block, T threshold, bool isLargest) {
             return candidateMask(block, threshold, isLargest);
           });
}

/// The f32 scan as one function per instruction set (the mask test inlines
/// into the loop instead of an indirect call per 32 elements).
KILN_VECTORIZE void scanF32(const float *x, int64_t begin, int64_t end,
                            PackedCollector &collector, bool largest) {
  scanWith(x, begin, end, collector, largest,
           [](const float *block, float threshold, bool isLargest) {
             return candidateMaskF32(block, threshold, isLargest);
           });
}

inline void scan(const float *x, int64_t begin, int64_t end,
                 PackedCollector &collector, bool largest) {
  scanF32(x, begin, end, collector, largest);
}

/// The grain for parallelFor over items of `itemWork` element steps each:
/// as many items as make about `chunkWork` steps, at least one.
int64_t itemsPerChunk(int64_t itemWork, int64_t chunkWork) {
  return std::max<int64_t>(1, chunkWork / std::max<int64_t>(itemWork, 1));
}

/// Runs `emit(row, collector)` with the best k of every row of `input`
/// along `dim`. Rows are split across threads; rows much longer than the
/// work per thread are also split into segments whose collectors merge.
template <typename T, typename CollectorT, typename Emit>
void selectRowsWith(View<T> &input, int64_t dim, int64_t k, bool largest,
                    Emit emit) {
  Split s = split(input.shape, dim);
  int64_t rows = s.outer * s.inner;
  int64_t threads = getNumThreads();
  int64_t segments = selectionSegments(rows, s.size, threads);
  int64_t segmentLength = (s.size + segments - 1) / segments;
  std::vector<std::unique_ptr<CollectorT>> partial(
      segments > 1 ? rows * segments : 0);
  // Chunks of about 2^15 elements' work: a segment's scan, plus the
  // selecting and sorting of its k best (about 4 k log2 k element steps;
  // k = 64 of rows of 512 is mostly that).
  int64_t selectWork = 4 * k * llvm::Log2_64_Ceil(static_cast<uint64_t>(k) + 1);
  int64_t grain = itemsPerChunk(segmentLength + selectWork, int64_t(1) << 15);
  // Strided rows (dim not innermost) are copied to a contiguous buffer.
  parallelFor(rows * segments, grain, [&](int64_t begin, int64_t end) {
    ContiguousRows<T> rowsOf;
    // Whole rows reuse one collector per worker.
    CollectorT reused(k, largest, segmentLength);
    for (int64_t w = begin; w < end; ++w) {
      int64_t r = w / segments, seg = w % segments;
      int64_t o = r / s.inner, in = r % s.inner;
      const T *row = rowsOf.row(input.data, s, o, in);
      int64_t first = seg * segmentLength;
      int64_t last = std::min(s.size, first + segmentLength);
      if (segments == 1) {
        // A whole row is finished at once, while its
        // collector is in cache.
        reused.reset();
        if (first < last)
          scan(row, first, last, reused, largest);
        emit(r, reused);
        continue;
      }
      // Segments of a row are merged below.
      auto collector = std::make_unique<CollectorT>(k, largest, segmentLength);
      if (first < last)
        scan(row, first, last, *collector, largest);
      partial[w] = std::move(collector);
    }
  });
  if (segments == 1)
    return;
  parallelFor(rows, 1, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      CollectorT &collector = *partial[r * segments];
      for (int64_t seg = 1; seg < segments; ++seg)
        collector.merge(*partial[r * segments + seg]);
      emit(r, collector);
    }
  });
}

/// The order key of an f32 for selection (better is greater): monotone in
/// the value, NaN greatest for largest and least for smallest.
inline uint32_t selectionKey(float v, bool largest) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof(bits));
  bits = v == 0.0f ? 0u : bits; // -0.0 and +0.0 are equal values: same key
  uint32_t ordered = (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
  uint32_t key = largest ? ordered : ~ordered;
  uint32_t nanKey = largest ? 0xFFFFFFFFu : 0u;
  return v != v ? nanKey : key;
}

/// keys[i] = selectionKey(row[i]) for a whole row (branch-free: vectorized
/// per instruction set).
KILN_VECTORIZE void selectionKeys(const float *row, int64_t n, bool largest,
                                  uint32_t *keys) {
  for (int64_t i = 0; i < n; ++i)
    keys[i] = selectionKey(row[i], largest);
}

/// Sorts packed (key, ~index) words, greatest first: an LSD radix sort
/// (eight byte passes) for the hundreds of winners of a large-k topk, where
/// it beats comparison sorting; std::sort below that.
void sortDescending(uint64_t *words, size_t n, std::vector<uint64_t> &buffer) {
  if (n < 256) {
    sortDistinctDescending(words, n, buffer);
    return;
  }
  if (buffer.size() < n)
    buffer.resize(n);
  uint64_t *from = words, *to = buffer.data();
  for (int shift = 0; shift < 64; shift += 8) {
    size_t count[256] = {};
    for (size_t i = 0; i < n; ++i)
      ++count[uint8_t(~from[i] >> shift)];
    if (count[uint8_t(~from[0] >> shift)] == n)
      continue; // every word has this byte: nothing to reorder
    size_t offset = 0;
    for (size_t &c : count) {
      size_t next = offset + c;
      c = offset;
      offset = next;
    }
    for (size_t i = 0; i < n; ++i)
      to[count[uint8_t(~from[i] >> shift)]++] = from[i];
    std::swap(from, to);
  }
  if (from != words)
    std::copy(from, from + n, words);
}

/// Scratch of radix selection (topkRadixRow, kthRadixRow), reused across
/// the rows of a thread.
struct RadixRowScratch {
  std::vector<uint64_t> candidates, sortBuffer;
  std::vector<uint32_t> keys;
};

/// Bits of the bucket histogram of radix selection.
constexpr int kRadixBucketBits = 12;

/// The first pass of radix selection over a row: its keys (in
/// `scratch.keys`, `largest` as for topk), and the bucket (the top
/// kRadixBucketBits of a key) holding the k-th greatest key; `above` is how
/// many keys lie in greater buckets.
uint32_t radixSelectBucket(const float *row, int64_t n, int64_t k, bool largest,
                           RadixRowScratch &scratch, int64_t &above) {
  constexpr int kBits = kRadixBucketBits;
  std::vector<uint32_t> &keys = scratch.keys;
  keys.resize(n);
  selectionKeys(row, n, largest, keys.data());
  // Four interleaved histograms: keys cluster in few buckets, and
  // back-to-back increments of one counter would serialize.
  uint32_t partial[4][1 << kBits] = {};
  int64_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (int h = 0; h < 4; ++h)
      ++partial[h][keys[i + h] >> (32 - kBits)];
  for (; i < n; ++i)
    ++partial[0][keys[i] >> (32 - kBits)];
  above = 0;
  for (uint32_t bucket = (1 << kBits) - 1;; --bucket) {
    int64_t inBucket = int64_t(partial[0][bucket]) + partial[1][bucket] +
                       partial[2][bucket] + partial[3][bucket];
    if (above + inBucket >= k || bucket == 0)
      return bucket;
    above += inBucket;
  }
}

/// Packs every position of the row whose key (from radixSelectBucket)
/// satisfies `qualifies` as a (key, ~index) word into `scratch.candidates`,
/// in row order; returns how many. Branch-free: every word is stored and
/// the count advances when it qualifies (a few percent do, in no
/// predictable order; a branch per element cost 2.5x the pass).
template <typename Qualifies>
int64_t collectKeys(int64_t n, RadixRowScratch &scratch, Qualifies qualifies) {
  // Room for every word (only grows: no per-row initialization).
  if (scratch.candidates.size() < static_cast<size_t>(n) + 1)
    scratch.candidates.resize(n + 1);
  uint64_t *candidates = scratch.candidates.data();
  const uint32_t *keys = scratch.keys.data();
  int64_t count = 0;
  for (int64_t i = 0; i < n; ++i) {
    uint32_t key = keys[i];
    candidates[count] = packWord(key, i);
    count += qualifies(key);
  }
  return count;
}

/// Writes the best k of the `count` (>= k) distinct candidate words of
/// `row` to `outValues`/`outIndices` (every `stride`), best first.
void emitBest(const float *row, uint64_t *candidates, int64_t count, int64_t k,
              float *outValues, int64_t *outIndices, int64_t stride,
              RadixRowScratch &scratch) {
  if (count > k)
    selectGreatest(candidates, count, k, scratch.sortBuffer);
  sortDescending(candidates, k, scratch.sortBuffer);
  emitWords(row, candidates, k, outValues, outIndices, stride);
}

/// topk of one contiguous f32 row by radix selection, for large k: one pass
/// builds a histogram of the keys' top 12 bits, which gives the bucket
/// holding the k-th best; a second pass collects every element in or above
/// that bucket (about k of them) as packed (key, ~index) words, and only
/// those are selected and sorted. Two streaming passes instead of a
/// threshold that rises slowly when k is large.
void topkRadixRow(const float *row, int64_t n, int64_t k, bool largest,
                  float *outValues, int64_t *outIndices, int64_t stride,
                  RadixRowScratch &scratch) {
  int64_t above = 0;
  uint32_t bucket = radixSelectBucket(row, n, k, largest, scratch, above);
  // Every key in the bucket or above.
  uint32_t lowest = bucket << (32 - kRadixBucketBits);
  int64_t count =
      collectKeys(n, scratch, [&](uint32_t key) { return key >= lowest; });
  emitBest(row, scratch.candidates.data(), count, k, outValues, outIndices,
           stride, scratch);
}

/// topk of one short contiguous f32 row with many winners
/// (useDirectSelection): every element packed, then selected and sorted.
void topkDirectRow(const float *row, int64_t n, int64_t k, bool largest,
                   float *outValues, int64_t *outIndices, int64_t stride,
                   RadixRowScratch &scratch) {
  scratch.keys.resize(n);
  selectionKeys(row, n, largest, scratch.keys.data());
  int64_t count = collectKeys(n, scratch, [](uint32_t) { return true; });
  emitBest(row, scratch.candidates.data(), count, k, outValues, outIndices,
           stride, scratch);
}

/// kthvalue of one short contiguous f32 row (useDirectSelection): every
/// element packed (smallest best), the best k selected; the k-th is the
/// least of them, reported at the lowest index holding its key -- the
/// greatest word with that key among the k, as lower indices of an equal
/// key are selected first.
int64_t kthDirectRow(const float *row, int64_t n, int64_t k,
                     RadixRowScratch &scratch) {
  scratch.keys.resize(n);
  selectionKeys(row, n, /*largest=*/false, scratch.keys.data());
  int64_t count = collectKeys(n, scratch, [](uint32_t) { return true; });
  uint64_t *candidates = scratch.candidates.data();
  selectGreatest(candidates, count, k, scratch.sortBuffer);
  return lowestIndexOfLeast(candidates, k);
}

/// kthvalue of one contiguous f32 row by radix selection, for large k: the
/// histogram (radixSelectBucket) gives the bucket holding the k-th
/// smallest; only that bucket's elements are collected, nth_element
/// among them finds the k-th key, and the answer is the lowest index
/// holding that key (ops.md: equal values, -0.0 and +0.0 or NaNs, share a
/// key).
int64_t kthRadixRow(const float *row, int64_t n, int64_t k,
                    RadixRowScratch &scratch) {
  constexpr int kShift = 32 - kRadixBucketBits;
  int64_t above = 0;
  uint32_t bucket =
      radixSelectBucket(row, n, k, /*largest=*/false, scratch, above);
  // The bucket's keys only.
  int64_t count = collectKeys(
      n, scratch, [&](uint32_t key) { return (key >> kShift) == bucket; });
  uint64_t *candidates = scratch.candidates.data();
  // The k-th best overall is the (k - above)-th best of the bucket.
  int64_t rank = k - above;
  selectGreatest(candidates, count, rank, scratch.sortBuffer);
  uint32_t kth =
      uint32_t(*std::min_element(candidates, candidates + rank) >> 32);
  int64_t lowest = n;
  for (int64_t j = 0; j < count; ++j)
    if (uint32_t(candidates[j] >> 32) == kth)
      lowest = std::min(lowest, wordIndex(candidates[j]));
  return lowest;
}

/// The order key of an f64 or i64 for selection (better is greater), as
/// for f32: monotone in the value, -0.0 and +0.0 equal, NaN greatest for
/// largest and least for smallest.
inline uint64_t selectionKey(double v, bool largest) {
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof(bits));
  bits = v == 0.0 ? 0 : bits;
  uint64_t sign = uint64_t(1) << 63;
  uint64_t ordered = (bits & sign) ? ~bits : (bits | sign);
  uint64_t key = largest ? ordered : ~ordered;
  return v != v ? (largest ? ~uint64_t(0) : 0) : key;
}
inline uint64_t selectionKey(int64_t v, bool largest) {
  uint64_t ordered = uint64_t(v) ^ (uint64_t(1) << 63);
  return largest ? ordered : ~ordered;
}

/// Scratch of direct selection of f64 and i64 rows, reused across the rows
/// of a thread.
struct WideRowScratch {
  std::vector<WideWord> words, scratch;
};

/// Every element of the row packed as a (key, ~index) WideWord.
template <typename T>
WideWord *packWide(const T *row, int64_t n, bool largest,
                   WideRowScratch &scratch) {
  scratch.words.resize(n);
  for (int64_t i = 0; i < n; ++i)
    scratch.words[i] = packWord(selectionKey(row[i], largest), i);
  return scratch.words.data();
}

/// topk of one short contiguous f64 or i64 row (useDirectSelection), as
/// topkDirectRow: every element packed, the best k selected and sorted.
template <typename T>
void topkDirectRowWide(const T *row, int64_t n, int64_t k, bool largest,
                       T *outValues, int64_t *outIndices, int64_t stride,
                       WideRowScratch &scratch) {
  WideWord *words = packWide(row, n, largest, scratch);
  selectGreatest(words, n, k, scratch.scratch);
  sortDistinctDescending(words, k, scratch.scratch);
  emitWords(row, words, k, outValues, outIndices, stride);
}

/// kthvalue of one short contiguous f64 or i64 row, as kthDirectRow.
template <typename T>
int64_t kthDirectRowWide(const T *row, int64_t n, int64_t k,
                         WideRowScratch &scratch) {
  WideWord *words = packWide(row, n, /*largest=*/false, scratch);
  selectGreatest(words, n, k, scratch.scratch);
  return lowestIndexOfLeast(words, k);
}

//===-- Bound selection ---------------------------------------------------===//
//
// topk and kthvalue with k <= 32 in rows up to a length that grows with k
// (useBoundSelection). The first pass keeps the best value of each of 32
// interleaved lanes (64 for k > 16; lane l sees positions l, l + 32, ...),
// NaNs ignored; k lanes hold a value at least as good as the k-th best
// lane's, so at least k elements are, and it bounds the k-th best element
// from below. The second pass (the row now in cache) collects the elements
// not worse than the bound -- about k of them, a few more, and every NaN --
// with one vector compare per 16 or 8 elements; the candidates' keys are
// then ranked (m^2 compares that vectorize). The only data-dependent
// branches are one per candidate. Many candidates (ties at the bound,
// NaNs) are packed and selected instead.
//
//===----------------------------------------------------------------------===//

/// Whether x is better than y for selection in the value's own order
/// (NaN never is: the passes below ignore NaNs, see boundOfRow).
template <bool Largest, typename T>
__attribute__((always_inline)) inline bool beats(T x, T y) {
  return Largest ? x > y : x < y;
}

/// The worst value of T for selection (-inf or the least integer for
/// largest).
template <bool Largest, typename T> constexpr T worstValue() {
  using Limits = std::numeric_limits<T>;
  if constexpr (Limits::has_infinity)
    return Largest ? -Limits::infinity() : Limits::infinity();
  else
    return Largest ? Limits::lowest() : Limits::max();
}

/// Bound selection's first pass: the best value of each of `Lanes`
/// interleaved lanes, NaNs ignored, and the k-th best of those (1 <= k <=
/// Lanes), the least good with fewer than k lanes better. Ignoring
/// NaNs only lowers a lane (as it is for largest, NaN greatest; as for
/// smallest, where a lane of NaNs -- the worst -- reads as infinity, it
/// never passes a lane with a number), so at least k elements are at
/// least as good as the bound in the selection order, NaN included.
/// Counting the better lanes: a popcount of vector compares.
template <bool Largest, int Lanes, typename T>
__attribute__((always_inline)) inline T boundOfRow(const T *row, int64_t n,
                                                   int64_t k) {
  constexpr T worst = worstValue<Largest, T>();
  T lane[Lanes];
  int64_t i = 0;
#if defined(__clang__)
  // Explicit vectors: left to itself, LLVM vectorized the i64 loop across
  // blocks, with gathers (12x slower).
  constexpr int kWidth = 64 / sizeof(T), kVectors = Lanes / kWidth;
  typedef T Vector __attribute__((ext_vector_type(kWidth)));
  Vector all[kVectors];
  for (int v = 0; v < kVectors; ++v)
    all[v] = worst;
  for (; i + Lanes <= n; i += Lanes)
    for (int v = 0; v < kVectors; ++v) {
      Vector x;
      std::memcpy(&x, row + i + v * kWidth, sizeof(x));
      all[v] = (Largest ? x > all[v] : x < all[v]) ? x : all[v];
    }
  std::memcpy(lane, all, sizeof(lane));
#else
  for (int l = 0; l < Lanes; ++l)
    lane[l] = worst;
  for (; i + Lanes <= n; i += Lanes)
    for (int l = 0; l < Lanes; ++l)
      lane[l] = beats<Largest>(row[i + l], lane[l]) ? row[i + l] : lane[l];
#endif
  for (int l = 0; i + l < n; ++l)
    lane[l] = beats<Largest>(row[i + l], lane[l]) ? row[i + l] : lane[l];
  T bound = worstValue<!Largest, T>();
#if defined(__clang__)
  std::memcpy(all, lane, sizeof(all));
  for (int j = 0; j < Lanes; ++j) {
    int better = 0;
    for (int v = 0; v < kVectors; ++v)
      better += __builtin_popcount(
          laneBits(Largest ? all[v] > lane[j] : all[v] < lane[j]));
    bound = better < k && beats<Largest>(bound, lane[j]) ? lane[j] : bound;
  }
#else
  for (int j = 0; j < Lanes; ++j) {
    int better = 0;
    for (int l = 0; l < Lanes; ++l)
      better += beats<Largest>(lane[l], lane[j]);
    bound = better < k && beats<Largest>(bound, lane[j]) ? lane[j] : bound;
  }
#endif
  return bound;
}

/// Bit j set when x[j] (j < 32) is not worse than `bound` -- NaNs always
/// set: a superset of the elements whose key reaches the bound's.
template <bool Largest, typename T>
__attribute__((always_inline)) inline uint32_t notWorseMask(const T *x,
                                                            T bound) {
#if defined(__clang__)
  constexpr int kWidth = 64 / sizeof(T);
  typedef T Vector __attribute__((ext_vector_type(kWidth)));
  uint32_t mask = 0;
  for (int v = 0; v < 32 / kWidth; ++v) {
    Vector block;
    std::memcpy(&block, x + v * kWidth, sizeof(block));
    mask |= laneBits(Largest ? !(block < bound) : !(block > bound))
            << (v * kWidth);
  }
  return mask;
#else
  uint32_t mask = 0;
  for (uint32_t j = 0; j < 32; ++j)
    mask |= uint32_t(!beats<Largest>(bound, x[j])) << j;
  return mask;
#endif
}

/// Bound selection's second pass: the keys (selectionKey) and positions of the
/// elements not worse than `bound`, in row order -- every element whose
/// key reaches the k-th best's, and at least k; `keys` and `positions`
/// have room for n + 1.
template <bool Largest, typename T, typename Key>
__attribute__((always_inline)) inline int64_t
collectNotWorse(const T *row, int64_t n, T bound, Key *keys,
                int64_t *positions) {
  int64_t count = 0, i = 0;
  for (; i + 32 <= n; i += 32) {
    for (uint32_t mask = notWorseMask<Largest>(row + i, bound); mask;
         mask &= mask - 1) {
      int64_t at = i + __builtin_ctz(mask);
      keys[count] = selectionKey(row[at], Largest);
      positions[count++] = at;
    }
  }
  for (; i < n; ++i) {
    keys[count] = selectionKey(row[i], Largest);
    positions[count] = i;
    count += !beats<Largest>(bound, row[i]);
  }
  return count;
}

/// Rows this short are all candidates: the lanes' bound costs more than
/// ranking every element (1 thread, topk of 26214 rows of 10: f32 k=1
/// 2.34 -> 1.29 ms, k=8 3.12 -> 1.59; f64 k=1 3.37 -> 1.41; rows of 20
/// gain nothing).
constexpr int64_t kBoundWholeRow = 16;

/// Both passes for one element type, compiled per instruction set.
#define KILN_BOUND_PASSES(T, Key)                                              \
  KILN_VECTORIZE int64_t collectCandidates(const T *row, int64_t n, int64_t k, \
                                           bool largest, Key *keys,            \
                                           int64_t *positions) {               \
    if (n <= kBoundWholeRow) {                                                 \
      for (int64_t i = 0; i < n; ++i) {                                        \
        keys[i] = selectionKey(row[i], largest);                               \
        positions[i] = i;                                                      \
      }                                                                        \
      return n;                                                                \
    }                                                                          \
    T bound = largest ? (k <= 16 ? boundOfRow<true, 32>(row, n, k)             \
                                 : boundOfRow<true, 64>(row, n, k))            \
                      : (k <= 16 ? boundOfRow<false, 32>(row, n, k)            \
                                 : boundOfRow<false, 64>(row, n, k));          \
    return largest ? collectNotWorse<true>(row, n, bound, keys, positions)     \
                   : collectNotWorse<false>(row, n, bound, keys, positions);   \
  }
KILN_BOUND_PASSES(float, uint32_t)
KILN_BOUND_PASSES(double, uint64_t)
KILN_BOUND_PASSES(int64_t, uint64_t)
#undef KILN_BOUND_PASSES

/// Candidates bound selection ranks directly; more are packed and
/// selected.
constexpr int64_t kBoundRankMax = 128;

/// order[r] = the candidate of rank r among `keys[0, m)` (m <=
/// kBoundRankMax): greater keys first, equal keys in row order. Branch-free,
/// m^2 compares.
#define KILN_BOUND_ORDER(Key)                                                  \
  KILN_VECTORIZE void rankCandidates(const Key *keys, int64_t m,               \
                                     uint8_t *order) {                         \
    for (int64_t j = 0; j < m; ++j) {                                          \
      uint32_t rank = 0;                                                       \
      Key key = keys[j];                                                       \
      for (int64_t i = 0; i < m; ++i)                                          \
        rank += (keys[i] > key) | ((keys[i] == key) & (i < j));                \
      order[rank] = uint8_t(j);                                                \
    }                                                                          \
  }
KILN_BOUND_ORDER(uint32_t)
KILN_BOUND_ORDER(uint64_t)
#undef KILN_BOUND_ORDER

/// Scratch of bound selection, reused across the rows of a thread: the
/// candidates' keys and positions, and packed words when there are many.
template <typename T> struct BoundRowScratch {
  using Key = decltype(selectionKey(T(), true));
  using Word = decltype(packWord(Key(), 0));
  std::vector<Key> keys;
  std::vector<int64_t> positions;
  std::vector<Word> words, wordScratch;

  /// The candidates of `row` at or above its bound (k-th best lane
  /// maximum); returns how many (at least k).
  int64_t collect(const T *row, int64_t n, int64_t k, bool largest) {
    if (keys.size() < static_cast<size_t>(n) + 1) {
      keys.resize(n + 1);
      positions.resize(n + 1);
    }
    return collectCandidates(row, n, k, largest, keys.data(), positions.data());
  }

  /// The m candidates as packed (key, ~index) words, the best k moved to
  /// the front.
  Word *selectPacked(int64_t m, int64_t k) {
    words.resize(m);
    for (int64_t j = 0; j < m; ++j)
      words[j] = packWord(keys[j], positions[j]);
    selectGreatest(words.data(), m, k, wordScratch);
    return words.data();
  }
};

/// topk of one contiguous row by bound selection (useBoundSelection).
template <typename T>
void topkBoundRow(const T *row, int64_t n, int64_t k, bool largest,
                  T *outValues, int64_t *outIndices, int64_t stride,
                  BoundRowScratch<T> &scratch) {
  int64_t m = scratch.collect(row, n, k, largest);
  if (m <= kBoundRankMax) {
    uint8_t order[kBoundRankMax];
    rankCandidates(scratch.keys.data(), m, order);
    for (int64_t r = 0; r < k; ++r) {
      int64_t index = scratch.positions[order[r]];
      outValues[r * stride] = row[index];
      outIndices[r * stride] = index;
    }
    return;
  }
  auto *words = scratch.selectPacked(m, k);
  sortDistinctDescending(words, k, scratch.wordScratch);
  emitWords(row, words, k, outValues, outIndices, stride);
}

/// kthvalue of one contiguous row by bound selection: the k-th smallest
/// key, reported at the lowest position holding it (the first candidate
/// with it: every element with that key is a candidate, in row order).
template <typename T>
int64_t kthBoundRow(const T *row, int64_t n, int64_t k,
                    BoundRowScratch<T> &scratch) {
  int64_t m = scratch.collect(row, n, k, /*largest=*/false);
  if (m > kBoundRankMax)
    return lowestIndexOfLeast(scratch.selectPacked(m, k), k);
  uint8_t order[kBoundRankMax];
  rankCandidates(scratch.keys.data(), m, order);
  auto kth = scratch.keys[order[k - 1]];
  int64_t j = 0;
  while (scratch.keys[j] != kth)
    ++j;
  return scratch.positions[j];
}

/// Whether a row of n takes radix selection rather than a collector
/// (SelectionPlan.h).
bool useRadixSelection(int64_t rows, int64_t n, int64_t k) {
  return kiln::runtime::useRadixSelection(rows, n, k, getNumThreads());
}

/// Runs `body(row, r, o, i)` on every row of `input` along `dim` (r the
/// row's number, (o, i) its outer and inner position), rows in parallel in
/// chunks of at least 2^15 elements (as selectRowsWith's: 16 rows of 1024
/// f32, topk with k = 5, took 2.8 us on one thread and 4.1 split across
/// two); a strided row is first copied to a contiguous buffer.
template <typename Scratch = RadixRowScratch, typename T, typename Body>
void forEachContiguousRow(View<T> &input, const Split &s, Body body) {
  int64_t grain = itemsPerChunk(s.size, int64_t(1) << 15);
  parallelFor(s.outer * s.inner, grain, [&](int64_t begin, int64_t end) {
    Scratch scratch;
    ContiguousRows<T> rowsOf;
    for (int64_t r = begin; r < end; ++r) {
      int64_t o = r / s.inner, i = r % s.inner;
      body(rowsOf.row(input.data, s, o, i), r, o, i, scratch);
    }
  });
}

/// topk of every row by `selectRow(row, n, k, largest, values, indices,
/// stride, scratch)`, a per-row kernel with a Scratch per thread.
template <typename Scratch, typename T, typename SelectRow>
void topkEachRow(View<T> &input, const Split &s, int64_t k, bool largest,
                 T *outValues, int64_t *outIndices, SelectRow selectRow) {
  forEachContiguousRow<Scratch>(
      input, s,
      [&](const T *row, int64_t, int64_t o, int64_t i, Scratch &scratch) {
        int64_t out = o * k * s.inner + i;
        selectRow(row, s.size, k, largest, outValues + out, outIndices + out,
                  s.inner, scratch);
      });
}

/// kthvalue of every row by `selectRow(row, n, k, scratch)`, a per-row
/// kernel returning the answer's position, with a Scratch per thread.
template <typename Scratch, typename T, typename SelectRow>
void kthEachRow(View<T> &input, const Split &s, int64_t k, T *outValues,
                int64_t *outIndices, SelectRow selectRow) {
  forEachContiguousRow<Scratch>(
      input, s,
      [&](const T *row, int64_t r, int64_t o, int64_t i, Scratch &scratch) {
        int64_t index = selectRow(row, s.size, k, scratch);
        outValues[r] = input.data[(o * s.size + index) * s.inner + i];
        outIndices[r] = index;
      });
}

/// selectRowsWith the fastest collector for T and the row length.
template <typename T, typename Emit>
void selectRows(View<T> &input, int64_t dim, int64_t k, bool largest,
                Emit emit) {
  using Fast = typename CollectorFor<T>::type;
  if (split(input.shape, dim).size < (int64_t(1) << 32))
    selectRowsWith<T, Fast>(input, dim, k, largest, emit);
  else
    selectRowsWith<T, Collector<T>>(input, dim, k, largest, emit);
}

template <typename T>
void argReduce(UnrankedMemRefType<T> *in, UnrankedMemRefType<T> *values,
               UnrankedMemRefType<int64_t> *indices, int64_t dim, bool isMax,
               bool flatten);

template <typename T>
void topk(UnrankedMemRefType<T> *in, UnrankedMemRefType<T> *values,
          UnrankedMemRefType<int64_t> *indices, int64_t k, int64_t dim,
          bool largest) {
  if (k == 0)
    return;
  if (k == 1 && largest) {
    // The largest element is argmax's answer -- the first NaN, else the
    // lowest index of the maximum, -0.0 equal to +0.0 -- and a result with
    // a dim of 1 is laid out as one without it: argReduce's kernels, which
    // scan rows without ranking them (topk k=1 over dim 1 of 4096x10 f32:
    // 201 -> 27 us at 1 thread, PyTorch 179-200). (The smallest differs: there
    // a NaN loses to every number, while argmin takes the first NaN.)
    argReduce(in, values, indices, dim, /*isMax=*/true, /*flatten=*/false);
    return;
  }
  View<T> input = view(in);
  T *outValues = view(values).data;
  int64_t *outIndices = view(indices).data;
  Split s = split(input.shape, dim);
  if (useBoundSelection(s.size, k, std::is_same_v<T, float>)) {
    topkEachRow<BoundRowScratch<T>>(input, s, k, largest, outValues, outIndices,
                                    topkBoundRow<T>);
    return;
  }
  if constexpr (std::is_same_v<T, float>) {
    bool direct = useDirectSelection(s.size, k);
    if (direct || useRadixSelection(s.outer * s.inner, s.size, k)) {
      topkEachRow<RadixRowScratch>(input, s, k, largest, outValues, outIndices,
                                   direct ? topkDirectRow : topkRadixRow);
      return;
    }
  } else if constexpr (std::is_same_v<T, double> ||
                       std::is_same_v<T, int64_t>) {
    if (useDirectSelection(s.size, k)) {
      topkEachRow<WideRowScratch>(input, s, k, largest, outValues, outIndices,
                                  topkDirectRowWide<T>);
      return;
    }
  }
  selectRows(input, dim, k, largest, [&](int64_t r, auto &c) {
    int64_t o = r / s.inner, i = r % s.inner;
    int64_t out = o * k * s.inner + i;
    c.finishSorted(outIndices + out, s.inner);
    const T *row = input.data + o * s.size * s.inner + i;
    for (int64_t j = 0; j < k; ++j)
      outValues[out + j * s.inner] =
          row[outIndices[out + j * s.inner] * s.inner];
  });
}

template <typename T>
void kthvalue(UnrankedMemRefType<T> *in, UnrankedMemRefType<T> *values,
              UnrankedMemRefType<int64_t> *indices, int64_t k, int64_t dim) {
  View<T> input = view(in);
  T *outValues = view(values).data;
  int64_t *outIndices = view(indices).data;
  Split s = split(input.shape, dim);
  if (useBoundSelection(s.size, k, std::is_same_v<T, float>)) {
    kthEachRow<BoundRowScratch<T>>(input, s, k, outValues, outIndices,
                                   kthBoundRow<T>);
    return;
  }
  if constexpr (std::is_same_v<T, float>) {
    bool direct = useDirectSelection(s.size, k);
    if (direct || useRadixSelection(s.outer * s.inner, s.size, k)) {
      kthEachRow<RadixRowScratch>(input, s, k, outValues, outIndices,
                                  direct ? kthDirectRow : kthRadixRow);
      return;
    }
  } else if constexpr (std::is_same_v<T, double> ||
                       std::is_same_v<T, int64_t>) {
    if (useDirectSelection(s.size, k)) {
      kthEachRow<WideRowScratch>(input, s, k, outValues, outIndices,
                                 kthDirectRowWide<T>);
      return;
    }
  }
  // The k smallest in (value, index) order; the k-th of them is the
  // answer, reported at the lowest index holding its value (ops.md).
  selectRows(input, dim, k, /*largest=*/false, [&](int64_t r, auto &c) {
    int64_t o = r / s.inner, i = r % s.inner;
    int64_t index = c.finishKth();
    outValues[r] = input.data[(o * s.size + index) * s.inner + i];
    outIndices[r] = index;
  });
}

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
      auto step = [&](const T *at) {
        std::memcpy(&a, at, sizeof(a));
        std::memcpy(&b, at + kWidth, sizeof(b));
        ordered &= __builtin_convertvector((a == a) & (b == b), Mask);
        e0 = better(a, e0) ? a : e0;
        e1 = better(b, e1) ? b : e1;
      };
      int64_t i = start;
      for (; i + 2 * kWidth <= end; i += 2 * kWidth)
        step(span + i);
      if (i < end) {
        // The last block's tail, padded with the initial value.
        T tail[2 * kWidth];
        std::fill(tail, tail + 2 * kWidth, initial);
        std::memcpy(tail, span + i, (end - i) * sizeof(T));
        step(tail);
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
#endif // defined(__clang__)

/// argmax/argmin of the contiguous row x[0, n), n > 0: the first NaN if
/// any, else the lowest index of the extreme (-0.0 and +0.0 equal).
template <typename T>
void argRow(const T *row, int64_t n, bool isMax, T &value, int64_t &index) {
  T initial = lowestValue<T>(isMax);
#if defined(__clang__)
  // Rows shorter than the two passes' two vectors scan once, element by
  // element (argScanScalar): the passes' lane folds cost more than such a
  // row (argmax over dim 1 of 4096x10 f32: 68 -> 57 us at 1 thread,
  // PyTorch 48).
  if constexpr (std::is_floating_point_v<T>) {
    if (n < kiln::runtime::argShortRow(sizeof(T))) {
      value = initial;
      index = 0;
      argScanScalar(row, n, 1, 0, isMax, value, index);
      return;
    }
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

template <typename T>
void argReduce(UnrankedMemRefType<T> *in, UnrankedMemRefType<T> *values,
               UnrankedMemRefType<int64_t> *indices, int64_t dim, bool isMax,
               bool flatten) {
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
    // Short rows (fewer elements than two 512-bit vectors: argmax over 10
    // classes) are scanned 16 at a time, a row per lane: each group of 16
    // rows copied transposed into a tile, then argScan16 over its columns
    // (a scan per row is a serial compare-select chain, and a float select
    // a branch that mispredicts on random data: argmax over dim 1 of
    // 4096x10 f32 at 1 thread 56 -> 27 us, PyTorch 48).
    using kiln::runtime::kArgRowGroup;
    if (segments == 1 &&
        kiln::runtime::useArgRowGroups(s.outer, s.size, sizeof(T))) {
      static_assert(kArgRowGroup == 16, "a row per lane of argScan16");
      int64_t groups = s.outer / kArgRowGroup;
      parallelFor(
          groups, itemsPerChunk(kArgRowGroup * s.size, int64_t(1) << 16),
          [&](int64_t begin, int64_t end) {
            T tile[kiln::runtime::argShortRow(sizeof(T)) * kArgRowGroup];
            for (int64_t g = begin; g < end; ++g) {
              const T *rows = input.data + g * kArgRowGroup * s.size;
              for (int64_t r = 0; r < kArgRowGroup; ++r)
                for (int64_t j = 0; j < s.size; ++j)
                  tile[j * kArgRowGroup + r] = rows[r * s.size + j];
              argScan16Into(tile, s.size, kArgRowGroup, isMax,
                            outValues + g * kArgRowGroup,
                            outIndices + g * kArgRowGroup);
            }
          });
      for (int64_t o = groups * kArgRowGroup; o < s.outer; ++o)
        argRow(input.data + o * s.size, s.size, isMax, outValues[o],
               outIndices[o]);
      return;
    }
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
    std::vector<T> partValue(s.outer * segments);
    std::vector<int64_t> partIndex(s.outer * segments);
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

} // namespace

void kiln::runtime::resetProfile() {
  profile.assign(profile.size(), ProfileCount());
}

std::vector<kiln::runtime::ProfileCount> kiln::runtime::profileCounts() {
  return profile;
}

void kiln::runtime::resetErrors() {
  std::lock_guard<std::mutex> lock(errorMutex);
  hasError = false;
}

std::optional<IndexError> kiln::runtime::firstError() {
  std::lock_guard<std::mutex> lock(errorMutex);
  if (!hasError)
    return std::nullopt;
  return recordedError;
}

void kiln::runtime::setNumThreads(int threads) {
  numThreads = std::clamp(threads, 1, kMaxThreads);
  omp_set_num_threads(numThreads);
}

int kiln::runtime::getNumThreads() { return numThreads; }

void kiln::runtime::useNumThreadsOnThisThread() {
  if (omp_get_max_threads() != numThreads)
    omp_set_num_threads(numThreads);
}

void kiln::runtime::parallelFor(
    int64_t count, int64_t grain,
    const std::function<void(int64_t, int64_t)> &body) {
  // Chunks depend only on count, grain and the thread count; OpenMP's pool
  // is the one the generated loops use, so kernels never oversubscribe.
  int64_t chunks =
      std::min<int64_t>(numThreads, (count + std::max<int64_t>(grain, 1) - 1) /
                                        std::max<int64_t>(grain, 1));
  if (chunks <= 1) {
    if (count > 0)
      body(0, count);
    return;
  }
  int64_t per = (count + chunks - 1) / chunks;
#pragma omp parallel for schedule(static) num_threads(chunks)
  for (int64_t c = 0; c < chunks; ++c) {
    int64_t begin = c * per, end = std::min(count, begin + per);
    if (begin < end)
      body(begin, end);
  }
}

//===----------------------------------------------------------------------===//
// C entry points
//===----------------------------------------------------------------------===//

//===----------------------------------------------------------------------===//
// Buffer allocation for generated code
//===----------------------------------------------------------------------===//

namespace {

/// Header in front of every block handed to generated code.
struct alignas(64) BlockHeader {
  void *base;   // what std::malloc returned
  size_t bytes; // usable bytes requested
};

/// Freed blocks of 64 KiB and more by exact size, reused by the next
/// kernel or run: fresh ones would cost page faults every time. glibc maps
/// blocks from 128 KiB on with mmap and unmaps them when freed, so a chain
/// of kernels over 32768 floats faulted in every intermediate: 40 us per
/// add kernel on one thread, 4 us from the pool (1 MiB was the threshold
/// before).
constexpr size_t kCacheThreshold = size_t(1) << 16;
constexpr size_t kCacheLimit = size_t(4) << 30;
struct BlockPool {
  std::mutex mutex;
  std::map<size_t, std::vector<void *>> blocks;
  size_t bytes = 0;
};
/// Never destroyed: generated code may still run while static destructors
/// do (a detached thread, another static's destructor), and the blocks it
/// holds stay reachable for leak checkers at exit.
BlockPool &blockPool() {
  static BlockPool *pool = new BlockPool;
  return *pool;
}

/// The run in progress on this thread (runCatchingOutOfMemory): where a
/// failed allocation jumps to, and the blocks its entry function holds.
struct AllocationGuard {
  jmp_buf failed;
  size_t failedBytes = 0;
  std::unordered_set<void *> live;
};
thread_local AllocationGuard *activeGuard = nullptr;

/// The guard that tracks allocations here: the entry function's own code on
/// the run's thread, not a parallel loop's body.
AllocationGuard *trackingGuard() {
  return activeGuard && omp_get_level() == 0 ? activeGuard : nullptr;
}

void *allocateBlock(size_t bytes);

void *allocate(size_t bytes) {
  void *p = allocateBlock(bytes);
  AllocationGuard *guard = trackingGuard();
  if (p) {
    if (guard)
      guard->live.insert(p);
    return p;
  }
  if (guard) {
    guard->failedBytes = bytes;
    longjmp(guard->failed, 1);
  }
  // Inside a parallel loop there is no way back to the caller.
  std::fprintf(stderr,
               "kiln: out of memory: a kernel could not allocate %zu bytes\n",
               bytes);
  std::_Exit(2);
}

void *allocateBlock(size_t bytes) {
  if (bytes >= kCacheThreshold) {
    BlockPool &pool = blockPool();
    std::lock_guard<std::mutex> lock(pool.mutex);
    auto it = pool.blocks.find(bytes);
    if (it != pool.blocks.end() && !it->second.empty()) {
      void *p = it->second.back();
      it->second.pop_back();
      pool.bytes -= bytes;
      return p;
    }
  }
  uintptr_t start;
  void *base;
  if (bytes >= kiln::runtime::kHugePageThreshold) {
    // On huge pages (HugePages.h): the block starts 2 MiB into the
    // allocation, its header at the end of the first (unadvised) 2 MiB.
    size_t rounded = kiln::runtime::roundUp(bytes, kiln::runtime::kHugePage);
    base = std::aligned_alloc(kiln::runtime::kHugePage,
                              kiln::runtime::kHugePage + rounded);
    if (!base)
      return nullptr;
    start = reinterpret_cast<uintptr_t>(base) + kiln::runtime::kHugePage;
    kiln::runtime::adviseHugePages(reinterpret_cast<void *>(start), rounded);
  } else {
    base = std::malloc(bytes + 2 * sizeof(BlockHeader));
    if (!base)
      return nullptr;
    start = reinterpret_cast<uintptr_t>(base) + sizeof(BlockHeader);
    start = (start + 63) & ~uintptr_t(63);
  }
  auto *header = reinterpret_cast<BlockHeader *>(start) - 1;
  header->base = base;
  header->bytes = bytes;
  return reinterpret_cast<void *>(start);
}

void release(void *p) {
  if (!p)
    return;
  if (AllocationGuard *guard = trackingGuard())
    guard->live.erase(p);
  auto *header = static_cast<BlockHeader *>(p) - 1;
  size_t bytes = header->bytes;
  if (bytes >= kCacheThreshold) {
    BlockPool &pool = blockPool();
    std::lock_guard<std::mutex> lock(pool.mutex);
    if (pool.bytes + bytes <= kCacheLimit) {
      pool.blocks[bytes].push_back(p);
      pool.bytes += bytes;
      return;
    }
  }
  std::free(header->base);
}

} // namespace

size_t kiln::runtime::runCatchingOutOfMemory(void (*entry)(void **),
                                             void **pointers) {
  AllocationGuard guard;
  AllocationGuard *outer = activeGuard;
  activeGuard = &guard;
  if (setjmp(guard.failed) == 0) {
    entry(pointers);
    activeGuard = outer;
    return 0;
  }
  // An allocation failed: the entry's frames are gone, its blocks are not.
  activeGuard = outer;
  for (void *p : guard.live)
    release(p);
  return guard.failedBytes;
}

extern "C" {

// Generated code allocates through these (the JIT binds malloc, free and
// aligned_alloc to them); every block is 64-byte aligned.
void *kiln_rt_malloc(size_t bytes) { return allocate(bytes); }
void *kiln_rt_aligned_alloc(size_t alignment, size_t bytes) {
  return alignment <= 64 ? allocate(bytes) : nullptr;
}
void kiln_rt_free(void *p) { release(p); }

// The thread count of the run (kiln-run --threads, the API's setting):
// generated code splits some work into as many groups.
int64_t kiln_rt_num_threads() { return kiln::runtime::getNumThreads(); }

/// Timers of kiln-profile-kernels: the sequential entry code calls enter
/// right before a kernel and exit right after it.
void kiln_rt_profile_enter(int64_t site) {
  if (site < 0)
    return;
  if (static_cast<size_t>(site) >= profileStarts.size()) {
    profileStarts.resize(site + 1);
    profile.resize(site + 1);
  }
  profileStarts[site] = std::chrono::steady_clock::now();
}
void kiln_rt_profile_exit(int64_t site) {
  if (site < 0 || static_cast<size_t>(site) >= profileStarts.size())
    return;
  profile[site].ms +=
      std::chrono::duration<double, std::milli>(
          std::chrono::steady_clock::now() - profileStarts[site])
          .count();
  ++profile[site].calls;
}

// Keeps the least report by (site, index, size): sites are numbered in
// program order (convert-kiln-to-linalg), so the earliest failing check
// wins, and among the reports of one check made concurrently by the
// threads of a parallel loop (an upstream tensor.extract in a
// linalg.generic body) the least index wins, then the least size (one
// access of a dynamically sized buffer). The message does not depend on
// the thread count or on which thread got there first; the GPU's record
// keeps the same report (GpuErrorRecord.h). (Kiln's own checks report
// once per run, their first bad index in row-major order.)
void _mlir_ciface_kiln_rt_index_error(int64_t site, int64_t index,
                                      int64_t size) {
  std::lock_guard<std::mutex> lock(errorMutex);
  if (hasError &&
      std::make_tuple(recordedError.site, recordedError.index,
                      recordedError.size) <= std::make_tuple(site, index, size))
    return;
  recordedError = {site, index, size};
  hasError = true;
}

// The positions of `index` (row-major), stably sorted by the target each
// names (its value, negative ones counted from the end when `wrap`, in
// [0, size): checked before the call), and where each target's run starts:
// order[starts[t] .. starts[t + 1]) are target t's positions in ascending
// order. A counting sort. The GPU's scatters use this (see Cuda.cpp); the
// CPU only with the lowering's `sorted-scatters` option.
void _mlir_ciface_kiln_rt_sort_positions(UnrankedMemRefType<int64_t> *index,
                                         UnrankedMemRefType<int64_t> *order,
                                         UnrankedMemRefType<int64_t> *starts,
                                         int64_t size, bool wrap) {
  View<int64_t> in = view(index);
  int64_t count = kiln::runtime::detail::numElements(in.shape);
  int64_t *orderData = view(order).data, *startsData = view(starts).data;
  if (size <= 0) { // no targets (the lowering never asks): no runs
    startsData[0] = 0;
    return;
  }
  auto target = [&](int64_t p) {
    int64_t v = in.data[p];
    if (wrap && v < 0)
      v += size;
    return v >= 0 && v < size ? v : 0;
  };
  std::fill(startsData, startsData + size + 1, 0);
  for (int64_t p = 0; p < count; ++p)
    ++startsData[target(p) + 1];
  for (int64_t t = 0; t < size; ++t)
    startsData[t + 1] += startsData[t];
  // starts[t] serves as target t's cursor, then is restored.
  for (int64_t p = 0; p < count; ++p)
    orderData[startsData[target(p)]++] = p;
  for (int64_t t = size; t > 0; --t)
    startsData[t] = startsData[t - 1];
  startsData[0] = 0;
}

#define KILN_SELECTION_ENTRY_POINTS(T, SUFFIX)                                 \
  void _mlir_ciface_kiln_rt_topk_##SUFFIX(                                     \
      UnrankedMemRefType<T> *in, UnrankedMemRefType<T> *values,                \
      UnrankedMemRefType<int64_t> *indices, int64_t k, int64_t dim,            \
      bool largest, bool /*sorted: results are always sorted*/) {              \
    topk(in, values, indices, k, dim, largest);                                \
  }                                                                            \
  void _mlir_ciface_kiln_rt_kthvalue_##SUFFIX(                                 \
      UnrankedMemRefType<T> *in, UnrankedMemRefType<T> *values,                \
      UnrankedMemRefType<int64_t> *indices, int64_t k, int64_t dim, bool,      \
      bool) {                                                                  \
    kthvalue(in, values, indices, k, dim);                                     \
  }

#define KILN_ARG_ENTRY_POINT(T, SUFFIX)                                        \
  void _mlir_ciface_kiln_rt_argreduce_##SUFFIX(                                \
      UnrankedMemRefType<T> *in, UnrankedMemRefType<T> *values,                \
      UnrankedMemRefType<int64_t> *indices, int64_t /*k*/, int64_t dim,        \
      bool isMax, bool flatten) {                                              \
    argReduce(in, values, indices, dim, isMax, flatten);                       \
  }
KILN_ARG_ENTRY_POINT(float, f32)
KILN_ARG_ENTRY_POINT(double, f64)
KILN_ARG_ENTRY_POINT(int64_t, i64)
#undef KILN_ARG_ENTRY_POINT

KILN_SELECTION_ENTRY_POINTS(float, f32)
KILN_SELECTION_ENTRY_POINTS(double, f64)
KILN_SELECTION_ENTRY_POINTS(int64_t, i64)
#undef KILN_SELECTION_ENTRY_POINTS
}

std::vector<std::pair<llvm::StringRef, void *>> kiln::runtime::kernelSymbols() {
  return {
      {"malloc", reinterpret_cast<void *>(&kiln_rt_malloc)},
      {"aligned_alloc", reinterpret_cast<void *>(&kiln_rt_aligned_alloc)},
      {"kiln_rt_num_threads", reinterpret_cast<void *>(&kiln_rt_num_threads)},
      {"kiln_rt_profile_enter",
       reinterpret_cast<void *>(&kiln_rt_profile_enter)},
      {"kiln_rt_profile_exit", reinterpret_cast<void *>(&kiln_rt_profile_exit)},
      {"free", reinterpret_cast<void *>(&kiln_rt_free)},
      {"_mlir_ciface_kiln_rt_index_error",
       reinterpret_cast<void *>(&_mlir_ciface_kiln_rt_index_error)},
#define KILN_SYMBOL(NAME) {#NAME, reinterpret_cast<void *>(&NAME)}
      KILN_SYMBOL(_mlir_ciface_kiln_rt_topk_f32),
      KILN_SYMBOL(_mlir_ciface_kiln_rt_topk_f64),
      KILN_SYMBOL(_mlir_ciface_kiln_rt_topk_i64),
      KILN_SYMBOL(_mlir_ciface_kiln_rt_kthvalue_f32),
      KILN_SYMBOL(_mlir_ciface_kiln_rt_kthvalue_f64),
      KILN_SYMBOL(_mlir_ciface_kiln_rt_kthvalue_i64),
      KILN_SYMBOL(_mlir_ciface_kiln_rt_argreduce_f32),
      KILN_SYMBOL(_mlir_ciface_kiln_rt_argreduce_f64),
      KILN_SYMBOL(_mlir_ciface_kiln_rt_argreduce_i64),
      KILN_SYMBOL(_mlir_ciface_kiln_rt_sort_positions),
#undef KILN_SYMBOL
  };
}
