//===- KernelSupport.h - What the CPU kernels share -------------*- C++ -*-===//
//
// Private to lib/Runtime: the pieces the CPU kernel files (Selection.cpp,
// ArgReduce.cpp) share, and the C entry points they define, which
// kernelSymbols (Kernels.cpp) hands to the JIT.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_LIB_RUNTIME_KERNELSUPPORT_H
#define KILN_LIB_RUNTIME_KERNELSUPPORT_H

#include "mlir/ExecutionEngine/CRunnerUtils.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

// The vectorized scans are compiled for several instruction sets and picked
// at load time (the runtime itself targets baseline x86-64).
#if defined(__clang__) && defined(__x86_64__)
#define KILN_VECTORIZE                                                         \
  __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define KILN_VECTORIZE
#endif

namespace kiln::runtime::detail {

template <typename T> bool isNan(T value) {
  if constexpr (std::is_floating_point_v<T>)
    return std::isnan(value);
  else
    return false;
}

/// The grain for parallelFor over items of `itemWork` element steps each:
/// as many items as make about `chunkWork` steps, at least one.
inline int64_t itemsPerChunk(int64_t itemWork, int64_t chunkWork) {
  return std::max<int64_t>(1, chunkWork / std::max<int64_t>(itemWork, 1));
}

#if defined(__clang__)
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
#endif

/// max/min/argmax/argmin with dim (values and indices) of `in` along `dim`,
/// or over all elements when `flatten` (ArgReduce.cpp; float, double and
/// int64_t). topk with k = 1 and largest takes it too (Selection.cpp).
template <typename T>
void argReduce(UnrankedMemRefType<T> *in, UnrankedMemRefType<T> *values,
               UnrankedMemRefType<int64_t> *indices, int64_t dim, bool isMax,
               bool flatten);

} // namespace kiln::runtime::detail

// The kernels' C entry points (MLIR's C interface for unranked memrefs).
extern "C" {
#define KILN_DECLARE_ENTRY_POINTS(T, SUFFIX)                                   \
  void _mlir_ciface_kiln_rt_topk_##SUFFIX(                                     \
      UnrankedMemRefType<T> *in, UnrankedMemRefType<T> *values,                \
      UnrankedMemRefType<int64_t> *indices, int64_t k, int64_t dim,            \
      bool largest, bool sorted);                                              \
  void _mlir_ciface_kiln_rt_kthvalue_##SUFFIX(                                 \
      UnrankedMemRefType<T> *in, UnrankedMemRefType<T> *values,                \
      UnrankedMemRefType<int64_t> *indices, int64_t k, int64_t dim, bool,      \
      bool);                                                                   \
  void _mlir_ciface_kiln_rt_argreduce_##SUFFIX(                                \
      UnrankedMemRefType<T> *in, UnrankedMemRefType<T> *values,                \
      UnrankedMemRefType<int64_t> *indices, int64_t k, int64_t dim,            \
      bool isMax, bool flatten);
KILN_DECLARE_ENTRY_POINTS(float, f32)
KILN_DECLARE_ENTRY_POINTS(double, f64)
KILN_DECLARE_ENTRY_POINTS(int64_t, i64)
#undef KILN_DECLARE_ENTRY_POINTS
}

#endif // KILN_LIB_RUNTIME_KERNELSUPPORT_H
