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
#include <cstdlib>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

// The vectorized scans are compiled for several instruction sets and picked
// at load time (the runtime itself targets baseline x86-64).
#if defined(__clang__) && defined(__x86_64__)
#define KILN_VECTORIZE                                                         \
  __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define KILN_VECTORIZE
#endif

namespace kiln::runtime {

/// A runtime kernel's scratch allocation (ScratchAllocator) failed: thrown
/// out of the kernel's work -- out of parallelFor's workers too -- to its C
/// entry point (runKernel). These files are compiled with exceptions for
/// it (CMakeLists.txt); nothing else in the runtime throws.
struct ScratchOutOfMemory {
  size_t bytes;
};

/// Ends the run in progress because `bytes` could not be allocated, as a
/// failed allocation of generated code does (Kernels.cpp): on the run's
/// thread outside parallel loops, back to runCatchingOutOfMemory, which
/// frees the run's blocks and reports the size (kiln-run exits 2, the C++
/// API throws kiln::Error); inside a parallel loop, a message and exit
/// code 2. `what` names what the memory was for ("a temporary tensor",
/// "kiln.topk's scratch").
[[noreturn]] void failAllocation(size_t bytes, const char *what);

/// A block for a runtime kernel's scratch from the allocator of generated
/// code's temporaries (Kernels.cpp: 64-byte aligned, blocks of 4 MiB and
/// more on huge pages, freed blocks of 64 KiB and more cached by size for
/// the next run), or null; and its release.
void *allocateScratch(size_t bytes);
void releaseScratch(void *p);

/// The allocator of the runtime kernels' scratch (candidates, keys, sort
/// buffers): allocateScratch, and a
/// failure thrown as ScratchOutOfMemory -- operator new would call the
/// process's new handler instead (LLVM's, in the tools, aborts). Elements
/// are default-initialized: a resized buffer of keys is written before it
/// is read, and zeroing it cost more than the selection (kthvalue of 16M
/// floats at 1 thread: 80% of the time in memset and the page faults of
/// fresh malloc blocks).
template <typename T> struct ScratchAllocator {
  static_assert(alignof(T) <= 64, "blocks are 64-byte aligned");
  using value_type = T;
  ScratchAllocator() = default;
  template <typename U> ScratchAllocator(const ScratchAllocator<U> &) {}
  T *allocate(size_t n) {
    size_t bytes;
    if (__builtin_mul_overflow(n, sizeof(T), &bytes))
      throw ScratchOutOfMemory{SIZE_MAX};
    if (void *p = allocateScratch(bytes))
      return static_cast<T *>(p);
    throw ScratchOutOfMemory{bytes};
  }
  void deallocate(T *p, size_t) { releaseScratch(p); }
  template <typename U, typename... Args> void construct(U *p, Args &&...args) {
    if constexpr (sizeof...(Args) == 0)
      ::new (static_cast<void *>(p)) U;
    else
      ::new (static_cast<void *>(p)) U(std::forward<Args>(args)...);
  }
  template <typename U> bool operator==(const ScratchAllocator<U> &) const {
    return true;
  }
  template <typename U> bool operator!=(const ScratchAllocator<U> &) const {
    return false;
  }
};
template <typename T> using ScratchVector = std::vector<T, ScratchAllocator<T>>;

/// Runs a runtime kernel's work from its C entry point: a scratch
/// allocation that fails ends the run there (failAllocation, `what` naming
/// the scratch), after the work's frames have freed what they held.
template <typename Body> void runKernel(const char *what, Body &&body) {
  size_t failed = 0;
  try {
    body();
  } catch (const ScratchOutOfMemory &error) {
    failed = error.bytes;
  }
  if (failed)
    failAllocation(failed, what);
}

} // namespace kiln::runtime

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
// kiln.equal (Equal.cpp): whether the two tensors are equal.
bool _mlir_ciface_kiln_rt_equal_f32(UnrankedMemRefType<float> *a,
                                    UnrankedMemRefType<float> *b);
bool _mlir_ciface_kiln_rt_equal_f64(UnrankedMemRefType<double> *a,
                                    UnrankedMemRefType<double> *b);
bool _mlir_ciface_kiln_rt_equal_i64(UnrankedMemRefType<int64_t> *a,
                                    UnrankedMemRefType<int64_t> *b);
bool _mlir_ciface_kiln_rt_equal_i32(UnrankedMemRefType<int32_t> *a,
                                    UnrankedMemRefType<int32_t> *b);
bool _mlir_ciface_kiln_rt_equal_i1(UnrankedMemRefType<bool> *a,
                                   UnrankedMemRefType<bool> *b);
}

#endif // KILN_LIB_RUNTIME_KERNELSUPPORT_H
