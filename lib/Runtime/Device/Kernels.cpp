//===- Kernels.cpp - Kiln's GPU runtime kernels (NVPTX device code) -------===//
//
// The GPU counterparts of lib/Runtime/Kernels.cpp: topk, kthvalue, the
// max/min/argmax/argmin scan, softmax rows and the sort of scatter
// positions, compiled at build time for nvptx64 (clang ->
// LLVM IR -> llc, PTX ISA 6.4 for sm_70, so the driver can JIT it for any
// newer GPU) and embedded in the runtime, which loads it with the CUDA
// driver and launches it on the stream of the generated code.
//
// Ordering is the CPU's (ops.md): NaN compares greater than every number;
// among equal values the lowest index wins; a sorted topk lists equal
// values by ascending index. Every kernel compares (key, index) pairs under
// that total order, where `key` is an unsigned integer monotone in the
// value (better is greater), so the results are the CPU's bit for bit.
//
// Freestanding C++: NVVM builtins only, no headers but TopkPlan.h (plain
// constants and arithmetic). The same source runs
// on the host under unittests/Device/Emulator.h (kiln-device-emulation-tests).
//
//===----------------------------------------------------------------------===//

typedef unsigned int u32;
typedef unsigned long long u64;
typedef long long i64;

#include "SortPlan.h"
#include "TopkPlan.h"

// unittests/Device/Emulator.h defines these to run the kernels on the host.
#ifndef KERNEL
#define KERNEL extern "C" __attribute__((nvptx_kernel))
#define DEVICE static inline __attribute__((always_inline))
#define SHARED __attribute__((address_space(3)))
#endif

namespace {

DEVICE u32 tid() { return __nvvm_read_ptx_sreg_tid_x(); }
DEVICE u32 ntid() { return __nvvm_read_ptx_sreg_ntid_x(); }
DEVICE u32 ctaid() { return __nvvm_read_ptx_sreg_ctaid_x(); }
DEVICE void sync() { __nvvm_barrier_sync(0); }
/// __shfl_sync of a 64-bit value from `lane`.
DEVICE u64 shuffleIndex(u64 v, u32 lane) {
  u32 lo = __nvvm_shfl_sync_idx_i32(0xffffffffu, u32(v), lane, 31);
  u32 hi = __nvvm_shfl_sync_idx_i32(0xffffffffu, u32(v >> 32), lane, 31);
  return (u64(hi) << 32) | lo;
}
/// __shfl_down_sync of a 64-bit value.
DEVICE u64 shuffleDown(u64 v, u32 offset) {
  u32 lo = __nvvm_shfl_sync_down_i32(0xffffffffu, u32(v), offset, 31);
  u32 hi = __nvvm_shfl_sync_down_i32(0xffffffffu, u32(v >> 32), offset, 31);
  return (u64(hi) << 32) | lo;
}
constexpr u32 kFullMask = 0xffffffffu;

//===----------------------------------------------------------------------===//
// Order keys
//===----------------------------------------------------------------------===//

/// Monotone keys of the element types (value order as unsigned order).
DEVICE u64 orderedBits(float v) {
  u32 bits = __builtin_bit_cast(u32, v);
  bits = v == 0.0f ? 0u : bits; // -0.0 and +0.0 are equal values
  return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}
DEVICE u64 orderedBits(double v) {
  u64 bits = __builtin_bit_cast(u64, v);
  bits = v == 0.0 ? 0ull : bits;
  return (bits >> 63) ? ~bits : (bits | (1ull << 63));
}
DEVICE u64 orderedBits(i64 v) { return u64(v) ^ (1ull << 63); }
template <typename T> DEVICE bool isNan(T v) { return v != v; }
template <typename T> constexpr u64 keyMax() {
  return sizeof(T) == 4 ? 0xffffffffull : ~0ull;
}

/// The selection key (better is greater): NaN greatest when `largest`,
/// least otherwise (the CPU's selectionKey).
template <typename T> DEVICE u64 selectionKey(T v, bool largest) {
  u64 ordered = orderedBits(v);
  u64 key = largest ? ordered : (~ordered & keyMax<T>());
  return isNan(v) ? (largest ? keyMax<T>() : 0ull) : key;
}

/// The key of max/min/argmax/argmin: the first NaN wins either way.
template <typename T> DEVICE u64 argKey(T v, bool isMax) {
  u64 ordered = orderedBits(v);
  u64 key = isMax ? ordered : (~ordered & keyMax<T>());
  return isNan(v) ? keyMax<T>() : key;
}

/// Whether (ka, ia) comes before (kb, ib): greater key, then lower index.
DEVICE bool better(u64 ka, i64 ia, u64 kb, i64 ib) {
  return ka > kb || (ka == kb && ia < ib);
}

//===----------------------------------------------------------------------===//
// Block-wide helpers (blockDim a multiple of 32, at most 1024)
//===----------------------------------------------------------------------===//

SHARED u32 scratch[32] __attribute__((loader_uninitialized));

/// Exclusive prefix count of `flag` over the block in thread order, and the
/// block's total.
DEVICE u32 blockPrefix(bool flag, u32 &total) {
  u32 lane = tid() & 31, warp = tid() >> 5, warps = ntid() >> 5;
  u32 ballot = __nvvm_vote_ballot_sync(kFullMask, flag);
  u32 before = __builtin_popcount(ballot & ((1u << lane) - 1));
  if (lane == 0)
    scratch[warp] = __builtin_popcount(ballot);
  sync();
  u32 offset = 0;
  total = 0;
  for (u32 w = 0; w < warps; ++w) {
    u32 count = scratch[w];
    offset += w < warp ? count : 0;
    total += count;
  }
  sync();
  return offset + before;
}

/// The compare-exchange steps of a bitonic network over [0, n) (n a power
/// of two), block-synchronous: `step(a, b, descending)` orders positions
/// a < b.
template <typename Step> DEVICE void bitonicNetwork(u32 n, Step step) {
  for (u32 size = 2; size <= n; size <<= 1) {
    for (u32 stride = size >> 1; stride > 0; stride >>= 1) {
      for (u32 i = tid(); i < n / 2; i += ntid()) {
        // The i-th compare of this step: positions a < b.
        u32 a = 2 * i - (i & (stride - 1));
        step(a, a + stride, (a & size) == 0);
      }
      sync();
    }
  }
}

/// Sorts keys[0, n) with indices (in shared or global memory) into
/// descending (key, ascending index) order.
DEVICE void bitonicSort(u64 *keys, i64 *indices, u32 n) {
  bitonicNetwork(n, [&](u32 a, u32 b, bool descending) {
    u64 ka = keys[a], kb = keys[b];
    i64 ia = indices[a], ib = indices[b];
    if (descending ? better(kb, ib, ka, ia) : better(ka, ia, kb, ib)) {
      keys[a] = kb;
      keys[b] = ka;
      indices[a] = ib;
      indices[b] = ia;
    }
  });
}

/// bitonicSort of packed (key << 32 | ~index) words: one compare each.
DEVICE void bitonicSortPacked(u64 *words, u32 n) {
  bitonicNetwork(n, [&](u32 a, u32 b, bool descending) {
    u64 wa = words[a], wb = words[b];
    if (descending ? wb > wa : wa > wb) {
      words[a] = wb;
      words[b] = wa;
    }
  });
}

/// A slot in a shared list for every thread with `take`: one atomic per
/// warp on `counter`.
DEVICE u64 warpSlot(bool take, u64 *counter) {
  u32 ballot = __nvvm_vote_ballot_sync(kFullMask, take);
  u32 lane = tid() & 31;
  u64 base = 0;
  if (ballot != 0 && lane == u32(__builtin_ctz(ballot)))
    base = __atomic_fetch_add(counter, u64(__builtin_popcount(ballot)),
                              __ATOMIC_RELAXED);
  u32 leader = ballot ? __builtin_ctz(ballot) : 0;
  base = shuffleIndex(base, leader);
  return base + __builtin_popcount(ballot & ((1u << lane) - 1));
}

//===----------------------------------------------------------------------===//
// Radix selection
//===----------------------------------------------------------------------===//

constexpr u32 kRadixBits = 8;
constexpr u32 kBins = 1u << kRadixBits;
SHARED u32 histogram[kBins] __attribute__((loader_uninitialized));
SHARED u64 shared64[2] __attribute__((loader_uninitialized));

/// One strided row: element j at data[j * stride].
template <typename T> struct Row {
  const T *data;
  i64 size, stride;
  T at(i64 j) const { return data[j * stride]; }
};

/// Adds one to counts[bin] for every thread with `active`, one atomic per
/// distinct bin of the warp (rows often share a few bins).
DEVICE void countBin(u32 *counts, bool active, u32 bin) {
  u32 mask = __nvvm_vote_ballot_sync(kFullMask, active);
  if (!active)
    return;
  u32 peers = __nvvm_match_any_sync_i32(mask, bin);
  if (__builtin_ctz(peers) == (tid() & 31))
    __atomic_fetch_add(&counts[bin], __builtin_popcount(peers),
                       __ATOMIC_RELAXED);
}
DEVICE void countBin(bool active, u32 bin) {
  countBin((u32 *)&histogram[0], active, bin);
}

/// The bin of a histogram holding its k-th greatest element (k >= 1),
/// scanning down from the top bin (bin 0 if the counts run out); `above`
/// receives how many elements the bins above it hold.
DEVICE u32 bucketOfKth(const u32 *counts, u32 bins, u64 k, u64 &above) {
  above = 0;
  u32 b = bins - 1;
  for (; b > 0 && above + counts[b] < k; --b)
    above += counts[b];
  return b;
}

/// The block's histogram (shared) of the digit at `shift` of the keys of
/// `row` whose bits under `mask` equal `prefix`.
template <typename T>
DEVICE void countDigits(Row<T> row, bool largest, u64 prefix, u64 mask,
                        int shift) {
  for (u32 b = tid(); b < kBins; b += ntid())
    histogram[b] = 0;
  sync();
  i64 end = (row.size + ntid() - 1) / ntid() * ntid();
  for (i64 j = tid(); j < end; j += ntid()) {
    bool active = false;
    u32 bin = 0;
    if (j < row.size) {
      u64 key = selectionKey(row.at(j), largest);
      active = (key & mask) == prefix;
      bin = u32(key >> shift) & (kBins - 1);
    }
    countBin(active, bin);
  }
  sync();
}

/// The exact k-th greatest key of a row (k >= 1) and how many elements
/// with that key the k best take (the rest of the k are greater): one
/// 8-bit digit per pass, most significant first.
template <typename T>
DEVICE u64 selectKey(Row<T> row, i64 k, bool largest, i64 &tiesTaken) {
  constexpr u32 bits = sizeof(T) * 8;
  u64 prefix = 0, mask = 0;
  i64 remaining = k;
  for (int shift = bits - kRadixBits; shift >= 0; shift -= kRadixBits) {
    countDigits(row, largest, prefix, mask, shift);
    if (tid() == 0) {
      u64 above = 0;
      shared64[0] = bucketOfKth((u32 *)&histogram[0], kBins, remaining, above);
      shared64[1] = u64(remaining) - above;
    }
    sync();
    prefix |= shared64[0] << shift;
    mask |= u64(kBins - 1) << shift;
    remaining = i64(shared64[1]);
    sync();
  }
  tiesTaken = remaining;
  return prefix;
}

/// Writes the k best (key, index) pairs of `row` to keys/indices[0, k)
/// (unordered): every element greater than the k-th key, then the lowest
/// indices among those equal to it.
template <typename T>
DEVICE void collectBest(Row<T> row, i64 k, bool largest, u64 *keys,
                        i64 *indices) {
  i64 ties = 0;
  u64 kth = selectKey(row, k, largest, ties);
  if (tid() == 0)
    shared64[0] = 0;
  sync();
  u64 *count = (u64 *)&shared64[0];
  i64 end = (row.size + ntid() - 1) / ntid() * ntid();
  // Greater keys: any slot (the final sort orders them).
  for (i64 j = tid(); j < row.size; j += ntid()) {
    u64 key = selectionKey(row.at(j), largest);
    if (key > kth) {
      u64 slot = __atomic_fetch_add(count, 1ull, __ATOMIC_RELAXED);
      keys[slot] = key;
      indices[slot] = j;
    }
  }
  sync();
  i64 above = i64(*count);
  sync();
  // Equal keys: the lowest `ties` indices, in index order.
  i64 taken = 0;
  for (i64 base = 0; base < end && taken < ties; base += ntid()) {
    i64 j = base + tid();
    bool equal = j < row.size && selectionKey(row.at(j), largest) == kth;
    u32 total = 0;
    u32 before = blockPrefix(equal, total);
    if (equal && taken + before < ties) {
      keys[above + taken + before] = kth;
      indices[above + taken + before] = j;
    }
    taken += total;
  }
  sync();
}

/// Candidates a block sorts in shared memory; larger k use global scratch.
constexpr u32 kSharedCandidates = 2048;
SHARED u64 candidateKeys[kSharedCandidates]
    __attribute__((loader_uninitialized));
SHARED i64 candidateIndices[kSharedCandidates]
    __attribute__((loader_uninitialized));

DEVICE u32 nextPowerOfTwo(u64 n) {
  u32 p = 1;
  while (p < n)
    p <<= 1;
  return p;
}

/// The row of block `r` of an [outer, size, inner] tensor along its middle
/// dim.
template <typename T>
DEVICE Row<T> rowOf(const T *in, i64 r, i64 size, i64 inner) {
  i64 o = r / inner, i = r % inner;
  return Row<T>{in + o * size * inner + i, size, inner};
}

/// Histogram bins of the fast path: the top bits of each key.
constexpr u32 kCutoffBits = 11;
SHARED u32 topHistogram[1u << kCutoffBits]
    __attribute__((loader_uninitialized));

/// The fast path of topk (the CPU's topkRadixRow): one pass histograms the
/// top kCutoffBits of every key, which gives the bucket holding the k-th
/// best; a second pass gathers every element in or above it into the
/// shared candidates. Returns false, having gathered nothing, when more
/// than kSharedCandidates elements reach the bucket (many equal values):
/// the exact multi-pass selection handles that.
template <typename T>
DEVICE bool gatherAboveCutoff(Row<T> row, i64 k, bool largest, u64 *keys,
                              i64 *indices, u32 &count) {
  constexpr u32 shift = sizeof(T) * 8 - kCutoffBits;
  constexpr u32 bins = 1u << kCutoffBits;
  if (k > kSharedCandidates || (sizeof(T) == 4 && row.size >= (1ll << 32)))
    return false;
  u32 *counts = (u32 *)&topHistogram[0];
  for (u32 b = tid(); b < bins; b += ntid())
    counts[b] = 0;
  sync();
  i64 end = (row.size + ntid() - 1) / ntid() * ntid();
  for (i64 j = tid(); j < end; j += ntid()) {
    bool active = j < row.size;
    u32 bin = active ? u32(selectionKey(row.at(j), largest) >> shift) : 0;
    countBin(counts, active, bin);
  }
  sync();
  if (tid() == 0) {
    u64 above = 0;
    u32 b = bucketOfKth(counts, bins, k, above);
    shared64[0] = b;
    shared64[1] = above + counts[b]; // the elements in or above bin b
  }
  sync();
  u64 cutoff = shared64[0], seen = shared64[1];
  sync();
  if (seen > kSharedCandidates)
    return false;
  if (tid() == 0)
    shared64[0] = 0;
  sync();
  for (i64 j = tid(); j < end; j += ntid()) {
    u64 key = j < row.size ? selectionKey(row.at(j), largest) : 0;
    bool take = j < row.size && (key >> shift) >= cutoff;
    u64 slot = warpSlot(take, (u64 *)&shared64[0]);
    if (take) {
      // 32-bit keys pack with the complemented index (rows < 2^32).
      if (sizeof(T) == 4)
        keys[slot] = (key << 32) | (0xffffffffull - u64(j));
      else {
        keys[slot] = key;
        indices[slot] = j;
      }
    }
  }
  sync();
  count = u32(seen);
  return true;
}

/// The sorted topk of `row`, computed by the whole block: the k best by
/// radix selection, then a bitonic sort of them (in shared memory, or when
/// k > kSharedCandidates in the `scratch` slice of block `slot`: padded
/// keys and indices per block). Calls `emit(j, index)` for the j-th best,
/// j in [0, k), spread over the threads.
template <typename T, typename Emit>
DEVICE void topkOfRow(Row<T> row, i64 k, bool largest, u64 *scratchKeys,
                      i64 *scratchIndices, u64 slot, Emit emit) {
  u32 padded = nextPowerOfTwo(u64(k));
  u64 *keys = (u64 *)&candidateKeys[0];
  i64 *indices = (i64 *)&candidateIndices[0];
  if (padded > kSharedCandidates) {
    keys = scratchKeys + slot * padded;
    indices = scratchIndices + slot * padded;
  }
  // The fast path gathers about k candidates (all those in or above the
  // k-th's bucket); otherwise exactly the k best.
  u32 count = k;
  bool gathered = gatherAboveCutoff(row, k, largest, keys, indices, count);
  if (gathered && sizeof(T) == 4) {
    // Packed words: padding 0 (key 0, the greatest index) sorts last.
    padded = nextPowerOfTwo(count);
    for (u32 j = count + tid(); j < padded; j += ntid())
      keys[j] = 0;
    sync();
    bitonicSortPacked(keys, padded);
    for (i64 j = tid(); j < k; j += ntid())
      emit(j, i64(0xffffffffull - (keys[j] & 0xffffffffull)));
    return;
  }
  if (gathered)
    padded = nextPowerOfTwo(count);
  else
    collectBest(row, k, largest, keys, indices);
  // Padding sorts last: the least key, and the greatest index for ties
  // with real key-0 candidates.
  for (u32 j = count + tid(); j < padded; j += ntid()) {
    keys[j] = 0;
    indices[j] = 0x7fffffffffffffffll;
  }
  sync();
  bitonicSort(keys, indices, padded);
  for (i64 j = tid(); j < k; j += ntid())
    emit(j, indices[j]);
}

/// topk of an [outer, size, inner] tensor along its middle dim, one row
/// per block.
template <typename T>
DEVICE void topkRows(const T *in, T *values, i64 *outIndices, i64 size,
                     i64 inner, i64 k, bool largest, u64 *scratchKeys,
                     i64 *scratchIndices) {
  i64 r = ctaid();
  Row<T> row = rowOf(in, r, size, inner);
  i64 o = r / inner, i = r % inner;
  topkOfRow(row, k, largest, scratchKeys, scratchIndices, r,
            [&](i64 j, i64 index) {
              i64 out = (o * k + j) * inner + i;
              values[out] = row.at(index);
              outIndices[out] = index;
            });
}

/// Few long rows split into `chunks` contiguous ranges (TopkPlan.h): block
/// b takes range b % chunks of row b / chunks, which starts at `begin` in
/// the row.
template <typename T>
DEVICE Row<T> blockRange(const T *in, i64 size, i64 inner, i64 chunks,
                         i64 &begin) {
  i64 b = ctaid(), c = b % chunks;
  Row<T> row = rowOf(in, b / chunks, size, inner);
  begin = c * size / chunks;
  i64 end = (c + 1) * size / chunks;
  return Row<T>{row.data + begin * row.stride, end - begin, row.stride};
}

/// Few long rows, stage 1: row r is split into `chunks` contiguous ranges
/// (each at least k long); block b = r * chunks + c writes the sorted k
/// best of range c to candidates [b * k, (b + 1) * k), with their indices
/// in the row. Every element of the row's k best is among its range's k
/// best, so the row's answer is among the candidates.
template <typename T>
DEVICE void topkChunks(const T *in, T *candidateValues, i64 *candidateRows,
                       i64 size, i64 inner, i64 k, bool largest, i64 chunks,
                       u64 *scratchKeys, i64 *scratchIndices) {
  i64 b = ctaid(), begin = 0;
  Row<T> range = blockRange(in, size, inner, chunks, begin);
  topkOfRow(range, k, largest, scratchKeys, scratchIndices, b,
            [&](i64 j, i64 index) {
              candidateValues[b * k + j] = range.at(index);
              candidateRows[b * k + j] = begin + index;
            });
}

/// Stage 2: the topk of each row's `candidates` (= chunks * k, contiguous).
/// Ranges are in row order and each lists equal values by ascending index,
/// so a candidate's position orders equal values as their row indices do:
/// the tie rule carries over, and the result is the one-stage result.
template <typename T>
DEVICE void topkMerge(const T *candidateValues, const i64 *candidateRows,
                      T *values, i64 *outIndices, i64 candidates, i64 inner,
                      i64 k, bool largest, u64 *scratchKeys,
                      i64 *scratchIndices) {
  i64 r = ctaid();
  Row<T> row{candidateValues + r * candidates, candidates, 1};
  i64 o = r / inner, i = r % inner;
  topkOfRow(row, k, largest, scratchKeys, scratchIndices, r,
            [&](i64 j, i64 index) {
              i64 out = (o * k + j) * inner + i;
              values[out] = row.at(index);
              outIndices[out] = candidateRows[r * candidates + index];
            });
}

/// kthvalue of one row per block: the k-th smallest key, reported at the
/// lowest index holding it.
template <typename T>
DEVICE void kthvalueRows(const T *in, T *values, i64 *outIndices, i64 size,
                         i64 inner, i64 k) {
  i64 r = ctaid();
  Row<T> row = rowOf(in, r, size, inner);
  i64 ties = 0;
  u64 kth = selectKey(row, k, /*largest=*/false, ties);
  i64 lowest = 0x7fffffffffffffffll;
  for (i64 j = tid(); j < row.size; j += ntid())
    if (selectionKey(row.at(j), false) == kth && j < lowest)
      lowest = j;
  for (u32 offset = 16; offset > 0; offset >>= 1) {
    i64 other = i64(shuffleDown(u64(lowest), offset));
    lowest = other < lowest ? other : lowest;
  }
  if (tid() == 0)
    shared64[0] = u64(0x7fffffffffffffffll);
  sync();
  if ((tid() & 31) == 0)
    __atomic_fetch_min((i64 *)&shared64[0], lowest, __ATOMIC_RELAXED);
  sync();
  if (tid() == 0) {
    i64 index = i64(shared64[0]);
    values[r] = row.at(index);
    outIndices[r] = index;
  }
}

/// kthvalue of few long rows, split across blocks (TopkPlan.h): the radix
/// selection of kthvalueRows with the row's state in global memory. Each
/// pass, every block counts its range's digits (of the elements matching
/// the prefix so far) in shared memory and adds its counts to the row's
/// histogram (integer atomics: the sums do not depend on their order);
/// then one thread per row picks the bin holding the k-th key. Last, each
/// block finds the lowest index of its range holding the key and the row
/// keeps the minimum. The answer is kthvalueRows', bit for bit.
struct KthState {
  u64 prefix, mask; // the key's digits selected so far, and which bits
  i64 remaining;    // the rank of the k-th key among those matching them
  i64 lowest;       // the lowest index holding the key (last step)
  u32 counts[kBins];
};
static_assert(sizeof(KthState) == kiln::runtime::device_kernels::kKthStateBytes,
              "the runtime allocates KthState by this size");

DEVICE void kthInit(KthState *state, i64 k) {
  KthState &s = state[ctaid()];
  for (u32 b = tid(); b < kBins; b += ntid())
    s.counts[b] = 0;
  if (tid() == 0) {
    s.prefix = 0;
    s.mask = 0;
    s.remaining = k;
    s.lowest = 0x7fffffffffffffffll;
  }
}

template <typename T>
DEVICE void kthCount(const T *in, KthState *state, i64 size, i64 inner,
                     i64 chunks, int shift) {
  i64 begin = 0;
  Row<T> range = blockRange(in, size, inner, chunks, begin);
  KthState &s = state[ctaid() / chunks];
  countDigits(range, /*largest=*/false, s.prefix, s.mask, shift);
  for (u32 b = tid(); b < kBins; b += ntid())
    if (histogram[b])
      __atomic_fetch_add(&s.counts[b], histogram[b], __ATOMIC_RELAXED);
}

DEVICE void kthPick(KthState *state, i64 rows, int shift) {
  i64 r = i64(ctaid()) * ntid() + tid();
  if (r >= rows)
    return;
  KthState &s = state[r];
  u64 above = 0;
  u64 bin = bucketOfKth(s.counts, kBins, u64(s.remaining), above);
  s.prefix |= bin << shift;
  s.mask |= u64(kBins - 1) << shift;
  s.remaining -= i64(above);
  for (u32 b = 0; b < kBins; ++b)
    s.counts[b] = 0;
}

template <typename T>
DEVICE void kthLowest(const T *in, KthState *state, i64 size, i64 inner,
                      i64 chunks) {
  i64 begin = 0;
  Row<T> range = blockRange(in, size, inner, chunks, begin);
  KthState &s = state[ctaid() / chunks];
  u64 kth = s.prefix;
  i64 lowest = 0x7fffffffffffffffll;
  for (i64 j = tid(); j < range.size; j += ntid())
    if (selectionKey(range.at(j), false) == kth) {
      lowest = begin + j; // a thread's first match is its lowest
      break;
    }
  for (u32 offset = 16; offset > 0; offset >>= 1) {
    i64 other = i64(shuffleDown(u64(lowest), offset));
    lowest = other < lowest ? other : lowest;
  }
  if ((tid() & 31) == 0 && lowest != 0x7fffffffffffffffll)
    __atomic_fetch_min(&s.lowest, lowest, __ATOMIC_RELAXED);
}

template <typename T>
DEVICE void kthFinish(const T *in, const KthState *state, T *values,
                      i64 *outIndices, i64 rows, i64 size, i64 inner) {
  i64 r = i64(ctaid()) * ntid() + tid();
  if (r >= rows)
    return;
  i64 index = state[r].lowest;
  values[r] = rowOf(in, r, size, inner).at(index);
  outIndices[r] = index;
}

//===----------------------------------------------------------------------===//
// max / min / argmax / argmin
//===----------------------------------------------------------------------===//

/// The best (key, index) of a warp's elements j = lane, lane + 32, ...
template <typename T>
DEVICE void warpArgScan(Row<T> row, i64 begin, i64 step, bool isMax,
                        u64 &bestKey, i64 &bestIndex) {
  bestKey = 0;
  bestIndex = 0x7fffffffffffffffll;
  for (i64 j = begin; j < row.size; j += step) {
    u64 key = argKey(row.at(j), isMax);
    if (better(key, j, bestKey, bestIndex)) {
      bestKey = key;
      bestIndex = j;
    }
  }
  for (u32 offset = 16; offset > 0; offset >>= 1) {
    u64 otherKey = shuffleDown(bestKey, offset);
    i64 otherIndex = i64(shuffleDown(u64(bestIndex), offset));
    if (better(otherKey, otherIndex, bestKey, bestIndex)) {
      bestKey = otherKey;
      bestIndex = otherIndex;
    }
  }
}

/// One warp per contiguous row (`rows` of them; 8 per 256-thread block).
template <typename T>
DEVICE void argWarpRows(const T *in, T *values, i64 *outIndices, i64 rows,
                        i64 size, bool isMax) {
  i64 r = i64(ctaid()) * (ntid() >> 5) + (tid() >> 5);
  if (r >= rows)
    return;
  Row<T> row{in + r * size, size, 1};
  u64 key;
  i64 index;
  warpArgScan(row, tid() & 31, 32, isMax, key, index);
  if ((tid() & 31) == 0) {
    values[r] = row.at(index);
    outIndices[r] = index;
  }
}

SHARED u64 warpKeys[32] __attribute__((loader_uninitialized));
SHARED i64 warpIndices[32] __attribute__((loader_uninitialized));

/// One block per row (few long rows, e.g. argmax of a whole tensor).
template <typename T>
DEVICE void argBlockRows(const T *in, T *values, i64 *outIndices, i64 size,
                         i64 inner, bool isMax) {
  i64 r = ctaid();
  Row<T> row = rowOf(in, r, size, inner);
  u64 key;
  i64 index;
  warpArgScan(row, tid(), ntid(), isMax, key, index);
  if ((tid() & 31) == 0) {
    warpKeys[tid() >> 5] = key;
    warpIndices[tid() >> 5] = index;
  }
  sync();
  if (tid() == 0) {
    for (u32 w = 1; w < (ntid() >> 5); ++w)
      if (better(warpKeys[w], warpIndices[w], key, index)) {
        key = warpKeys[w];
        index = warpIndices[w];
      }
    values[r] = row.at(index);
    outIndices[r] = index;
  }
}

/// One thread per (outer, inner) position when the reduced dim is not
/// innermost: neighbouring threads read neighbouring elements.
template <typename T>
DEVICE void argStridedRows(const T *in, T *values, i64 *outIndices, i64 rows,
                           i64 size, i64 inner, bool isMax) {
  i64 r = i64(ctaid()) * ntid() + tid();
  if (r >= rows)
    return;
  Row<T> row = rowOf(in, r, size, inner);
  u64 bestKey = 0;
  i64 bestIndex = 0x7fffffffffffffffll;
  for (i64 j = 0; j < size; ++j) {
    u64 key = argKey(row.at(j), isMax);
    if (better(key, j, bestKey, bestIndex)) {
      bestKey = key;
      bestIndex = j;
    }
  }
  values[r] = row.at(bestIndex);
  outIndices[r] = bestIndex;
}

} // namespace

//===----------------------------------------------------------------------===//
// Entry points (names: kiln_gpu_<kernel>_<type>)
//===----------------------------------------------------------------------===//

#define KILN_GPU_KERNELS(T, SUFFIX)                                            \
  KERNEL void kiln_gpu_topk_##SUFFIX(const T *in, T *values, i64 *indices,     \
                                     i64 size, i64 inner, i64 k, int largest,  \
                                     u64 *scratchKeys, i64 *scratchIndices) {  \
    topkRows(in, values, indices, size, inner, k, largest != 0, scratchKeys,   \
             scratchIndices);                                                  \
  }                                                                            \
  KERNEL void kiln_gpu_topk_chunks_##SUFFIX(                                   \
      const T *in, T *candidateValues, i64 *candidateRows, i64 size,           \
      i64 inner, i64 k, int largest, i64 chunks, u64 *scratchKeys,             \
      i64 *scratchIndices) {                                                   \
    topkChunks(in, candidateValues, candidateRows, size, inner, k,             \
               largest != 0, chunks, scratchKeys, scratchIndices);             \
  }                                                                            \
  KERNEL void kiln_gpu_topk_merge_##SUFFIX(                                    \
      const T *candidateValues, const i64 *candidateRows, T *values,           \
      i64 *indices, i64 candidates, i64 inner, i64 k, int largest,             \
      u64 *scratchKeys, i64 *scratchIndices) {                                 \
    topkMerge(candidateValues, candidateRows, values, indices, candidates,     \
              inner, k, largest != 0, scratchKeys, scratchIndices);            \
  }                                                                            \
  KERNEL void kiln_gpu_kthvalue_##SUFFIX(const T *in, T *values, i64 *indices, \
                                         i64 size, i64 inner, i64 k) {         \
    kthvalueRows(in, values, indices, size, inner, k);                         \
  }                                                                            \
  KERNEL void kiln_gpu_kth_count_##SUFFIX(const T *in, KthState *state,        \
                                          i64 size, i64 inner, i64 chunks,     \
                                          int shift) {                         \
    kthCount(in, state, size, inner, chunks, shift);                           \
  }                                                                            \
  KERNEL void kiln_gpu_kth_lowest_##SUFFIX(const T *in, KthState *state,       \
                                           i64 size, i64 inner, i64 chunks) {  \
    kthLowest(in, state, size, inner, chunks);                                 \
  }                                                                            \
  KERNEL void kiln_gpu_kth_finish_##SUFFIX(const T *in, const KthState *state, \
                                           T *values, i64 *indices, i64 rows,  \
                                           i64 size, i64 inner) {              \
    kthFinish(in, state, values, indices, rows, size, inner);                  \
  }                                                                            \
  KERNEL void kiln_gpu_arg_warp_##SUFFIX(const T *in, T *values, i64 *indices, \
                                         i64 rows, i64 size, int isMax) {      \
    argWarpRows(in, values, indices, rows, size, isMax != 0);                  \
  }                                                                            \
  KERNEL void kiln_gpu_arg_block_##SUFFIX(                                     \
      const T *in, T *values, i64 *indices, i64 size, i64 inner, int isMax) {  \
    argBlockRows(in, values, indices, size, inner, isMax != 0);                \
  }                                                                            \
  KERNEL void kiln_gpu_arg_strided_##SUFFIX(const T *in, T *values,            \
                                            i64 *indices, i64 rows, i64 size,  \
                                            i64 inner, int isMax) {            \
    argStridedRows(in, values, indices, rows, size, inner, isMax != 0);        \
  }

KERNEL void kiln_gpu_kth_init(KthState *state, i64 k) { kthInit(state, k); }
KERNEL void kiln_gpu_kth_pick(KthState *state, i64 rows, int shift) {
  kthPick(state, rows, shift);
}

KILN_GPU_KERNELS(float, f32)
KILN_GPU_KERNELS(double, f64)
KILN_GPU_KERNELS(i64, i64)

//===----------------------------------------------------------------------===//
// softmax / log_softmax along contiguous f32 rows
//===----------------------------------------------------------------------===//

namespace {

constexpr float kInf = __builtin_inff();

DEVICE float fastExp(float x) {
  return __nvvm_ex2_approx_f(x * 1.4426950408889634f);
}
DEVICE float fastLog(float x) {
  return __nvvm_lg2_approx_f(x) * 0.6931471805599453f;
}

/// A running maximum and sum of exp(x - maximum). NaN propagates through
/// the maximum; -inf entries add nothing.
struct Running {
  float max = -kInf, sum = 0.0f;
  __attribute__((always_inline)) void add(float x) {
    if (x != x) {
      max = x;
    } else if (x > max) {
      sum = sum * fastExp(max - x) + 1.0f;
      max = x;
    } else if (x != -kInf) {
      sum += fastExp(x - max);
    }
  }
  __attribute__((always_inline)) void merge(Running other) {
    if (other.max != other.max || max != max) {
      max = max != max ? max : other.max;
      return;
    }
    float m = other.max > max ? other.max : max;
    float total = 0.0f;
    if (sum != 0.0f)
      total += sum * fastExp(max - m);
    if (other.sum != 0.0f)
      total += other.sum * fastExp(other.max - m);
    max = m;
    sum = total;
  }
};

SHARED float warpMax[32] __attribute__((loader_uninitialized));
SHARED float warpSum[32] __attribute__((loader_uninitialized));

typedef float Float4 __attribute__((ext_vector_type(4)));

/// Float4s per thread the register path holds at most (rows up to 8192
/// floats with 256 threads).
constexpr u32 kRowVectors = 8;

/// A block-wide maximum (NaN-propagating) or sum, in a fixed order.
DEVICE float blockReduce(float v, bool isMax) {
  for (u32 offset = 16; offset > 0; offset >>= 1) {
    float other = __nvvm_shfl_sync_down_f32(kFullMask, v, offset, 31);
    v = isMax ? (v != v || other != other ? v + other : (other > v ? other : v))
              : v + other;
  }
  if ((tid() & 31) == 0)
    warpMax[tid() >> 5] = v;
  sync();
  float total = warpMax[0];
  for (u32 w = 1; w < (ntid() >> 5); ++w) {
    float other = warpMax[w];
    total = isMax ? (total != total || other != other
                         ? total + other
                         : (other > total ? other : total))
                  : total + other;
  }
  sync();
  return total;
}

/// Rows of at most V * 4 * blockDim floats, size % 4 == 0: the row is read
/// once into registers with 16-byte loads, then reduced (maximum, then the
/// sum of exp(x - max)) and written from registers. V is the smallest that
/// fits: fewer registers, more rows in flight per SM.
template <u32 V>
DEVICE void softmaxRowsInRegisters(const float *in, float *out, i64 size,
                                   bool isLog) {
  i64 r = ctaid();
  const Float4 *row = (const Float4 *)(in + r * size);
  Float4 *outRow = (Float4 *)(out + r * size);
  i64 vectors = size / 4;
  Float4 x[V];
  float m = -kInf;
  bool nan = false;
#pragma unroll
  for (u32 v = 0; v < V; ++v) {
    i64 j = tid() + i64(v) * ntid();
    x[v] = j < vectors ? row[j] : Float4{-kInf, -kInf, -kInf, -kInf};
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      nan |= x[v][e] != x[v][e];
      m = x[v][e] > m ? x[v][e] : m;
    }
  }
  m = blockReduce(nan ? __builtin_nanf("") : m, /*isMax=*/true);
  float s = 0.0f;
#pragma unroll
  for (u32 v = 0; v < V; ++v)
#pragma unroll
    for (int e = 0; e < 4; ++e)
      s += x[v][e] == -kInf ? 0.0f : fastExp(x[v][e] - m);
  s = blockReduce(s, /*isMax=*/false);
  if (m == kInf)
    s = __builtin_nanf("");
  float logSum = fastLog(s), inverse = 1.0f / s;
#pragma unroll
  for (u32 v = 0; v < V; ++v) {
    i64 j = tid() + i64(v) * ntid();
    if (j < vectors) {
      Float4 y;
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float shifted = x[v][e] - m;
        y[e] = isLog ? shifted - logSum : fastExp(shifted) * inverse;
      }
      outRow[j] = y;
    }
  }
}

/// One block per row of `size` elements: the row's maximum and sum in one
/// read (merged across threads in a fixed order: the same bits every run),
/// then the outputs. PyTorch's special values: NaN or +inf in a row make
/// it NaN, an all -inf row is NaN.
DEVICE void softmaxRows(const float *in, float *out, i64 size, bool isLog) {
  i64 r = ctaid();
  const float *row = in + r * size;
  Running acc;
  for (i64 j = tid(); j < size; j += ntid())
    acc.add(row[j]);
  for (u32 offset = 16; offset > 0; offset >>= 1) {
    Running other;
    other.max = __nvvm_shfl_sync_down_f32(kFullMask, acc.max, offset, 31);
    other.sum = __nvvm_shfl_sync_down_f32(kFullMask, acc.sum, offset, 31);
    acc.merge(other);
  }
  if ((tid() & 31) == 0) {
    warpMax[tid() >> 5] = acc.max;
    warpSum[tid() >> 5] = acc.sum;
  }
  sync();
  Running total;
  total.max = warpMax[0];
  total.sum = warpSum[0];
  for (u32 w = 1; w < (ntid() >> 5); ++w) {
    Running other;
    other.max = warpMax[w];
    other.sum = warpSum[w];
    total.merge(other);
  }
  float m = total.max;
  float s = m == kInf ? __builtin_nanf("") : total.sum;
  float logSum = fastLog(s);
  float inverse = 1.0f / s;
  float *outRow = out + r * size;
  for (i64 j = tid(); j < size; j += ntid()) {
    float shifted = row[j] - m;
    outRow[j] = isLog ? shifted - logSum : fastExp(shifted) * inverse;
  }
}

} // namespace

// One kernel per register budget (registers are allocated per kernel);
// the runtime picks the smallest that holds a row.
KERNEL void kiln_gpu_softmax_f32(const float *in, float *out, i64 size,
                                 int isLog) {
  softmaxRows(in, out, size, isLog != 0);
}
#define KILN_SOFTMAX_IN_REGISTERS(V)                                           \
  KERNEL void kiln_gpu_softmax_f32_v##V(const float *in, float *out, i64 size, \
                                        int isLog) {                           \
    softmaxRowsInRegisters<V>(in, out, size, isLog != 0);                      \
  }
KILN_SOFTMAX_IN_REGISTERS(1)
KILN_SOFTMAX_IN_REGISTERS(2)
KILN_SOFTMAX_IN_REGISTERS(4)
KILN_SOFTMAX_IN_REGISTERS(8)
#undef KILN_SOFTMAX_IN_REGISTERS

//===----------------------------------------------------------------------===//
// Stable sort of scatter positions by target
//===----------------------------------------------------------------------===//
//
// scatter_add, index_add and put on the GPU (kiln_rt_sort_positions): the
// positions 0 .. count-1 of an index tensor, sorted by the target their
// index names (a key in [0, size)), equal targets in ascending position
// order, and where each target's run starts. A thread per target then adds
// its run in that order: the CPU's sequential order for every element, so
// the same bits.
//
// A least-significant-digit radix sort of (key, position) pairs, 8-bit
// digits, as many passes as size - 1 has digits (SortPlan.h). Each pass:
// a block per tile of kSortTile consecutive pairs counts its digits
// (kiln_gpu_sort_count, (digit, tile) counts laid out digit-major), one
// block turns the counts into exclusive offsets (kiln_gpu_sort_offsets),
// and a block per tile moves its pairs there in their order
// (kiln_gpu_sort_move). Each pass is stable, so the sort is. Counts are
// integer atomics (the same on every run); no other atomics.

namespace {

using kiln::runtime::device_kernels::kSortItems;
using kiln::runtime::device_kernels::kSortThreads;
using kiln::runtime::device_kernels::kSortTile;

constexpr u32 kDigits = kiln::runtime::device_kernels::kSortDigits;
constexpr u32 kSortWarps = kSortThreads / 32;

DEVICE u32 digitOf(u32 key, int shift) { return (key >> shift) & 0xffu; }

/// The key of every position (its index, negative ones counted from the
/// end when `wrap`; out-of-range ones, already reported, as 0) and the
/// position itself. A thread per position.
DEVICE void sortKeys(const i64 *index, u32 *keys, u32 *positions, i64 count,
                     i64 size, bool wrap) {
  i64 i = i64(ctaid()) * ntid() + tid();
  if (i >= count)
    return;
  i64 v = index[i];
  if (wrap && v < 0)
    v += size;
  keys[i] = v >= 0 && v < size ? u32(v) : 0u;
  positions[i] = u32(i);
}

SHARED u32 tileDigits[kDigits] __attribute__((loader_uninitialized));

/// This tile's pair at round r, or none: digit kDigits.
DEVICE u32 roundDigit(const u32 *keys, i64 count, u32 r, int shift, i64 &i) {
  i = i64(ctaid()) * kSortTile + i64(r) * ntid() + tid();
  return i < count ? digitOf(keys[i], shift) : kDigits;
}

/// counts[d * tiles + tile] = how many keys of the tile have digit d. The
/// lanes of a warp with the same digit add once (match.any).
DEVICE void sortCount(const u32 *keys, u32 *counts, i64 count, i64 tiles,
                      int shift) {
  for (u32 d = tid(); d < kDigits; d += ntid())
    tileDigits[d] = 0;
  sync();
  u32 lane = tid() & 31;
  for (u32 r = 0; r < kSortItems; ++r) {
    i64 i;
    u32 digit = roundDigit(keys, count, r, shift, i);
    u32 peers = __nvvm_match_any_sync_i32(kFullMask, digit);
    if (digit < kDigits && (peers & ((1u << lane) - 1)) == 0)
      __atomic_fetch_add(&tileDigits[digit], u32(__builtin_popcount(peers)),
                         __ATOMIC_RELAXED);
  }
  sync();
  for (u32 d = tid(); d < kDigits; d += ntid())
    counts[i64(d) * tiles + ctaid()] = tileDigits[d];
}

/// Exclusive prefix sum of `v` over the block in thread order; `total` is
/// the block's sum (blockPrefix's warp totals in `scratch`, for values).
DEVICE u32 blockExclusiveSum(u32 v, u32 &total) {
  u32 lane = tid() & 31, warp = tid() >> 5, warps = ntid() >> 5;
  u32 inclusive = v;
  for (u32 offset = 1; offset < 32; offset <<= 1) {
    u32 other = __nvvm_shfl_sync_idx_i32(kFullMask, inclusive,
                                         (lane - offset) & 31, 31);
    inclusive += lane >= offset ? other : 0;
  }
  if (lane == 31)
    scratch[warp] = inclusive;
  sync();
  u32 before = 0;
  total = 0;
  for (u32 w = 0; w < warps; ++w) {
    before += w < warp ? scratch[w] : 0;
    total += scratch[w];
  }
  sync();
  return before + inclusive - v;
}

/// The (digit, tile) counts, in place, to exclusive offsets: one block,
/// each thread a contiguous chunk.
DEVICE void sortOffsets(u32 *counts, i64 total) {
  i64 per = (total + ntid() - 1) / ntid();
  i64 begin = i64(tid()) * per;
  i64 end = begin + per < total ? begin + per : total;
  u32 sum = 0;
  for (i64 i = begin; i < end; ++i)
    sum += counts[i];
  u32 all;
  u32 running = blockExclusiveSum(sum, all);
  for (i64 i = begin; i < end; ++i) {
    u32 c = counts[i];
    counts[i] = running;
    running += c;
  }
}

SHARED u32 digitStart[kDigits] __attribute__((loader_uninitialized));
SHARED u32 warpDigits[kSortWarps * kDigits]
    __attribute__((loader_uninitialized));

/// Moves the tile's pairs to their offsets, in order. Round r takes pairs
/// r * 256 + thread: a pair's place is where its digit's run in this tile
/// has reached (digitStart), plus the pairs with its digit in earlier warps
/// of the round, plus those in earlier lanes of its warp (match.any).
DEVICE void sortMove(const u32 *keysIn, const u32 *positionsIn, u32 *keysOut,
                     u32 *positionsOut, const u32 *offsets, i64 count,
                     i64 tiles, int shift) {
  u32 lane = tid() & 31, warp = tid() >> 5;
  for (u32 d = tid(); d < kDigits; d += ntid())
    digitStart[d] = offsets[i64(d) * tiles + ctaid()];
  for (u32 r = 0; r < kSortItems; ++r) {
    for (u32 j = tid(); j < kSortWarps * kDigits; j += ntid())
      warpDigits[j] = 0;
    sync();
    i64 i;
    u32 digit = roundDigit(keysIn, count, r, shift, i);
    u32 peers = __nvvm_match_any_sync_i32(kFullMask, digit);
    u32 before = __builtin_popcount(peers & ((1u << lane) - 1));
    if (digit < kDigits && before == 0)
      warpDigits[warp * kDigits + digit] = __builtin_popcount(peers);
    sync();
    if (digit < kDigits) {
      u32 place = digitStart[digit] + before;
      for (u32 w = 0; w < warp; ++w)
        place += warpDigits[w * kDigits + digit];
      keysOut[place] = keysIn[i];
      positionsOut[place] = positionsIn[i];
    }
    sync();
    for (u32 d = tid(); d < kDigits; d += ntid()) {
      u32 added = 0;
      for (u32 w = 0; w < kSortWarps; ++w)
        added += warpDigits[w * kDigits + d];
      digitStart[d] += added;
    }
    sync();
  }
}

/// order[i] = the i-th position; starts[t] = the first i whose key is at
/// least t (binary search), for t in [0, size]. A thread per i and t.
DEVICE void sortFinish(const u32 *keys, const u32 *positions, i64 *order,
                       i64 *starts, i64 count, i64 size) {
  i64 i = i64(ctaid()) * ntid() + tid();
  if (i < count)
    order[i] = positions[i];
  if (i <= size) {
    i64 lo = 0, hi = count;
    while (lo < hi) {
      i64 mid = lo + (hi - lo) / 2;
      if (i64(keys[mid]) < i)
        lo = mid + 1;
      else
        hi = mid;
    }
    starts[i] = lo;
  }
}

} // namespace

KERNEL void kiln_gpu_sort_keys(const i64 *index, u32 *keys, u32 *positions,
                               i64 count, i64 size, int wrap) {
  sortKeys(index, keys, positions, count, size, wrap != 0);
}
KERNEL void kiln_gpu_sort_count(const u32 *keys, u32 *counts, i64 count,
                                i64 tiles, int shift) {
  sortCount(keys, counts, count, tiles, shift);
}
KERNEL void kiln_gpu_sort_offsets(u32 *counts, i64 total) {
  sortOffsets(counts, total);
}
KERNEL void kiln_gpu_sort_move(const u32 *keysIn, const u32 *positionsIn,
                               u32 *keysOut, u32 *positionsOut,
                               const u32 *offsets, i64 count, i64 tiles,
                               int shift) {
  sortMove(keysIn, positionsIn, keysOut, positionsOut, offsets, count, tiles,
           shift);
}
KERNEL void kiln_gpu_sort_finish(const u32 *keys, const u32 *positions,
                                 i64 *order, i64 *starts, i64 count, i64 size) {
  sortFinish(keys, positions, order, starts, count, size);
}
