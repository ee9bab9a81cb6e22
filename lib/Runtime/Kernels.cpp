//===- Kernels.cpp - Kiln runtime kernels ---------------------------------===//
//
// topk and kthvalue over one dim of a contiguous tensor, parallel over rows.
//
// Ordering (ops.md): NaN compares greater than every number; among equal
// values the lowest index wins, and a sorted topk lists equal values by
// ascending index. Both kernels compare (value, index) keys under that
// total order, so results are the same for every thread count.
//
// topk chooses its algorithm by k and the row length n: k <= 64 keeps a
// sorted buffer of the k best (one pass; insertion only when an element
// beats the current k-th); larger k selects with nth_element over an index
// array and sorts the k winners.
//
//===----------------------------------------------------------------------===//

#include "kiln/Runtime/Kernels.h"

#include "mlir/ExecutionEngine/CRunnerUtils.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <mutex>
#include <thread>

#include <omp.h>

using namespace kiln::runtime;

namespace {

std::atomic<bool> hasError{false};
std::mutex errorMutex;
IndexError recordedError{0, 0, 0};
std::atomic<int> numThreads{
    static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))};

/// A contiguous row-major view of an unranked memref argument.
template <typename T>
struct View {
  T *data;
  std::vector<int64_t> shape;
};

template <typename T>
View<T> view(UnrankedMemRefType<T> *memref) {
  auto *desc = static_cast<StridedMemRefType<T, 1> *>(memref->descriptor);
  View<T> result;
  result.data = desc->data + desc->offset;
  // Sizes follow the offset in every ranked descriptor layout.
  const int64_t *sizes = &desc->offset + 1;
  result.shape.assign(sizes, sizes + memref->rank);
  return result;
}

/// Outer size, dim size and inner size of `shape` split at `dim` (a rank-0
/// tensor is one row of one element).
struct Split {
  int64_t outer = 1, size = 1, inner = 1;
};

Split split(const std::vector<int64_t> &shape, int64_t dim) {
  Split s;
  for (int64_t d = 0; d < static_cast<int64_t>(shape.size()); ++d) {
    if (d < dim)
      s.outer *= shape[d];
    else if (d == dim)
      s.size = shape[d];
    else
      s.inner *= shape[d];
  }
  return s;
}

template <typename T>
bool isNan(T value) {
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

template <typename T>
void topkRow(const T *row, int64_t n, int64_t stride, int64_t k, bool largest,
             T *outValues, int64_t *outIndices, int64_t outStride,
             std::vector<int64_t> &scratch) {
  if (k == 0)
    return;
  auto value = [&](int64_t i) { return row[i * stride]; };
  if (k <= 64) {
    // Sorted buffer of the best k so far, best first.
    T bestValues[64];
    int64_t bestIndices[64];
    int64_t count = 0;
    for (int64_t i = 0; i < n; ++i) {
      T v = value(i);
      if (count == k &&
          !before(v, i, bestValues[k - 1], bestIndices[k - 1], largest))
        continue;
      int64_t pos = count < k ? count++ : k - 1;
      while (pos > 0 &&
             before(v, i, bestValues[pos - 1], bestIndices[pos - 1], largest)) {
        bestValues[pos] = bestValues[pos - 1];
        bestIndices[pos] = bestIndices[pos - 1];
        --pos;
      }
      bestValues[pos] = v;
      bestIndices[pos] = i;
    }
    for (int64_t j = 0; j < k; ++j) {
      outValues[j * outStride] = bestValues[j];
      outIndices[j * outStride] = bestIndices[j];
    }
    return;
  }
  scratch.resize(n);
  for (int64_t i = 0; i < n; ++i)
    scratch[i] = i;
  auto less = [&](int64_t a, int64_t b) {
    return before(value(a), a, value(b), b, largest);
  };
  if (k < n)
    std::nth_element(scratch.begin(), scratch.begin() + (k - 1),
                     scratch.end(), less);
  std::sort(scratch.begin(), scratch.begin() + k, less);
  for (int64_t j = 0; j < k; ++j) {
    outValues[j * outStride] = value(scratch[j]);
    outIndices[j * outStride] = scratch[j];
  }
}

template <typename T>
void topk(UnrankedMemRefType<T> *in, UnrankedMemRefType<T> *values,
          UnrankedMemRefType<int64_t> *indices, int64_t k, int64_t dim,
          bool largest) {
  View<T> input = view(in);
  T *outValues = view(values).data;
  int64_t *outIndices = view(indices).data;
  Split s = split(input.shape, dim);
  int64_t rows = s.outer * s.inner;
  parallelFor(rows, std::max<int64_t>(1, 65536 / std::max<int64_t>(s.size, 1)),
              [&](int64_t begin, int64_t end) {
                std::vector<int64_t> scratch;
                for (int64_t r = begin; r < end; ++r) {
                  int64_t o = r / s.inner, i = r % s.inner;
                  const T *row = input.data + o * s.size * s.inner + i;
                  int64_t out = o * k * s.inner + i;
                  topkRow(row, s.size, s.inner, k, largest, outValues + out,
                          outIndices + out, s.inner, scratch);
                }
              });
}

template <typename T>
void kthvalue(UnrankedMemRefType<T> *in, UnrankedMemRefType<T> *values,
              UnrankedMemRefType<int64_t> *indices, int64_t k, int64_t dim) {
  View<T> input = view(in);
  T *outValues = view(values).data;
  int64_t *outIndices = view(indices).data;
  Split s = split(input.shape, dim);
  int64_t rows = s.outer * s.inner;
  parallelFor(rows, std::max<int64_t>(1, 65536 / std::max<int64_t>(s.size, 1)),
              [&](int64_t begin, int64_t end) {
                std::vector<int64_t> order(s.size);
                for (int64_t r = begin; r < end; ++r) {
                  int64_t o = r / s.inner, i = r % s.inner;
                  const T *row = input.data + o * s.size * s.inner + i;
                  auto value = [&](int64_t j) { return row[j * s.inner]; };
                  for (int64_t j = 0; j < s.size; ++j)
                    order[j] = j;
                  auto less = [&](int64_t a, int64_t b) {
                    return before(value(a), a, value(b), b,
                                  /*largest=*/false);
                  };
                  std::nth_element(order.begin(), order.begin() + (k - 1),
                                   order.end(), less);
                  int64_t picked = order[k - 1];
                  T v = value(picked);
                  // Lowest index holding the same value (ops.md tie rule).
                  for (int64_t j = 0; j < picked; ++j) {
                    T w = value(j);
                    if ((isNan(v) && isNan(w)) || w == v) {
                      picked = j;
                      break;
                    }
                  }
                  outValues[r] = v;
                  outIndices[r] = picked;
                }
              });
}

} // namespace

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
  numThreads = std::max(1, threads);
  omp_set_num_threads(numThreads);
}

int kiln::runtime::getNumThreads() { return numThreads; }

void kiln::runtime::parallelFor(
    int64_t count, int64_t grain,
    const std::function<void(int64_t, int64_t)> &body) {
  // Chunks depend only on count, grain and the thread count; OpenMP's pool
  // is the one the generated loops use, so kernels never oversubscribe.
  int64_t chunks = std::min<int64_t>(
      numThreads, (count + std::max<int64_t>(grain, 1) - 1) /
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

extern "C" {

void _mlir_ciface_kiln_rt_index_error(int64_t site, int64_t index,
                                      int64_t size) {
  std::lock_guard<std::mutex> lock(errorMutex);
  if (hasError)
    return;
  recordedError = {site, index, size};
  hasError = true;
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

KILN_SELECTION_ENTRY_POINTS(float, f32)
KILN_SELECTION_ENTRY_POINTS(double, f64)
KILN_SELECTION_ENTRY_POINTS(int64_t, i64)
#undef KILN_SELECTION_ENTRY_POINTS
}

std::vector<std::pair<llvm::StringRef, void *>> kiln::runtime::kernelSymbols() {
  return {
      {"_mlir_ciface_kiln_rt_index_error",
       reinterpret_cast<void *>(&_mlir_ciface_kiln_rt_index_error)},
#define KILN_SYMBOL(NAME) {#NAME, reinterpret_cast<void *>(&NAME)}
      KILN_SYMBOL(_mlir_ciface_kiln_rt_topk_f32),
      KILN_SYMBOL(_mlir_ciface_kiln_rt_topk_f64),
      KILN_SYMBOL(_mlir_ciface_kiln_rt_topk_i64),
      KILN_SYMBOL(_mlir_ciface_kiln_rt_kthvalue_f32),
      KILN_SYMBOL(_mlir_ciface_kiln_rt_kthvalue_f64),
      KILN_SYMBOL(_mlir_ciface_kiln_rt_kthvalue_i64),
#undef KILN_SYMBOL
  };
}
