//===- Kernels.h - Kiln runtime kernels -------------------------*- C++ -*-===//
//
// Kernels the generated code calls (selection ops) and the runtime error
// state (index checks). The C entry points follow MLIR's C interface for
// unranked memrefs: `_mlir_ciface_kiln_rt_<name>`.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_KERNELS_H
#define KILN_RUNTIME_KERNELS_H

#include "llvm/ADT/StringRef.h"
#include <cstdint>
#include <functional>
#include <optional>
#include <utility>
#include <vector>

namespace kiln::runtime {

/// The first runtime index error of a run: check site, bad index, bound.
struct IndexError {
  int64_t site;
  int64_t index;
  int64_t size;
};

/// Clears the error state before a run.
void resetErrors();

/// The first error recorded since the last reset, if any.
std::optional<IndexError> firstError();

/// The most worker threads a run may use: OpenMP aborts the process when
/// the system cannot create the threads it is asked for (100000 here).
constexpr int kMaxThreads = 1024;

/// Number of worker threads kernels may use, clamped to [1, kMaxThreads].
void setNumThreads(int threads);
int getNumThreads();

/// Makes the calling thread's parallel regions (the OpenMP loops of
/// generated code) use getNumThreads() workers: OpenMP's thread count is a
/// per-thread setting, and graphs may run on any application thread.
void useNumThreadsOnThisThread();

/// Runs `body(begin, end)` over [0, count) split into contiguous chunks
/// across the worker threads. The split depends only on `count` and the
/// thread count; every element is processed exactly once.
void parallelFor(int64_t count, int64_t grain,
                 const std::function<void(int64_t, int64_t)> &body);

/// An allocation that failed: its size, and what it was for ("a temporary
/// tensor", "kiln.topk's scratch").
struct AllocationFailure {
  size_t bytes;
  const char *what;
};

/// Calls `entry(pointers)`, a packed entry of generated code. When one of
/// its allocations (a temporary tensor, or the scratch of a runtime kernel
/// it calls) fails on this thread outside the parallel loops, the run stops
/// there: what it had allocated is freed and the result says what failed
/// (none when the run completed). A failure inside a parallel loop of
/// generated code — only small per-iteration buffers are allocated there —
/// reports and exits with code 2.
std::optional<AllocationFailure> runCatchingOutOfMemory(void (*entry)(void **),
                                                        void **pointers);

/// Kernel timing (kiln-profile-kernels, kiln-run --profile): per site of
/// the compiled code, the time spent and the number of calls since the
/// last reset. Process-wide, for one run at a time (kiln-run; the C++ API
/// runs graphs one at a time as well).
struct ProfileCount {
  double ms = 0;
  int64_t calls = 0;
};
void resetProfile();
std::vector<ProfileCount> profileCounts();

/// Symbols of the C entry points, for the JIT's symbol map.
std::vector<std::pair<llvm::StringRef, void *>> kernelSymbols();

} // namespace kiln::runtime

#endif // KILN_RUNTIME_KERNELS_H
