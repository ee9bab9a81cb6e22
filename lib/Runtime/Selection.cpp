//===- Selection.cpp - topk and kthvalue on the CPU -----------------------===//
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

#include "KernelSupport.h"
#include "MemRefViews.h"

#include "mlir/ExecutionEngine/CRunnerUtils.h"

#include "llvm/Support/MathExtras.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

using namespace kiln::runtime;
// The helpers of KernelSupport.h and MemRefViews.h.
using namespace kiln::runtime::detail;

namespace {

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
  ScratchVector<T> buffer;
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
void sortDistinctDescending(Word *keys, size_t n,
                            ScratchVector<Word> &scratch) {
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
                    ScratchVector<Word> &scratch) {
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
  /// Rows of `rowLength` (or segments of that length) will be offered: the
  /// buffer is reserved for at most that many (a segment of a row split
  /// across threads offers only its own elements; merging grows the
  /// buffer).
  Collector(int64_t k, bool largest,
            int64_t rowLength = std::numeric_limits<int64_t>::max())
      : k(k), capacity(2 * k + 16), largest(largest) {
    candidates.reserve(std::min(capacity, rowLength));
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
  ScratchVector<Candidate> candidates;
  bool thresholdSet = false;
  T thresholdValue{};
  int64_t thresholdIndex = 0;
};

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

/// The value of a selection key made with `largest` (the inverse of
/// selectionKey but for the sign of zero; NaN for NaN's key).
inline float valueOfKey(uint32_t key, bool largest, float) {
  if (largest ? key == 0xFFFFFFFFu : key == 0u)
    return std::numeric_limits<float>::quiet_NaN();
  if (!largest)
    key = ~key;
  uint32_t bits = (key & 0x80000000u) ? (key & 0x7FFFFFFFu) : ~key;
  float v;
  std::memcpy(&v, &bits, sizeof(v));
  return v;
}
inline double valueOfKey(uint64_t key, bool largest, double) {
  if (largest ? key == ~uint64_t(0) : key == 0)
    return std::numeric_limits<double>::quiet_NaN();
  if (!largest)
    key = ~key;
  uint64_t sign = uint64_t(1) << 63;
  uint64_t bits = (key & sign) ? (key & ~sign) : ~key;
  double v;
  std::memcpy(&v, &bits, sizeof(v));
  return v;
}
inline int64_t valueOfKey(uint64_t key, bool largest, int64_t) {
  return int64_t((largest ? key : ~key) ^ (uint64_t(1) << 63));
}

/// The packed collector: each (value, index) pair is packed into one word
/// whose unsigned order is the selection order (better is greater): a
/// monotone key of the value (selectionKey: NaN greatest for largest,
/// least for smallest) above the complemented index (lower index is
/// better) -- f32's a uint64 of two 32-bit halves, whose rows must have
/// fewer than 2^32 elements (callers fall back to Collector<float>), f64's
/// and i64's a WideWord of two 64-bit halves. Selection and sorting then
/// compare plain integers. (f64 and i64 kept (value, index) pairs in a
/// Collector before, compacted by nth_element with the NaN-aware compare:
/// f64 topk over 2048x32768 at 1 thread, with the inlined prefilter of the
/// scans below, k=64 71 -> 54 ms, k=200 138 -> 93.)
///
/// For small k (up to 32, in rows long enough: useSortedCollector) the best
/// k are kept sorted (best first) and each accepted key is inserted in
/// place, so the threshold is the exact k-th best of everything seen so
/// far (not one that lags by a buffer of offers): fewer elements pass the
/// block prefilter, and there is no selection to run. topk k=16 over
/// 4096x32768: 34 -> 28 ms at 1 thread. Otherwise they collect into a
/// buffer of 2k+16 compacted by selectGreatest.
template <typename T> class PackedCollector {
public:
  using Key = decltype(selectionKey(T(), true));
  using Word = decltype(packWord(Key(), int64_t()));

  /// Rows of `rowLength` (or segments of that length) will be offered.
  PackedCollector(int64_t k, bool largest,
                  int64_t rowLength = std::numeric_limits<int64_t>::max())
      : k(k), sorted(kiln::runtime::useSortedCollector(k, rowLength)),
        capacity(sorted ? k : 2 * k + 16), largest(largest) {
    keys.reserve(std::min(capacity, rowLength));
  }

  /// Empty again, for the next row (keeps the buffer).
  void reset() {
    keys.clear();
    thresholdSet = false;
  }

  bool hasThreshold() const { return thresholdSet; }
  T threshold() const { return thresholdValue; }

  void offer(T v, int64_t i) {
    offerKey(packWord(selectionKey(v, largest), i));
  }

  void merge(const PackedCollector &other) {
    for (Word key : other.keys)
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
  /// The value of a word's key, for the prefilter.
  T valueOf(Word word) const {
    return valueOfKey(Key(wordKey(word)), largest, T());
  }

  void offerKey(Word key) {
    if (thresholdSet && !(key > thresholdKey))
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
  void insertSorted(Word key) {
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
  ScratchVector<Word> keys, scratch;
  bool thresholdSet = false;
  Word thresholdKey{};
  T thresholdValue{};
};

#if defined(__clang__)
/// The 32 bits of `test` (a compare of vectors) on x[0, 32), a 64-byte
/// vector at a time.
template <typename T, typename Test>
__attribute__((always_inline)) inline uint32_t maskOf32(const T *x, Test test) {
  constexpr int kLanes = 64 / sizeof(T);
  typedef T Vector __attribute__((ext_vector_type(kLanes)));
  uint32_t mask = 0;
  for (int part = 0; part < 32 / kLanes; ++part) {
    Vector v;
    std::memcpy(&v, x + part * kLanes, sizeof(v));
    mask |= laneBits(test(v)) << (part * kLanes);
  }
  return mask;
}

/// candidateMask inlined: a compare per 64-byte vector whose i1 lanes are
/// the mask bits (one vcmpps/vcmppd/vpcmpq + kmov each with AVX-512), for
/// the scans below.
template <typename T>
__attribute__((always_inline)) inline uint32_t
candidateMaskInline(const T *x, T threshold, bool largest) {
  if (largest)
    return maskOf32(x, [&](auto v) { return !(v <= threshold); });
  return maskOf32(x, [&](auto v) { return !(v >= threshold); });
}
#else
template <typename T>
inline uint32_t candidateMaskInline(const T *x, T threshold, bool largest) {
  uint32_t mask = 0;
  for (uint32_t j = 0; j < 32; ++j)
    mask |= uint32_t(largest ? !(x[j] <= threshold) : !(x[j] >= threshold))
            << j;
  return mask;
}
#endif
/// Bit j set when x[j] (j < 32) might beat `threshold` (NaN-aware: !(x <=
/// t) is true for NaN x or NaN t, and the exact check then decides),
/// compiled per instruction set: the prefilter of `scan` for the
/// (value, index) collector of f32 rows of 2^32 elements or more.
KILN_VECTORIZE uint32_t candidateMask(const float *x, float threshold,
                                      bool largest) {
  return candidateMaskInline(x, threshold, largest);
}

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

/// The packed collectors' scans as one function per instruction set and
/// element type (the mask test inlines into the loop instead of an
/// indirect call per 32 elements: f64 topk k=64 over 2048x32768, a third of
/// the time in the call).
#define KILN_PACKED_SCAN(T, NAME)                                              \
  KILN_VECTORIZE void NAME(const T *x, int64_t begin, int64_t end,             \
                           PackedCollector<T> &collector, bool largest) {      \
    scanWith(x, begin, end, collector, largest,                                \
             [](const T *block, T threshold, bool isLargest) {                 \
               return candidateMaskInline(block, threshold, isLargest);        \
             });                                                               \
  }                                                                            \
  inline void scan(const T *x, int64_t begin, int64_t end,                     \
                   PackedCollector<T> &collector, bool largest) {              \
    NAME(x, begin, end, collector, largest);                                   \
  }
KILN_PACKED_SCAN(float, scanF32)
KILN_PACKED_SCAN(double, scanF64)
KILN_PACKED_SCAN(int64_t, scanI64)
#undef KILN_PACKED_SCAN

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
  ScratchVector<std::unique_ptr<CollectorT>> partial(
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

/// keys[i] = selectionKey(row[i]) for a whole row (branch-free: vectorized
/// per instruction set).
KILN_VECTORIZE void selectionKeys(const float *row, int64_t n, bool largest,
                                  uint32_t *keys) {
  for (int64_t i = 0; i < n; ++i)
    keys[i] = selectionKey(row[i], largest);
}

/// Byte `digit` of a packed word, from the least significant,
/// complemented: counting sorts by it in ascending order sort the words in
/// descending order.
inline uint8_t complementedByte(uint64_t word, int digit) {
  return uint8_t(~word >> (8 * digit));
}
inline uint8_t complementedByte(const WideWord &word, int digit) {
  return uint8_t(~(digit < 8 ? word.index : word.key) >> (8 * (digit % 8)));
}

/// Sorts distinct packed (key, ~index) words, greatest first: an LSD radix
/// sort (a pass per byte, skipping bytes every word shares -- an index's
/// high bytes, often many of a 64-bit key's) for the hundreds of winners of
/// a large-k topk, where it beats comparison sorting; std::sort below that.
template <typename Word>
void sortDescending(Word *words, size_t n, ScratchVector<Word> &buffer) {
  if (n < 256) {
    sortDistinctDescending(words, n, buffer);
    return;
  }
  if (buffer.size() < n)
    buffer.resize(n);
  Word *from = words, *to = buffer.data();
  for (int digit = 0; digit < int(sizeof(Word)); ++digit) {
    size_t count[256] = {};
    for (size_t i = 0; i < n; ++i)
      ++count[complementedByte(from[i], digit)];
    if (count[complementedByte(from[0], digit)] == n)
      continue; // every word has this byte: nothing to reorder
    size_t offset = 0;
    for (size_t &c : count) {
      size_t next = offset + c;
      c = offset;
      offset = next;
    }
    for (size_t i = 0; i < n; ++i)
      to[count[complementedByte(from[i], digit)]++] = from[i];
    std::swap(from, to);
  }
  if (from != words)
    std::copy(from, from + n, words);
}

/// Runs `body(p, first, last)` on each of `parts` ranges [first, last) of n
/// positions (of equal length but the last; empty ones skipped), the parts
/// in parallel: how the passes over a long row are split across threads.
template <typename Body> void forEachPart(int64_t n, int64_t parts, Body body) {
  int64_t length = (n + parts - 1) / parts;
  parallelFor(parts, 1, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      int64_t first = p * length, last = std::min(n, first + length);
      if (first < last)
        body(p, first, last);
    }
  });
}

/// Sorts of more words than this use every thread in sortDescending's
/// parallel form.
constexpr size_t kParallelSortMin = size_t(1) << 16;

/// sortDescending with `parts` threads, for the winners of a long row's
/// topk: a sample sort. Splitters from a sample of the words cut them into
/// 4 buckets per thread (the words are distinct, so each has one bucket);
/// the threads count their ranges' words per bucket, then scatter them
/// into place, and the buckets are sorted in parallel. The
/// order is the words' own, so the result does not depend on the parts.
template <typename Word>
void sortDescending(Word *words, size_t n, ScratchVector<Word> &buffer,
                    int64_t parts) {
  if (parts <= 1 || n < kParallelSortMin) {
    sortDescending(words, n, buffer);
    return;
  }
  size_t buckets = 4 * size_t(parts), perBucket = 64;
  ScratchVector<Word> sample(buckets * perBucket);
  for (size_t j = 0; j < sample.size(); ++j)
    sample[j] = words[j * n / sample.size()];
  std::sort(sample.begin(), sample.end(), std::greater<Word>());
  // Bucket b holds the words not above splitters[b - 1] and above
  // splitters[b] (the greatest words in bucket 0).
  ScratchVector<Word> splitters(buckets - 1);
  for (size_t b = 0; b + 1 < buckets; ++b)
    splitters[b] = sample[(b + 1) * perBucket - 1];
  // A word's bucket: how many splitters are not below it (branch-free
  // compares; a binary search mispredicted), kept for the scatter.
  ScratchVector<uint16_t> bucketOf(n);
  ScratchVector<size_t> offsets(parts * buckets, 0);
  forEachPart(n, parts, [&](int64_t p, int64_t first, int64_t last) {
    for (int64_t i = first; i < last; ++i) {
      size_t bucket = 0;
      for (const Word &splitter : splitters)
        bucket += !(words[i] > splitter);
      bucketOf[i] = uint16_t(bucket);
      ++offsets[p * buckets + bucket];
    }
  });
  // Each range's start in each bucket: buckets in order, ranges in order
  // within a bucket.
  ScratchVector<size_t> starts(buckets + 1, 0);
  size_t at = 0;
  for (size_t b = 0; b < buckets; ++b) {
    starts[b] = at;
    for (int64_t p = 0; p < parts; ++p) {
      size_t count = offsets[p * buckets + b];
      offsets[p * buckets + b] = at;
      at += count;
    }
  }
  starts[buckets] = n;
  if (buffer.size() < n)
    buffer.resize(n);
  forEachPart(n, parts, [&](int64_t p, int64_t first, int64_t last) {
    for (int64_t i = first; i < last; ++i)
      buffer[offsets[p * buckets + bucketOf[i]]++] = words[i];
  });
  parallelFor(buckets, 1, [&](int64_t begin, int64_t end) {
    ScratchVector<Word> scratch;
    for (int64_t b = begin; b < end; ++b) {
      Word *first = buffer.data() + starts[b];
      size_t count = starts[b + 1] - starts[b];
      sortDescending(first, count, scratch);
      std::copy(first, first + count, words + starts[b]);
    }
  });
}

/// Scratch of radix selection (topkRadixRow, kthRadixRow), reused across
/// the rows of a thread: the keys of a row (rows up to kStoredKeysMax), the
/// candidates as packed words, and a buffer for selecting and sorting them.
struct RadixRowScratch {
  ScratchVector<uint64_t> candidates, sortBuffer;
  ScratchVector<uint32_t> keys;
};

/// Bits of the bucket histogram of radix selection.
constexpr int kRadixBucketBits = 12;

/// Rows of up to this many elements keep their keys in the scratch, each
/// computed once for the passes that read them (4 MB of keys: the row of
/// 4 MB is in the L2 or L3 cache for the next pass). Longer rows compute
/// their keys again in each pass, a chunk of kKeyChunk at a time (8 KB on
/// the stack, in L1): the array took 4 bytes per element, written once and
/// read twice from memory (kthvalue median of 2^24 floats: level at 22-24
/// ms either way, where the median of 4096 rows of 32768 took 5-10% longer
/// computing the keys twice), and a row of 2^31 floats needed 8 GB for it.
constexpr int64_t kStoredKeysMax = int64_t(1) << 20;
constexpr int64_t kKeyChunk = 2048;

/// The keys of `row` (`largest` as for topk) stored in `scratch` when the
/// row is short enough (kStoredKeysMax); otherwise null.
const uint32_t *storedKeys(const float *row, int64_t n, bool largest,
                           RadixRowScratch &scratch) {
  if (n > kStoredKeysMax)
    return nullptr;
  scratch.keys.resize(n);
  selectionKeys(row, n, largest, scratch.keys.data());
  return scratch.keys.data();
}

/// Calls `visit(first, keys, m)` for the chunks of `row` in order, while it
/// returns true: the keys (`largest` as for topk) of its elements [first,
/// first + m) -- all of them at once from `stored` when given, else
/// computed per chunk.
template <typename Visit>
void forEachKeyChunk(const float *row, int64_t n, bool largest,
                     const uint32_t *stored, Visit visit) {
  if (stored) {
    visit(0, stored, n);
    return;
  }
  uint32_t keys[kKeyChunk];
  for (int64_t first = 0; first < n; first += kKeyChunk) {
    int64_t m = std::min(kKeyChunk, n - first);
    selectionKeys(row + first, m, largest, keys);
    if (!visit(first, keys, m))
      return;
  }
}

/// Adds to `counts` (1 << kRadixBucketBits of them) how many keys of the
/// row (`largest` as for topk) have each value of the top kRadixBucketBits.
void countTopBits(const float *row, int64_t n, bool largest,
                  const uint32_t *stored, int64_t *counts) {
  constexpr int kBits = kRadixBucketBits;
  // Four interleaved histograms: keys cluster in few buckets, and
  // back-to-back increments of one counter would serialize.
  uint32_t partial[4][1 << kBits] = {};
  forEachKeyChunk(row, n, largest, stored,
                  [&](int64_t, const uint32_t *keys, int64_t m) {
                    int64_t i = 0;
                    for (; i + 4 <= m; i += 4)
                      for (int h = 0; h < 4; ++h)
                        ++partial[h][keys[i + h] >> (32 - kBits)];
                    for (; i < m; ++i)
                      ++partial[0][keys[i] >> (32 - kBits)];
                    return true;
                  });
  for (int b = 0; b < (1 << kBits); ++b)
    counts[b] +=
        int64_t(partial[0][b]) + partial[1][b] + partial[2][b] + partial[3][b];
}

/// The digit (of `bits` bits, counted in `counts`) holding the `rank`-th
/// greatest key, walking from the greatest digit down; `rank` becomes the
/// key's rank within the digit, and `above` counts the keys passed over.
uint32_t pickDigit(const int64_t *counts, int bits, int64_t &rank,
                   int64_t &above) {
  for (uint32_t digit = (uint32_t(1) << bits) - 1;; --digit) {
    if (counts[digit] >= rank || digit == 0)
      return digit;
    rank -= counts[digit];
    above += counts[digit];
  }
}

/// The first pass of radix selection over a row: the bucket (the top
/// kRadixBucketBits of a key, `largest` as for topk) holding the k-th
/// greatest key; `above` is how many keys lie in greater buckets, and
/// `bucketSize` (when given) how many in the bucket.
uint32_t radixSelectBucket(const float *row, int64_t n, int64_t k, bool largest,
                           const uint32_t *stored, int64_t &above,
                           int64_t *bucketSize = nullptr) {
  int64_t counts[1 << kRadixBucketBits] = {};
  countTopBits(row, n, largest, stored, counts);
  above = 0;
  int64_t rank = k;
  uint32_t bucket = pickDigit(counts, kRadixBucketBits, rank, above);
  if (bucketSize)
    *bucketSize = counts[bucket];
  return bucket;
}

/// Buckets holding more keys than this are not collected: radix selection
/// refines the bucket's bits instead (exactKey), two more passes over the
/// row, to the exact key. A row of few distinct values (an all-equal row
/// puts every key in one bucket) had every element packed and selected:
/// kthvalue of 2^26 equal floats took 4.1 s and 512 MB.
constexpr int64_t kRadixCollectMax = int64_t(1) << 14;

KILN_VECTORIZE void histogramRange(const uint32_t *keys, int64_t m, uint32_t lo,
                                   uint32_t span, int shift, uint32_t digits,
                                   uint32_t *histogram);

/// Adds to `counts` (1 << bits of them) how many keys of the row with the
/// top `known` bits `prefix` have each value of their next `bits` bits.
void countPrefixed(const float *row, int64_t n, bool largest,
                   const uint32_t *stored, int known, int bits, uint32_t prefix,
                   int64_t *counts) {
  int shift = 32 - known - bits;
  uint32_t digits = (uint32_t(1) << bits) - 1;
  uint32_t histogram[1 << 12] = {};
  // The keys with the prefix: [lo, lo + span].
  uint32_t span = ~uint32_t(0) >> known, lo = prefix << (32 - known);
  forEachKeyChunk(row, n, largest, stored,
                  [&](int64_t, const uint32_t *keys, int64_t m) {
                    histogramRange(keys, m, lo, span, shift, digits, histogram);
                    return true;
                  });
  for (uint32_t d = 0; d <= digits; ++d)
    counts[d] += histogram[d];
}

/// Radix selection's further levels: from the first level's `bucket`, the
/// key sought (the `rank`-th greatest among the keys in the bucket) takes
/// 12 and then 8 more bits, each from the counts of the keys with the
/// prefix so far by their next bits, which `count(known, bits, prefix,
/// counts)` adds to `counts` (zeroed, 1 << bits of them); returns the key
/// exactly. `rank` becomes its rank among its equal keys, `above` counts
/// the keys passed over (all the greater keys, with the first level's), and
/// `equal` (when given) the keys equal to it.
template <typename Count>
uint32_t exactKeyFrom(uint32_t bucket, int64_t &rank, int64_t &above,
                      Count count, int64_t *equal = nullptr) {
  uint32_t prefix = bucket;
  int known = kRadixBucketBits;
  for (int bits : {12, 32 - kRadixBucketBits - 12}) {
    int64_t counts[1 << 12] = {};
    count(known, bits, prefix, counts);
    uint32_t digit = pickDigit(counts, bits, rank, above);
    prefix = (prefix << bits) | digit;
    known += bits;
    if (equal)
      *equal = counts[digit];
  }
  return prefix;
}

/// exactKeyFrom over one row (`largest` as for topk), the k-th greatest key;
/// `above` keys in buckets greater than `bucket`, then all greater keys;
/// `equal` (when given) the keys equal to it.
uint32_t exactKey(const float *row, int64_t n, int64_t k, bool largest,
                  const uint32_t *stored, uint32_t bucket, int64_t &above,
                  int64_t *equal = nullptr) {
  int64_t rank = k - above;
  return exactKeyFrom(
      bucket, rank, above,
      [&](int known, int bits, uint32_t prefix, int64_t *counts) {
        countPrefixed(row, n, largest, stored, known, bits, prefix, counts);
      },
      equal);
}

/// Whether topk by radix selection collects the k-th best key's ties with
/// the keys above it, in one pass: when they are few (at most k +
/// kRadixCollectMax); otherwise the keys above it are collected and then
/// the first of its ties, as many as complete the k (a pass that stops
/// there, but that ran to the last tie: one tie of the 1048576th of 2^24
/// floats is halfway along the row on average).
inline bool collectTies(int64_t equal, int64_t k) {
  return equal <= k + kRadixCollectMax;
}

/// Packs the positions [first, first + m) whose keys (`keys[0, m)`) lie in
/// [lo, lo + span] as (key, ~index) words into `words` from `count` on, in
/// row order; returns the new count. A vector compare per 16 keys gives
/// each block of 32 its mask of candidates, and only set bits are packed:
/// a block without one (most, when a bucket of the histogram is the
/// target) costs two compares and a branch. The branch-free loop before,
/// every word stored and the count advanced when it qualified, waited on
/// the count each element (kthvalue median of 2^24 floats: 13 ms of 22).
#if defined(__clang__)
/// Bit i set when keys[i] - lo <= span (unsigned), for 32 keys of 32 or 64
/// bits.
template <typename Key>
__attribute__((always_inline)) inline uint32_t rangeMask32(const Key *keys,
                                                           Key lo, Key span) {
  return maskOf32(keys, [&](auto v) { return (v - lo) <= span; });
}
#endif
template <typename Key, typename Word>
__attribute__((always_inline)) inline int64_t
collectRangeOf(const Key *keys, int64_t m, int64_t first, Key lo, Key span,
               Word *words, int64_t count) {
  int64_t j = 0;
#if defined(__clang__)
  for (; j + 32 <= m; j += 32) {
    for (uint32_t mask = rangeMask32(keys + j, lo, span); mask;
         mask &= mask - 1) {
      int bit = __builtin_ctz(mask);
      words[count++] = packWord(keys[j + bit], first + j + bit);
    }
  }
#endif
  for (; j < m; ++j)
    if (Key(keys[j] - lo) <= span)
      words[count++] = packWord(keys[j], first + j);
  return count;
}
KILN_VECTORIZE int64_t collectRange(const uint32_t *keys, int64_t m,
                                    int64_t first, uint32_t lo, uint32_t span,
                                    uint64_t *words, int64_t count) {
  return collectRangeOf(keys, m, first, lo, span, words, count);
}
/// collectRange of 64-bit keys (f64's and i64's) into WideWords.
KILN_VECTORIZE int64_t collectRange(const uint64_t *keys, int64_t m,
                                    int64_t first, uint64_t lo, uint64_t span,
                                    WideWord *words, int64_t count) {
  return collectRangeOf(keys, m, first, lo, span, words, count);
}

/// Counts the keys of `keys[0, m)` in [lo, lo + span] by their digit (key
/// >> shift) & digits, found as collectRange finds candidates: most keys of
/// a long row lie outside the prefix radix selection refines, and a
/// branch-free histogram adding 0 for them waited on its counters (the
/// 262144th of 2^24 floats: 28 ms).
KILN_VECTORIZE void histogramRange(const uint32_t *keys, int64_t m, uint32_t lo,
                                   uint32_t span, int shift, uint32_t digits,
                                   uint32_t *histogram) {
  int64_t j = 0;
#if defined(__clang__)
  for (; j + 32 <= m; j += 32)
    for (uint32_t mask = rangeMask32(keys + j, lo, span); mask;
         mask &= mask - 1)
      ++histogram[(keys[j + __builtin_ctz(mask)] >> shift) & digits];
#endif
  for (; j < m; ++j)
    if (keys[j] - lo <= span)
      ++histogram[(keys[j] >> shift) & digits];
}

/// Packs every position of the row whose key (`largest` as for topk) lies
/// in [lo, lo + span] as a (key, ~index) word into `scratch.candidates`, in
/// row order; returns how many. The buffer holds the candidates so far
/// and room for a chunk's: its size follows the candidates, not the row
/// (it only grows, and without initialization).
int64_t collectKeys(const float *row, int64_t n, bool largest,
                    const uint32_t *stored, RadixRowScratch &scratch,
                    uint32_t lo, uint32_t span) {
  ScratchVector<uint64_t> &candidates = scratch.candidates;
  int64_t count = 0;
  forEachKeyChunk(row, n, largest, stored,
                  [&](int64_t first, const uint32_t *keys, int64_t m) {
                    size_t room = static_cast<size_t>(count + m) + 1;
                    if (candidates.size() < room)
                      candidates.resize(std::max(room, 2 * candidates.size()));
                    count = collectRange(keys, m, first, lo, span,
                                         candidates.data(), count);
                    return true;
                  });
  return count;
}

/// Appends to `candidates` (holding `count` words) the positions of the row
/// whose key is `key`, in row order, until it holds `limit`; returns the
/// new count.
int64_t collectEqual(const float *row, int64_t n, bool largest,
                     const uint32_t *stored,
                     ScratchVector<uint64_t> &candidates, uint32_t key,
                     int64_t count, int64_t limit) {
  if (candidates.size() < static_cast<size_t>(limit))
    candidates.resize(limit);
  forEachKeyChunk(row, n, largest, stored,
                  [&](int64_t first, const uint32_t *keys, int64_t m) {
                    for (int64_t j = 0; j < m && count < limit; ++j)
                      if (keys[j] == key)
                        candidates[count++] = packWord(key, first + j);
                    return count < limit;
                  });
  return count;
}

/// The lowest position of the row holding `key`.
int64_t firstOfKey(const float *row, int64_t n, bool largest,
                   const uint32_t *stored, uint32_t key) {
  int64_t found = n;
  forEachKeyChunk(row, n, largest, stored,
                  [&](int64_t first, const uint32_t *keys, int64_t m) {
                    const uint32_t *at = std::find(keys, keys + m, key);
                    if (at != keys + m)
                      found = first + (at - keys);
                    return found == n;
                  });
  return found;
}

/// Writes the best k of the `count` (>= k) distinct candidate words of
/// `row` to `outValues`/`outIndices` (every `stride`), best first; a sort
/// of 2^16 words or more with `parts` threads.
template <typename T, typename Word>
void emitBest(const T *row, Word *candidates, int64_t count, int64_t k,
              T *outValues, int64_t *outIndices, int64_t stride,
              ScratchVector<Word> &buffer, int64_t parts = 1) {
  if (count > k)
    selectGreatest(candidates, count, k, buffer);
  sortDescending(candidates, k, buffer, parts);
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
  int64_t above = 0, inBucket = 0;
  const uint32_t *stored = storedKeys(row, n, largest, scratch);
  uint32_t bucket =
      radixSelectBucket(row, n, k, largest, stored, above, &inBucket);
  if (inBucket > kRadixCollectMax) {
    // The k-th best key exactly; the keys above it (fewer than k) and its
    // ties, or the first of them, as many as complete the k.
    int64_t equal = 0;
    uint32_t key = exactKey(row, n, k, largest, stored, bucket, above, &equal);
    int64_t count = 0;
    if (collectTies(equal, k))
      count = collectKeys(row, n, largest, stored, scratch, key,
                          ~uint32_t(0) - key);
    else {
      if (key != ~uint32_t(0))
        count = collectKeys(row, n, largest, stored, scratch, key + 1,
                            ~uint32_t(0) - (key + 1));
      count = collectEqual(row, n, largest, stored, scratch.candidates, key,
                           count, k);
    }
    emitBest(row, scratch.candidates.data(), count, k, outValues, outIndices,
             stride, scratch.sortBuffer);
    return;
  }
  // Every key in the bucket or above.
  uint32_t lowest = bucket << (32 - kRadixBucketBits);
  int64_t count = collectKeys(row, n, largest, stored, scratch, lowest,
                              ~uint32_t(0) - lowest);
  emitBest(row, scratch.candidates.data(), count, k, outValues, outIndices,
           stride, scratch.sortBuffer);
}

/// topk of one short contiguous f32 row with many winners
/// (useDirectSelection): every element packed, then selected and sorted.
void topkDirectRow(const float *row, int64_t n, int64_t k, bool largest,
                   float *outValues, int64_t *outIndices, int64_t stride,
                   RadixRowScratch &scratch) {
  int64_t count =
      collectKeys(row, n, largest, storedKeys(row, n, largest, scratch),
                  scratch, 0, ~uint32_t(0));
  emitBest(row, scratch.candidates.data(), count, k, outValues, outIndices,
           stride, scratch.sortBuffer);
}

/// kthvalue of one short contiguous f32 row (useDirectSelection): every
/// element packed (smallest best), the best k selected; the k-th is the
/// least of them, reported at the lowest index holding its key -- the
/// greatest word with that key among the k, as lower indices of an equal
/// key are selected first.
int64_t kthDirectRow(const float *row, int64_t n, int64_t k,
                     RadixRowScratch &scratch) {
  int64_t count = collectKeys(row, n, /*largest=*/false,
                              storedKeys(row, n, /*largest=*/false, scratch),
                              scratch, 0, ~uint32_t(0));
  uint64_t *candidates = scratch.candidates.data();
  selectGreatest(candidates, count, k, scratch.sortBuffer);
  return lowestIndexOfLeast(candidates, k);
}

/// The lowest position of a row of n holding the `rank`-th greatest key
/// among the `count` distinct candidate words (rank <= count; the
/// candidates are reordered).
template <typename Word>
int64_t lowestOfRanked(Word *candidates, int64_t count, int64_t rank, int64_t n,
                       ScratchVector<Word> &buffer) {
  selectGreatest(candidates, count, rank, buffer);
  uint64_t kth = wordKey(*std::min_element(candidates, candidates + rank));
  int64_t lowest = n;
  for (int64_t j = 0; j < count; ++j)
    if (wordKey(candidates[j]) == kth)
      lowest = std::min(lowest, wordIndex(candidates[j]));
  return lowest;
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
  int64_t above = 0, inBucket = 0;
  const uint32_t *stored = storedKeys(row, n, /*largest=*/false, scratch);
  uint32_t bucket =
      radixSelectBucket(row, n, k, /*largest=*/false, stored, above, &inBucket);
  if (inBucket > kRadixCollectMax)
    return firstOfKey(
        row, n, /*largest=*/false, stored,
        exactKey(row, n, k, /*largest=*/false, stored, bucket, above));
  // The bucket's keys only.
  int64_t count = collectKeys(row, n, /*largest=*/false, stored, scratch,
                              bucket << kShift, (uint32_t(1) << kShift) - 1);
  // The k-th best overall is the (k - above)-th best of the bucket.
  return lowestOfRanked(scratch.candidates.data(), count, k - above, n,
                        scratch.sortBuffer);
}

/// A long f32 row's radix-selection passes, each split into `parts` ranges
/// run by the threads: their histograms add up and their candidates are
/// gathered in row order -- the same counts and candidates, so the same
/// answer, for any number of parts. Keys are computed per chunk in each
/// pass (not stored).
class RadixRowParts {
public:
  RadixRowParts(const float *row, int64_t n, bool largest, int64_t parts)
      : row(row), n(n), parts(parts), largest(largest),
        partCounts(parts * kDigits), scratch(parts) {}

  /// The first level: the bucket holding the `rank`-th greatest key;
  /// `rank` becomes its rank in the bucket, `above` counts the keys in
  /// greater buckets, `bucketSize` those in it.
  uint32_t bucket(int64_t &rank, int64_t &above, int64_t &bucketSize) {
    int64_t counts[kDigits] = {};
    count(kRadixBucketBits, counts,
          [&](const float *part, int64_t m, int64_t *partCounts) {
            countTopBits(part, m, largest, nullptr, partCounts);
          });
    above = 0;
    uint32_t digit = pickDigit(counts, kRadixBucketBits, rank, above);
    bucketSize = counts[digit];
    return digit;
  }

  /// exactKeyFrom with each level counted by the parts.
  uint32_t exactKey(uint32_t bucket, int64_t &rank, int64_t &above,
                    int64_t *equal = nullptr) {
    return exactKeyFrom(
        bucket, rank, above,
        [&](int known, int bits, uint32_t prefix, int64_t *counts) {
          count(bits, counts,
                [&](const float *part, int64_t m, int64_t *partCounts) {
                  countPrefixed(part, m, largest, nullptr, known, bits, prefix,
                                partCounts);
                });
        },
        equal);
  }

  /// The lowest position of the row holding `key` (n if none).
  int64_t firstOf(uint32_t key) {
    ScratchVector<int64_t> firsts(parts, n);
    each([&](int64_t p, const float *part, int64_t m, int64_t first) {
      int64_t at = firstOfKey(part, m, largest, nullptr, key);
      firsts[p] = at < m ? first + at : n;
    });
    return *std::min_element(firsts.begin(), firsts.end());
  }

  /// The packed words of the keys in [lo, lo + span], in row order, into
  /// `words`; returns how many.
  int64_t collect(uint32_t lo, uint32_t span, ScratchVector<uint64_t> &words) {
    ScratchVector<int64_t> found(parts, 0);
    each([&](int64_t p, const float *part, int64_t m, int64_t first) {
      int64_t count =
          collectKeys(part, m, largest, nullptr, scratch[p], lo, span);
      // ~index in the low half: the row's index is the part's plus `first`.
      for (int64_t j = 0; j < count; ++j)
        scratch[p].candidates[j] -= static_cast<uint64_t>(first);
      found[p] = count;
    });
    int64_t total = 0;
    for (int64_t p = 0; p < parts; ++p)
      total += found[p];
    // Room for collectEqual's ties after them.
    words.resize(total + 1);
    int64_t at = 0;
    for (int64_t p = 0; p < parts; ++p) {
      std::copy(scratch[p].candidates.begin(),
                scratch[p].candidates.begin() + found[p], words.begin() + at);
      at += found[p];
    }
    return total;
  }

  /// A buffer for selecting and sorting.
  ScratchVector<uint64_t> &buffer() { return scratch[0].sortBuffer; }

private:
  static constexpr int64_t kDigits = int64_t(1) << kRadixBucketBits;

  /// Runs `body(p, part, m, first)` on each part, in parallel.
  template <typename Body> void each(Body body) {
    forEachPart(n, parts, [&](int64_t p, int64_t first, int64_t last) {
      body(p, row + first, last - first, first);
    });
  }

  /// Adds to `counts` (1 << bits of them) the counts of the parts, each
  /// from `countPart(part, m, partCounts)`.
  template <typename CountPart>
  void count(int bits, int64_t *counts, CountPart countPart) {
    std::fill(partCounts.begin(), partCounts.end(), 0);
    each([&](int64_t p, const float *part, int64_t m, int64_t) {
      countPart(part, m, partCounts.data() + p * kDigits);
    });
    for (int64_t p = 0; p < parts; ++p)
      for (int64_t d = 0; d < (int64_t(1) << bits); ++d)
        counts[d] += partCounts[p * kDigits + d];
  }

  const float *row;
  int64_t n, parts;
  bool largest;
  ScratchVector<int64_t> partCounts;
  ScratchVector<RadixRowScratch> scratch;
};

/// kthRadixRow of one long row with every pass split across `parts`
/// (RadixRowParts).
int64_t kthRadixRowParallel(const float *row, int64_t n, int64_t k,
                            int64_t parts) {
  constexpr int kShift = 32 - kRadixBucketBits;
  RadixRowParts split(row, n, /*largest=*/false, parts);
  int64_t rank = k, above = 0, inBucket = 0;
  uint32_t bucket = split.bucket(rank, above, inBucket);
  if (inBucket > kRadixCollectMax)
    return split.firstOf(split.exactKey(bucket, rank, above));
  // The bucket's keys only; the rank-th best of them.
  ScratchVector<uint64_t> candidates;
  int64_t count =
      split.collect(bucket << kShift, (uint32_t(1) << kShift) - 1, candidates);
  return lowestOfRanked(candidates.data(), count, rank, n, split.buffer());
}

/// topkRadixRow of one long row with every pass split across `parts`
/// (RadixRowParts); the winners are selected and sorted by one thread.
void topkRadixRowParallel(const float *row, int64_t n, int64_t k, bool largest,
                          float *outValues, int64_t *outIndices,
                          int64_t parts) {
  constexpr int kShift = 32 - kRadixBucketBits;
  RadixRowParts split(row, n, largest, parts);
  int64_t rank = k, above = 0, inBucket = 0;
  uint32_t bucket = split.bucket(rank, above, inBucket);
  ScratchVector<uint64_t> candidates;
  int64_t count;
  if (inBucket > kRadixCollectMax) {
    // The keys above the k-th best and its ties, or the first of them.
    int64_t equal = 0;
    uint32_t key = split.exactKey(bucket, rank, above, &equal);
    if (collectTies(equal, k)) {
      count = split.collect(key, ~uint32_t(0) - key, candidates);
    } else {
      count =
          key == ~uint32_t(0)
              ? 0
              : split.collect(key + 1, ~uint32_t(0) - (key + 1), candidates);
      count = collectEqual(row, n, largest, nullptr, candidates, key, count, k);
    }
  } else {
    uint32_t lowest = bucket << kShift;
    count = split.collect(lowest, ~uint32_t(0) - lowest, candidates);
  }
  emitBest(row, candidates.data(), count, k, outValues, outIndices, 1,
           split.buffer(), parts);
}

/// Scratch of direct selection of f64 and i64 rows, reused across the rows
/// of a thread.
struct WideRowScratch {
  ScratchVector<WideWord> words, scratch;
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

//===-- Sampled selection (f64, i64) --------------------------------------===//
//
// topk and kthvalue of f64 and i64 rows with a large k (useSampledSelection).
// Radix selection's first histogram suits f32's keys, whose top 12 bits
// (sign, exponent, 3 mantissa bits) spread typical data over many buckets;
// those of 64-bit keys put it in a few (the exponents of f64 data, the
// all-zero or all-one top bits of small integers). Here the keys of a
// sample, one from each of m stretches of the row, bound the k-th best key
// instead: `lo`, a sample key a few standard deviations of the sample's
// rank worse than its k m / n-th best, and for kthvalue `hi`, as many
// better. One pass stores the keys strictly between them as packed (key,
// ~index) words and counts the keys above `hi` and equal to `hi` and `lo`
// -- ties are counted, not stored, so a row of few distinct values stores
// little -- and the counts say where the k-th best lies. A sample that
// misjudged the row (the k-th outside the bounds, or more words than the
// buffer takes: a row whose sampled positions hold its best or worst
// values) sends the row to the collector. The sample decides only the
// work, never the answer.
//
//===----------------------------------------------------------------------===//

/// Sample sizes: m = n / 32 within these bounds.
constexpr int64_t kSampleMin = 256, kSampleMax = 16384;
inline int64_t sampleSize(int64_t n) {
  return std::min(n, std::clamp(n / 32, kSampleMin, kSampleMax));
}

/// The k-th best's expected rank in a sample of m of a row of n (from 0),
/// and the bounds' distance from it: 4 of its standard deviations (the
/// square root of the rank) and a few positions.
inline double sampleRank(int64_t n, int64_t k, int64_t m) {
  return double(k) * double(m) / double(n);
}
inline int64_t sampleSpread(double rank) {
  return int64_t(4 * std::sqrt(rank)) + 4;
}

/// The position of the j-th of m sampled keys of a row of n: in the j-th
/// of m equal stretches, at an offset hashed from j -- not the same offset
/// in each, which would sample one column of a row of [n / C, C] values
/// for every C dividing the stretch.
inline int64_t samplePosition(int64_t j, int64_t n, int64_t m) {
  uint64_t hash = (uint64_t(j) * 0x9E3779B97F4A7C15u) >> 32;
  return j * n / m + int64_t(hash % uint64_t(n / m));
}

/// Scratch of sampled selection, reused across the rows of a thread.
struct SampledRowScratch {
  ScratchVector<uint64_t> sample;
  ScratchVector<WideWord> words, buffer;
};

/// keys[i] = selectionKey(row[i]) for a chunk (branch-free: vectorized per
/// instruction set).
KILN_VECTORIZE void selectionKeys(const double *row, int64_t n, bool largest,
                                  uint64_t *keys) {
  for (int64_t i = 0; i < n; ++i)
    keys[i] = selectionKey(row[i], largest);
}
KILN_VECTORIZE void selectionKeys(const int64_t *row, int64_t n, bool largest,
                                  uint64_t *keys) {
  for (int64_t i = 0; i < n; ++i)
    keys[i] = selectionKey(row[i], largest);
}

/// The keys bounding the k-th best of a row from a sample (see above):
/// every key better than `hi` ranks above the k-th, every key worse than
/// `lo` below it, unless the sample misjudged the row. `hi` is the greatest
/// key when not `bounded` (topk) or when the k-th is near the top. False
/// when the k-th lies too near the bottom for a bound below it (most keys
/// are winners).
struct SampleBounds {
  uint64_t lo, hi;
};
template <typename T>
bool sampleBounds(const T *row, int64_t n, int64_t k, bool largest,
                  bool bounded, ScratchVector<uint64_t> &sample,
                  SampleBounds &bounds) {
  int64_t m = sampleSize(n);
  sample.resize(m);
  for (int64_t j = 0; j < m; ++j)
    sample[j] = selectionKey(row[samplePosition(j, n, m)], largest);
  double rank = sampleRank(n, k, m);
  int64_t spread = sampleSpread(rank);
  int64_t low = int64_t(rank) + spread, high = int64_t(rank) - spread;
  if (low >= m)
    return false;
  auto greater = std::greater<uint64_t>();
  std::nth_element(sample.begin(), sample.begin() + low, sample.end(), greater);
  bounds.lo = sample[low];
  bounds.hi = ~uint64_t(0);
  if (bounded && high >= 0) {
    std::nth_element(sample.begin(), sample.begin() + high,
                     sample.begin() + low, greater);
    bounds.hi = sample[high];
  }
  return true;
}

/// What a pass over a row (or part of one) found: the keys above `hi`,
/// equal to `hi` and to `lo`, and the number of words stored.
struct BandCounts {
  int64_t above = 0, atHi = 0, atLo = 0, stored = 0;
  bool overflow = false;
  void add(const BandCounts &other) {
    above += other.above;
    atHi += other.atHi;
    atLo += other.atLo;
    stored += other.stored;
    overflow |= other.overflow;
  }
};

/// Adds to `counts` the keys of `keys[0, m)` (positions first + j) above
/// `hi`, equal to it and equal to `lo`, and packs those in [bandLo,
/// bandLo + span] as words into `words` from `counts.stored` on (nothing
/// when `empty`).
KILN_VECTORIZE void scanBand(const uint64_t *keys, int64_t m, int64_t first,
                             uint64_t lo, uint64_t hi, uint64_t bandLo,
                             uint64_t span, bool empty, WideWord *words,
                             BandCounts &counts) {
  int64_t above = 0, atHi = 0, atLo = 0;
  for (int64_t j = 0; j < m; ++j) {
    above += keys[j] > hi;
    atHi += keys[j] == hi;
    atLo += keys[j] == lo;
  }
  counts.above += above;
  counts.atHi += atHi;
  counts.atLo += atLo;
  if (!empty)
    counts.stored =
        collectRange(keys, m, first, bandLo, span, words, counts.stored);
}

/// One pass of sampled selection over `row[0, n)` (positions from
/// `first`): the counts, and the band's words in `words` (grown as
/// needed), up to `limit` of them (then `overflow`, and the pass stops). The
/// band is (lo, hi) for kthvalue (`bounded`), (lo, greatest key] for topk.
template <typename T>
BandCounts bandPass(const T *row, int64_t n, int64_t first, bool largest,
                    const SampleBounds &bounds, bool bounded, int64_t limit,
                    ScratchVector<WideWord> &words) {
  uint64_t lo = bounds.lo, hi = bounds.hi, top = ~uint64_t(0);
  uint64_t last = bounded ? hi - 1 : top;
  bool empty = lo == top || (bounded && hi <= lo + 1);
  uint64_t bandLo = lo + 1, span = empty ? 0 : last - bandLo;
  BandCounts counts;
  uint64_t keys[kKeyChunk];
  for (int64_t at = 0; at < n && !counts.overflow; at += kKeyChunk) {
    int64_t m = std::min(kKeyChunk, n - at);
    // Room for the words so far and a chunk's: the buffer follows the
    // band, not the limit (it only grows, and without initialization).
    size_t room = static_cast<size_t>(counts.stored + m);
    if (words.size() < room)
      words.resize(std::max(
          room, std::min(2 * words.size(), size_t(limit + kKeyChunk))));
    selectionKeys(row + at, m, largest, keys);
    scanBand(keys, m, first + at, lo, hi, bandLo, span, empty, words.data(),
             counts);
    counts.overflow = counts.stored > limit;
  }
  return counts;
}

/// bandPass over a whole row, split into `parts` ranges run by the threads
/// when parts > 1, their words gathered into `scratch.words` in row order:
/// the same counts and words for any number of parts.
template <typename T>
BandCounts bandPassParts(const T *row, int64_t n, bool largest,
                         const SampleBounds &bounds, bool bounded,
                         int64_t limit, int64_t parts,
                         SampledRowScratch &scratch) {
  if (parts <= 1)
    return bandPass(row, n, 0, largest, bounds, bounded, limit, scratch.words);
  ScratchVector<ScratchVector<WideWord>> partWords(parts);
  ScratchVector<BandCounts> partCounts(parts);
  forEachPart(n, parts, [&](int64_t p, int64_t first, int64_t last) {
    partCounts[p] = bandPass(row + first, last - first, first, largest, bounds,
                             bounded, limit, partWords[p]);
  });
  BandCounts counts;
  for (const BandCounts &part : partCounts)
    counts.add(part);
  counts.overflow |= counts.stored > limit;
  if (counts.overflow)
    return counts;
  scratch.words.resize(counts.stored);
  int64_t at = 0;
  for (int64_t p = 0; p < parts; ++p) {
    std::copy(partWords[p].begin(), partWords[p].begin() + partCounts[p].stored,
              scratch.words.begin() + at);
    at += partCounts[p].stored;
  }
  return counts;
}

/// The most words a band may hold: twice what the sample predicts (k and
/// the spread's share of the row, on both sides for kthvalue) and 4096.
int64_t bandLimit(int64_t n, int64_t k, bool bounded) {
  int64_t m = sampleSize(n);
  int64_t spread = (sampleSpread(sampleRank(n, k, m)) + 1) * (n / m + 1);
  return 2 * ((bounded ? 0 : k) + 2 * spread) + 4096;
}

/// Appends to `words` (holding `count`) the first positions of the row
/// holding `key`, until it holds `limit`; returns the new count.
template <typename T>
int64_t collectEqualWide(const T *row, int64_t n, bool largest, uint64_t key,
                         ScratchVector<WideWord> &words, int64_t count,
                         int64_t limit) {
  if (words.size() < static_cast<size_t>(limit))
    words.resize(limit);
  for (int64_t i = 0; i < n && count < limit; ++i)
    if (selectionKey(row[i], largest) == key)
      words[count++] = packWord(key, i);
  return count;
}

/// The lowest position of the row holding `key`.
template <typename T>
int64_t firstOfKeyWide(const T *row, int64_t n, bool largest, uint64_t key) {
  for (int64_t i = 0; i < n; ++i)
    if (selectionKey(row[i], largest) == key)
      return i;
  return n;
}

/// topk of one contiguous f64 or i64 row by the collector (the fallback of
/// sampled selection).
template <typename T>
void topkCollectorRow(const T *row, int64_t n, int64_t k, bool largest,
                      T *outValues, int64_t *outIndices, int64_t stride) {
  PackedCollector<T> collector(k, largest, n);
  scan(row, 0, n, collector, largest);
  collector.finishSorted(outIndices, stride);
  for (int64_t j = 0; j < k; ++j)
    outValues[j * stride] = row[outIndices[j * stride]];
}

/// topk of one contiguous f64 or i64 row by sampled selection, the pass
/// split into `parts` run by the threads (see above).
template <typename T>
void topkSampledRow(const T *row, int64_t n, int64_t k, bool largest,
                    T *outValues, int64_t *outIndices, int64_t stride,
                    SampledRowScratch &scratch, int64_t parts = 1) {
  SampleBounds bounds;
  if (!sampleBounds(row, n, k, largest, /*bounded=*/false, scratch.sample,
                    bounds)) {
    // Most of the row wins: every element packed.
    scratch.words.resize(n);
    WideWord *words = scratch.words.data();
    for (int64_t i = 0; i < n; ++i)
      words[i] = packWord(selectionKey(row[i], largest), i);
    emitBest(row, words, n, k, outValues, outIndices, stride, scratch.buffer,
             parts);
    return;
  }
  BandCounts counts =
      bandPassParts(row, n, largest, bounds, /*bounded=*/false,
                    bandLimit(n, k, /*bounded=*/false), parts, scratch);
  if (counts.overflow || counts.stored + counts.atLo < k) {
    topkCollectorRow(row, n, k, largest, outValues, outIndices, stride);
    return;
  }
  int64_t count = counts.stored;
  if (count < k) // The first of lo's ties complete the k.
    count =
        collectEqualWide(row, n, largest, bounds.lo, scratch.words, count, k);
  emitBest(row, scratch.words.data(), count, k, outValues, outIndices, stride,
           scratch.buffer, parts);
}

/// kthvalue of one contiguous f64 or i64 row by sampled selection: the
/// lowest position holding the k-th smallest (the n - k + 1-th largest
/// when that is nearer the top, the sample's bounds being narrower there).
template <typename T>
int64_t kthSampledRow(const T *row, int64_t n, int64_t k,
                      SampledRowScratch &scratch, int64_t parts = 1) {
  bool largest = k > n / 2;
  int64_t rank = largest ? n - k + 1 : k;
  SampleBounds bounds;
  if (sampleBounds(row, n, rank, largest, /*bounded=*/true, scratch.sample,
                   bounds)) {
    BandCounts c =
        bandPassParts(row, n, largest, bounds, /*bounded=*/true,
                      bandLimit(n, rank, /*bounded=*/true), parts, scratch);
    if (!c.overflow && rank > c.above) {
      if (rank <= c.above + c.atHi)
        return firstOfKeyWide(row, n, largest, bounds.hi);
      if (rank <= c.above + c.atHi + c.stored)
        return lowestOfRanked(scratch.words.data(), c.stored,
                              rank - c.above - c.atHi, n, scratch.buffer);
      if (bounds.lo != bounds.hi &&
          rank <= c.above + c.atHi + c.stored + c.atLo)
        return firstOfKeyWide(row, n, largest, bounds.lo);
    }
  }
  // The sample misjudged the row: the collector's k smallest.
  PackedCollector<T> collector(k, /*largest=*/false, n);
  scan(row, 0, n, collector, /*largest=*/false);
  return collector.finishKth();
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
  return maskOf32(x, [&](auto block) {
    return Largest ? !(block < bound) : !(block > bound);
  });
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
  ScratchVector<Key> keys;
  ScratchVector<int64_t> positions;
  ScratchVector<Word> words, wordScratch;

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

/// selectRowsWith the packed collector, or for f32 rows too long for its
/// 32-bit indices the (value, index) one.
template <typename T, typename Emit>
void selectRows(View<T> &input, int64_t dim, int64_t k, bool largest,
                Emit emit) {
  if constexpr (std::is_same_v<T, float>) {
    if (split(input.shape, dim).size >= (int64_t(1) << 32)) {
      selectRowsWith<T, Collector<T>>(input, dim, k, largest, emit);
      return;
    }
  }
  selectRowsWith<T, PackedCollector<T>>(input, dim, k, largest, emit);
}

//===-- Vertical selection ------------------------------------------------===//
//
// topk and kthvalue of f32, f64 and i64 short rows with small k
// (useVerticalSelection),
// kVerticalLanes rows at a time: the rows of 16 consecutive positions of
// the dims after `dim` lie side by side in memory, one 64-byte line (f32)
// or two (f64, i64) per position of the row (a row of a contiguous dim is
// copied so first). Each element's selection key is made in every lane at
// once and inserted into the k best so far, kept sorted in k vectors: no
// branch, no per-row setup. f32 packs key and position into one word
// (selectionKey << 32 | ~index: the selection order, ties to the lower
// index), inserted by a maximum and a minimum per vector; f64 and i64 keep
// 64-bit keys and their positions in vectors of their own, inserted by
// comparisons and blends, the first k elements sorted in before the rest
// (ties to the lower position). The k best are the answer the per-row
// kernels give (the same order).
//
//===----------------------------------------------------------------------===//

#if defined(__clang__)
constexpr int64_t kVerticalLanes = 16;
typedef float VerticalFloats __attribute__((ext_vector_type(16)));
typedef uint32_t VerticalKeys __attribute__((ext_vector_type(16)));
typedef uint64_t VerticalWords __attribute__((ext_vector_type(16)));
typedef double VerticalDoubles __attribute__((ext_vector_type(16)));
typedef uint64_t VerticalWideKeys __attribute__((ext_vector_type(16)));
typedef int64_t VerticalIndices __attribute__((ext_vector_type(16)));

/// The k best (best first) of a block's kVerticalLanes rows: position and
/// selection key of the p-th best of lane l. f32: packed words; f64 and
/// i64: keys and positions apart.
template <typename T> struct VerticalBest {
  VerticalWideKeys keys[kVerticalMaxK];
  VerticalIndices indices[kVerticalMaxK];
  int64_t index(int64_t p, int64_t l) const { return indices[p][l]; }
  uint64_t key(int64_t p, int64_t l) const { return keys[p][l]; }
};
template <> struct VerticalBest<float> {
  VerticalWords words[kVerticalMaxK];
  int64_t index(int64_t p, int64_t l) const {
    return wordIndex(uint64_t(words[p][l]));
  }
  uint64_t key(int64_t p, int64_t l) const {
    return wordKey(uint64_t(words[p][l]));
  }
};

/// selectionKey of 16 f64 or i64 elements at once.
inline VerticalWideKeys verticalKeys(const double *x, bool largest) {
  VerticalDoubles v;
  std::memcpy(&v, x, sizeof(v));
  VerticalWideKeys bits;
  std::memcpy(&bits, &v, sizeof(bits));
  VerticalWideKeys sign = uint64_t(1) << 63,
                   flip = largest ? uint64_t(0) : ~uint64_t(0),
                   nanKey = largest ? ~uint64_t(0) : uint64_t(0);
  bits = v == 0.0 ? VerticalWideKeys(uint64_t(0)) : bits;
  VerticalWideKeys ordered =
      (bits & sign) != uint64_t(0) ? ~bits : (bits | sign);
  return v != v ? nanKey : (ordered ^ flip);
}
inline VerticalWideKeys verticalKeys(const int64_t *x, bool largest) {
  VerticalWideKeys bits;
  std::memcpy(&bits, x, sizeof(bits));
  return bits ^ VerticalWideKeys((uint64_t(1) << 63) ^
                                 (largest ? uint64_t(0) : ~uint64_t(0)));
}

/// The k best of the kVerticalLanes rows of `x` (element j of lane l at
/// x[j * stride + l]) into `best`.
template <int K>
__attribute__((always_inline)) inline void
verticalBest(const float *x, int64_t n, int64_t stride, bool largest,
             VerticalBest<float> &best) {
  VerticalWords top[K];
  for (int p = 0; p < K; ++p)
    top[p] = 0; // below every packed word (its index half is never 0 here)
  VerticalKeys sign = 0x80000000u, flip = largest ? 0u : 0xFFFFFFFFu,
               nanKey = largest ? 0xFFFFFFFFu : 0u;
  for (int64_t j = 0; j < n; ++j) {
    VerticalFloats v;
    std::memcpy(&v, x + j * stride, sizeof(v));
    VerticalKeys bits;
    std::memcpy(&bits, &v, sizeof(bits));
    // selectionKey, lane by lane.
    bits = v == 0.0f ? VerticalKeys(0u) : bits;
    VerticalKeys ordered = (bits & sign) != 0u ? ~bits : (bits | sign);
    VerticalKeys key = v != v ? nanKey : (ordered ^ flip);
    VerticalWords word = (__builtin_convertvector(key, VerticalWords) << 32) |
                         VerticalWords(uint64_t(0xFFFFFFFFu - uint32_t(j)));
    for (int p = 0; p < K; ++p) {
      VerticalWords kept = top[p];
      auto better = word > kept;
      top[p] = better ? word : kept;
      word = better ? kept : word;
    }
  }
  for (int p = 0; p < K; ++p)
    best.words[p] = top[p];
}
template <int K, typename T>
__attribute__((always_inline)) inline void
verticalBest(const T *x, int64_t n, int64_t stride, bool largest,
             VerticalBest<T> &best) {
  VerticalWideKeys top[K];
  VerticalIndices at[K];
  // Element j goes before the first of the `kept` best that is worse (a
  // smaller key, or an equal key at a higher position: an element it
  // displaced may tie with the next one), each moving down a place; the
  // last one displaced goes to slot `kept` (when kept < K).
  auto insert = [&](int64_t j, int kept) {
    VerticalWideKeys key = verticalKeys(x + j * stride, largest);
    VerticalIndices index = j;
    for (int p = 0; p < kept; ++p) {
      auto better = (key > top[p]) | ((key == top[p]) & (index < at[p]));
      VerticalWideKeys keptKey = top[p];
      VerticalIndices keptIndex = at[p];
      top[p] = better ? key : keptKey;
      at[p] = better ? index : keptIndex;
      key = better ? keptKey : key;
      index = better ? keptIndex : index;
    }
    if (kept < K) {
      top[kept] = key;
      at[kept] = index;
    }
  };
  for (int p = 0; p < K; ++p) // n >= K: the first K sorted in
    insert(p, p);
  for (int64_t j = K; j < n; ++j)
    insert(j, K);
  for (int p = 0; p < K; ++p) {
    best.keys[p] = top[p];
    best.indices[p] = at[p];
  }
}

/// verticalBest for a k known at run time (1 <= k <= kVerticalMaxK).
template <typename T>
__attribute__((always_inline)) inline void
verticalBestSwitch(const T *x, int64_t n, int64_t stride, int64_t k,
                   bool largest, VerticalBest<T> &best) {
  switch (k) {
#define KILN_VERTICAL_CASE(K)                                                  \
  case K:                                                                      \
    verticalBest<K>(x, n, stride, largest, best);                              \
    return;
    KILN_VERTICAL_CASE(1)
    KILN_VERTICAL_CASE(2)
    KILN_VERTICAL_CASE(3)
    KILN_VERTICAL_CASE(4)
    KILN_VERTICAL_CASE(5)
    KILN_VERTICAL_CASE(6)
    KILN_VERTICAL_CASE(7)
    KILN_VERTICAL_CASE(8)
#undef KILN_VERTICAL_CASE
  }
}

/// verticalBestSwitch compiled per instruction set (one function per
/// element type: multiversioned functions cannot be templates).
#define KILN_VERTICAL_BEST_OF(T)                                               \
  KILN_VECTORIZE void verticalBestOf(const T *x, int64_t n, int64_t stride,    \
                                     int64_t k, bool largest,                  \
                                     VerticalBest<T> &best) {                  \
    verticalBestSwitch(x, n, stride, k, largest, best);                        \
  }
KILN_VERTICAL_BEST_OF(float)
KILN_VERTICAL_BEST_OF(double)
KILN_VERTICAL_BEST_OF(int64_t)
#undef KILN_VERTICAL_BEST_OF

/// Runs `finish(best, o, i, lanes)` on the k best of every block of
/// kVerticalLanes rows along dim of `s` (o the outer position, i the first
/// inner one, `lanes` the rows in the block), blocks in parallel. Blocks
/// of strided rows (s.inner > 1) are read in place when whole; a block at
/// the end of the inner dim, or of contiguous rows, is copied first, its
/// lanes past the rows zero.
template <typename T, typename Finish>
void forEachVerticalBlock(const T *data, const Split &s, int64_t k,
                          bool largest, Finish finish) {
  if (s.outer == 0 || s.inner == 0)
    return; // no rows
  bool strided = s.inner > 1;
  int64_t perOuter =
      strided ? (s.inner + kVerticalLanes - 1) / kVerticalLanes : 1;
  int64_t blocks = strided ? s.outer * perOuter
                           : (s.outer + kVerticalLanes - 1) / kVerticalLanes;
  int64_t grain = itemsPerChunk(s.size * kVerticalLanes * k, int64_t(1) << 15);
  parallelFor(blocks, grain, [&](int64_t begin, int64_t end) {
    ScratchVector<T> copy(s.size * kVerticalLanes);
    VerticalBest<T> best;
    for (int64_t b = begin; b < end; ++b) {
      int64_t o = strided ? b / perOuter : b * kVerticalLanes;
      int64_t i = strided ? b % perOuter * kVerticalLanes : 0;
      int64_t lanes =
          std::min(kVerticalLanes, strided ? s.inner - i : s.outer - o);
      const T *x = data + o * s.size * s.inner + i;
      int64_t stride = s.inner;
      if (lanes < kVerticalLanes || !strided) {
        for (int64_t j = 0; j < s.size; ++j)
          for (int64_t l = 0; l < kVerticalLanes; ++l)
            copy[j * kVerticalLanes + l] = l >= lanes ? T(0)
                                           : strided  ? x[j * s.inner + l]
                                                      : x[l * s.size + j];
        x = copy.data();
        stride = kVerticalLanes;
      }
      verticalBestOf(x, s.size, stride, k, largest, best);
      finish(best, o, i, lanes);
    }
  });
}

/// Whether T's topk and kthvalue can take vertical selection.
template <typename T>
constexpr bool kVerticalType =
    std::is_same_v<T, float> || std::is_same_v<T, double> ||
    std::is_same_v<T, int64_t>;
#endif

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
#if defined(__clang__)
  if constexpr (kVerticalType<T>) {
    if (useVerticalSelection(s.size, k, s.inner, sizeof(T) == 8)) {
      // Out [outer, k, inner]: a lane's p-th best at (o, p, i + lane).
      forEachVerticalBlock(
          input.data, s, k, largest,
          [&](const VerticalBest<T> &best, int64_t o, int64_t i,
              int64_t lanes) {
            for (int64_t p = 0; p < k; ++p)
              for (int64_t l = 0; l < lanes; ++l) {
                int64_t index = best.index(p, l);
                int64_t row = s.inner > 1 ? o * s.size * s.inner + i + l
                                          : (o + l) * s.size;
                int64_t out = s.inner > 1 ? (o * k + p) * s.inner + i + l
                                          : (o + l) * k + p;
                outValues[out] = input.data[row + index * s.inner];
                outIndices[out] = index;
              }
          });
      return;
    }
  }
#endif
  if (useBoundSelection(s.size, k, std::is_same_v<T, float>)) {
    topkEachRow<BoundRowScratch<T>>(input, s, k, largest, outValues, outIndices,
                                    topkBoundRow<T>);
    return;
  }
  if constexpr (std::is_same_v<T, float>) {
    bool direct = useDirectSelection(s.size, k);
    if (direct || useRadixSelection(s.outer * s.inner, s.size, k)) {
      int64_t rows = s.outer * s.inner;
      int64_t parts = selectionRowParts(rows, s.size, getNumThreads());
      if (!direct && s.inner == 1 && parts > 1) {
        // Few long contiguous rows: each with every thread.
        for (int64_t r = 0; r < rows; ++r)
          topkRadixRowParallel(input.data + r * s.size, s.size, k, largest,
                               outValues + r * k, outIndices + r * k, parts);
        return;
      }
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
    if (useSampledSelection(s.size, k)) {
      int64_t rows = s.outer * s.inner;
      int64_t parts = selectionRowParts(rows, s.size, getNumThreads());
      if (s.inner == 1 && parts > 1) {
        // Few long contiguous rows: each with every thread.
        SampledRowScratch scratch;
        for (int64_t r = 0; r < rows; ++r)
          topkSampledRow(input.data + r * s.size, s.size, k, largest,
                         outValues + r * k, outIndices + r * k, 1, scratch,
                         parts);
        return;
      }
      topkEachRow<SampledRowScratch>(
          input, s, k, largest, outValues, outIndices,
          [](const T *row, int64_t n, int64_t k, bool largest, T *values,
             int64_t *indices, int64_t stride, SampledRowScratch &scratch) {
            topkSampledRow(row, n, k, largest, values, indices, stride,
                           scratch);
          });
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
#if defined(__clang__)
  if constexpr (kVerticalType<T>) {
    if (useVerticalSelection(s.size, k, s.inner, sizeof(T) == 8)) {
      // The k-th smallest's key, reported at the lowest position holding
      // it: the first of the k best with that key (lower positions of an
      // equal key are selected first).
      forEachVerticalBlock(
          input.data, s, k, /*largest=*/false,
          [&](const VerticalBest<T> &best, int64_t o, int64_t i,
              int64_t lanes) {
            for (int64_t l = 0; l < lanes; ++l) {
              uint64_t key = best.key(k - 1, l);
              int64_t p = 0;
              while (best.key(p, l) != key)
                ++p;
              int64_t index = best.index(p, l);
              int64_t r = s.inner > 1 ? o * s.inner + i + l : o + l;
              int64_t row =
                  s.inner > 1 ? o * s.size * s.inner + i + l : (o + l) * s.size;
              outValues[r] = input.data[row + index * s.inner];
              outIndices[r] = index;
            }
          });
      return;
    }
  }
#endif
  if (useBoundSelection(s.size, k, std::is_same_v<T, float>)) {
    kthEachRow<BoundRowScratch<T>>(input, s, k, outValues, outIndices,
                                   kthBoundRow<T>);
    return;
  }
  if constexpr (std::is_same_v<T, float>) {
    bool direct = useDirectSelection(s.size, k);
    if (direct || useRadixSelection(s.outer * s.inner, s.size, k)) {
      int64_t rows = s.outer * s.inner, threads = getNumThreads();
      int64_t parts = selectionRowParts(rows, s.size, threads);
      if (!direct && s.inner == 1 && parts > 1) {
        // Few long contiguous rows: each with every thread.
        for (int64_t r = 0; r < rows; ++r) {
          const float *row = input.data + r * s.size;
          int64_t index = kthRadixRowParallel(row, s.size, k, parts);
          outValues[r] = row[index];
          outIndices[r] = index;
        }
        return;
      }
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
    if (useSampledSelection(s.size, k)) {
      int64_t rows = s.outer * s.inner;
      int64_t parts = selectionRowParts(rows, s.size, getNumThreads());
      if (s.inner == 1 && parts > 1) {
        // Few long contiguous rows: each with every thread.
        SampledRowScratch scratch;
        for (int64_t r = 0; r < rows; ++r) {
          const T *row = input.data + r * s.size;
          int64_t index = kthSampledRow(row, s.size, k, scratch, parts);
          outValues[r] = row[index];
          outIndices[r] = index;
        }
        return;
      }
      kthEachRow<SampledRowScratch>(
          input, s, k, outValues, outIndices,
          [](const T *row, int64_t n, int64_t k, SampledRowScratch &scratch) {
            return kthSampledRow(row, n, k, scratch);
          });
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

} // namespace

extern "C" {

#define KILN_SELECTION_ENTRY_POINTS(T, SUFFIX)                                 \
  void _mlir_ciface_kiln_rt_topk_##SUFFIX(                                     \
      UnrankedMemRefType<T> *in, UnrankedMemRefType<T> *values,                \
      UnrankedMemRefType<int64_t> *indices, int64_t k, int64_t dim,            \
      bool largest, bool /*sorted: results are always sorted*/) {              \
    runKernel("kiln.topk's scratch",                                           \
              [&] { topk(in, values, indices, k, dim, largest); });            \
  }                                                                            \
  void _mlir_ciface_kiln_rt_kthvalue_##SUFFIX(                                 \
      UnrankedMemRefType<T> *in, UnrankedMemRefType<T> *values,                \
      UnrankedMemRefType<int64_t> *indices, int64_t k, int64_t dim, bool,      \
      bool) {                                                                  \
    runKernel("kiln.kthvalue's scratch",                                       \
              [&] { kthvalue(in, values, indices, k, dim); });                 \
  }
KILN_SELECTION_ENTRY_POINTS(float, f32)
KILN_SELECTION_ENTRY_POINTS(double, f64)
KILN_SELECTION_ENTRY_POINTS(int64_t, i64)
#undef KILN_SELECTION_ENTRY_POINTS
}
