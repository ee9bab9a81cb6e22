//===- Cuda.h - The CUDA driver runtime of the GPU target -------*- C++ -*-===//
//
// Kiln talks to NVIDIA GPUs through the CUDA driver API, loaded at run time
// with dlopen("libcuda.so.1"): there is no link-time CUDA dependency, and a
// machine without a GPU gets a clear error instead of a loader failure.
//
// Generated host code calls MLIR's GPU runtime ABI (mgpuModuleLoadJIT,
// mgpuLaunchKernel, ...), malloc/free for its buffers and the selection
// kernels' entry points; symbols() binds all of them to the implementations
// here, which put every launch, allocation and copy of a thread on one
// stream (in order; nothing waits until the run ends).
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_CUDA_H
#define KILN_RUNTIME_CUDA_H

#include "kiln/Pipelines/Pipelines.h"
#include "kiln/Runtime/Kernels.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace kiln::runtime::cuda {

/// Loads the driver, initializes it and makes the primary context of
/// device 0 current on the calling thread. Fails (with the reason) when
/// libcuda.so.1 or a CUDA device is missing.
llvm::Error initialize();

/// The device's name and compute capability, e.g. "NVIDIA H100 (sm_90)".
std::string describeDevice();

/// Initializes the driver (see initialize()) and points `options` at the
/// device: Target::Cuda, and the device's architecture as the chip
/// ("sm_80", "sm_90", ...; sm_90 when Kiln does not know it).
llvm::Error targetDevice(kiln::CompileOptions &options);

/// Stream-ordered device memory on the calling thread's stream.
void *allocate(size_t bytes);
void release(void *pointer);
void copyToDevice(void *device, const void *host, size_t bytes);
void copyToHost(void *host, const void *device, size_t bytes);

/// Clears the device-side index error record of the calling thread.
void resetIndexError();

/// Waits for the calling thread's stream. Returns the first driver error
/// since the last call (a failed launch, an illegal address, ...).
llvm::Error synchronize();

/// After synchronize(): the first out-of-range index a kernel reported.
std::optional<IndexError> takeIndexError();

/// Device time between two points of the calling thread's stream.
class Timer {
public:
  Timer();
  ~Timer();
  void start();
  void stop();
  /// Milliseconds between start() and stop() (after synchronize()).
  double elapsedMs() const;

private:
  void *begin = nullptr, *end = nullptr;
};

/// The symbols generated GPU host code calls, for the JIT's symbol map.
std::vector<std::pair<llvm::StringRef, void *>> symbols();

/// The PTX of Kiln's selection kernels (topk, kthvalue, max/min/argmax).
llvm::StringRef devicePtx();

} // namespace kiln::runtime::cuda

#endif // KILN_RUNTIME_CUDA_H
