//===- Kernels.cpp - The runtime generated code calls into ----------------===//
//
// What the CPU kernels and the generated code share at run time: the thread
// count and parallelFor (on OpenMP's pool, the one the generated parallel
// loops use), the caching allocator generated code allocates through and
// its out-of-memory recovery, the index-error record, the profile timers,
// the positions sort of the scatters, and the symbol table the JIT binds.
// The kernels themselves: Selection.cpp (topk, kthvalue) and ArgReduce.cpp
// (max/min with indices, argmax, argmin).
//
//===----------------------------------------------------------------------===//

#include "kiln/Runtime/Kernels.h"

#include "HugePages.h"
#include "KernelSupport.h"
#include "MemRefViews.h"

#include "mlir/ExecutionEngine/CRunnerUtils.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <tuple>
#include <unordered_set>
#include <utility>
#include <vector>

#include <omp.h>

using namespace kiln::runtime;
using kiln::runtime::detail::view;
using kiln::runtime::detail::View;

namespace {

std::atomic<bool> hasError{false};
/// kiln_rt_profile_enter/exit: when each site's kernel started, its totals.
std::vector<std::chrono::steady_clock::time_point> profileStarts;
std::vector<kiln::runtime::ProfileCount> profile;
std::mutex errorMutex;
IndexError recordedError{0, 0, 0};
std::atomic<int> numThreads{
    static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))};

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
  // A worker's failed scratch allocation cannot leave the parallel region:
  // the largest failed size is thrown again after it (KernelSupport.h).
  std::atomic<size_t> failed{0};
#pragma omp parallel for schedule(static) num_threads(chunks)
  for (int64_t c = 0; c < chunks; ++c) {
    int64_t begin = c * per, end = std::min(count, begin + per);
    if (begin >= end)
      continue;
    try {
      body(begin, end);
    } catch (const kiln::runtime::ScratchOutOfMemory &error) {
      size_t seen = failed.load();
      while (seen < error.bytes &&
             !failed.compare_exchange_weak(seen, error.bytes)) {
      }
    }
  }
  if (size_t bytes = failed.load())
    throw kiln::runtime::ScratchOutOfMemory{bytes};
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
  const char *failedWhat = nullptr;
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
  kiln::runtime::failAllocation(bytes, "a temporary tensor");
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

void *kiln::runtime::allocateScratch(size_t bytes) {
  return allocateBlock(bytes);
}

void kiln::runtime::releaseScratch(void *p) { release(p); }

void kiln::runtime::failAllocation(size_t bytes, const char *what) {
  if (AllocationGuard *guard = trackingGuard()) {
    guard->failedBytes = bytes;
    guard->failedWhat = what;
    longjmp(guard->failed, 1);
  }
  // Inside a parallel loop there is no way back to the caller.
  std::fprintf(stderr,
               "kiln: out of memory: a kernel could not allocate %zu bytes "
               "for %s\n",
               bytes, what);
  std::_Exit(2);
}

std::optional<kiln::runtime::AllocationFailure>
kiln::runtime::runCatchingOutOfMemory(void (*entry)(void **), void **pointers) {
  AllocationGuard guard;
  AllocationGuard *outer = activeGuard;
  activeGuard = &guard;
  if (setjmp(guard.failed) == 0) {
    entry(pointers);
    activeGuard = outer;
    return std::nullopt;
  }
  // An allocation failed: the entry's frames are gone, its blocks are not.
  activeGuard = outer;
  for (void *p : guard.live)
    release(p);
  return AllocationFailure{guard.failedBytes, guard.failedWhat};
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
      KILN_SYMBOL(_mlir_ciface_kiln_rt_equal_f32),
      KILN_SYMBOL(_mlir_ciface_kiln_rt_equal_f64),
      KILN_SYMBOL(_mlir_ciface_kiln_rt_equal_i64),
      KILN_SYMBOL(_mlir_ciface_kiln_rt_equal_i32),
      KILN_SYMBOL(_mlir_ciface_kiln_rt_equal_i1),
#undef KILN_SYMBOL
  };
}
