//===- Equal.cpp - torch.equal on the CPU ---------------------------------===//
//
// kiln.equal of two contiguous tensors of the same shape, as the CPU
// lowering calls it where neither operand is computed by an op the fusion
// pass could read in place (kiln-decompose): true when every pair of
// elements compares equal -- floats by value (-0.0 equal to +0.0, a NaN
// equal to nothing), integers by value, bools by their low bit as the
// generated code reads them (ByteBools.cpp). The threads take spans of
// 2 MB in turn, from the front; each compares its spans in blocks
// (vectorized, no branch per element) and looks at a shared flag between
// blocks, so that the first difference any thread finds ends every
// thread's walk, as in PyTorch's torch.equal: operands that differ early
// cost a block or two, not a pass over both. The answer does not depend on
// where or by which thread a difference is found.
//
//===----------------------------------------------------------------------===//

#include "kiln/Runtime/Kernels.h"

#include "KernelSupport.h"
#include "MemRefViews.h"

#include "mlir/ExecutionEngine/CRunnerUtils.h"

#include <algorithm>
#include <atomic>
#include <cstdint>

using namespace kiln::runtime;
using namespace kiln::runtime::detail;

namespace {

/// Bytes of each operand a thread compares between two looks at the shared
/// flag: small enough that a difference found by another thread stops this
/// one within microseconds, large enough that the look costs nothing.
constexpr int64_t kEqualBlockBytes = 16384;

/// Bytes of each operand in a span: worker w of W compares spans w, w + W,
/// ... in order, so that the workers walk the operands from the front
/// together (a difference at element p is found after about p elements
/// in all) in runs long enough for the hardware's prefetch. 16M f32 that
/// differ at element 6M, 2 threads: 0.58-0.76 ms, where a contiguous range
/// per thread took 2.0-2.6 (the other thread reading as much of its own);
/// equal operands alike (1.7-2.0 ms; spans of 256 KB and 1 MB read them
/// up to a quarter slower in one set of runs, and blocks of 16 KB in turn
/// took twice as long).
constexpr int64_t kEqualSpanBytes = int64_t(2) << 20;

/// The least elements per worker: fewer are compared on the calling
/// thread (starting the workers would cost more).
constexpr int64_t kEqualChunkElements = int64_t(1) << 16;

/// Whether a[i] and b[i] differ for some i in the spans of kEqualSpanBytes
/// starting at spans `first`, `first + step`, ... below `n`, walking each
/// in blocks of kEqualBlockBytes and giving up (false) once `stop` is set.
/// The comparisons of a block are or-ed together without a branch, so they
/// vectorize (float compares are unordered: a NaN differs).
#define KILN_EQUAL_RANGE(T, STORED, SUFFIX, DIFFER)                            \
  KILN_VECTORIZE bool rangeDiffers(const STORED *a, const STORED *b,           \
                                   int64_t n, int64_t first, int64_t step,     \
                                   const std::atomic<bool> &stop) {            \
    constexpr int64_t kSpan = kEqualSpanBytes / sizeof(STORED);                \
    constexpr int64_t kBlock = kEqualBlockBytes / sizeof(STORED);              \
    for (int64_t span = first * kSpan; span < n; span += step * kSpan) {       \
      int64_t spanEnd = std::min(n, span + kSpan);                             \
      for (int64_t block = span; block < spanEnd; block += kBlock) {           \
        if (stop.load(std::memory_order_relaxed))                              \
          return false;                                                        \
        int64_t last = std::min(spanEnd, block + kBlock);                      \
        unsigned differ = 0;                                                   \
        for (int64_t i = block; i < last; ++i)                                 \
          differ |= DIFFER(a[i], b[i]);                                        \
        if (differ)                                                            \
          return true;                                                         \
      }                                                                        \
    }                                                                          \
    return false;                                                              \
  }
#define KILN_VALUES_DIFFER(x, y) static_cast<unsigned>((x) != (y))
#define KILN_BOOLS_DIFFER(x, y) static_cast<unsigned>(((x) ^ (y)) & 1)
/// X(memref element, stored element, suffix, difference) for each element
/// type: an i1 tensor holds a byte (0 or 1) per element.
#define KILN_EQUAL_TYPES(X)                                                    \
  X(float, float, f32, KILN_VALUES_DIFFER)                                     \
  X(double, double, f64, KILN_VALUES_DIFFER)                                   \
  X(int64_t, int64_t, i64, KILN_VALUES_DIFFER)                                 \
  X(int32_t, int32_t, i32, KILN_VALUES_DIFFER)                                 \
  X(bool, uint8_t, i1, KILN_BOOLS_DIFFER)
KILN_EQUAL_TYPES(KILN_EQUAL_RANGE)
#undef KILN_EQUAL_RANGE

/// torch.equal of the contiguous tensors `a` and `b` (of the same shape:
/// the verifier and kiln-decompose see to it).
template <typename T, typename Stored>
bool equalTensors(UnrankedMemRefType<T> *a, UnrankedMemRefType<T> *b) {
  View<T> lhs = view(a), rhs = view(b);
  int64_t n = numElements(lhs.shape);
  const auto *x = reinterpret_cast<const Stored *>(lhs.data);
  const auto *y = reinterpret_cast<const Stored *>(rhs.data);
  constexpr int64_t kSpanElements = kEqualSpanBytes / sizeof(Stored);
  int64_t spans = (n + kSpanElements - 1) / kSpanElements;
  int64_t workers = std::clamp<int64_t>(
      std::min(spans, n / kEqualChunkElements), 1, getNumThreads());
  std::atomic<bool> differs{false};
  parallelFor(workers, 1, [&](int64_t begin, int64_t end) {
    for (int64_t w = begin; w < end; ++w)
      if (rangeDiffers(x, y, n, w, workers, differs))
        differs.store(true, std::memory_order_relaxed);
  });
  return !differs.load();
}

} // namespace

extern "C" {
#define KILN_EQUAL_ENTRY_POINT(T, STORED, SUFFIX, DIFFER)                      \
  bool _mlir_ciface_kiln_rt_equal_##SUFFIX(UnrankedMemRefType<T> *a,           \
                                           UnrankedMemRefType<T> *b) {         \
    return equalTensors<T, STORED>(a, b);                                      \
  }
KILN_EQUAL_TYPES(KILN_EQUAL_ENTRY_POINT)
#undef KILN_EQUAL_ENTRY_POINT
}
#undef KILN_EQUAL_TYPES
#undef KILN_BOOLS_DIFFER
#undef KILN_VALUES_DIFFER
