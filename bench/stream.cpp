//===- stream.cpp - STREAM-style memory bandwidth of this machine ---------===//
//
// kiln-stream [--threads=N]: best-of-10 `copy` (b[i] = a[i]) and `sum`
// (read-only reduction) bandwidth over 256 MiB arrays (on huge pages where
// the kernel allows), in GB/s, counting
// bytes read plus bytes written, as STREAM does. bench/run.py uses it as the
// machine's limit for memory-bound kernels.
//
//===----------------------------------------------------------------------===//

#include "../lib/Runtime/HugePages.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

int main(int argc, char **argv) {
  int threads = omp_get_max_threads();
  for (int i = 1; i < argc; ++i)
    if (std::strncmp(argv[i], "--threads=", 10) == 0)
      threads = std::max(1, std::atoi(argv[i] + 10));
  omp_set_num_threads(threads);
  const size_t n = size_t(64) << 20; // 64 Mi floats = 256 MiB per array
  // On huge pages, as Kiln's buffers and NumPy's arrays are
  // (lib/Runtime/HugePages.h).
  float *a = static_cast<float *>(
      kiln::runtime::allocateHostBuffer(n * sizeof(float)));
  float *b = static_cast<float *>(
      kiln::runtime::allocateHostBuffer(n * sizeof(float)));
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; ++i) {
    a[i] = 1.0f;
    b[i] = 0.0f;
  }
  double bestCopy = 1e30, bestSum = 1e30;
  volatile float sink = 0;
  for (int rep = 0; rep < 10; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; ++i)
      b[i] = a[i];
    auto t1 = std::chrono::steady_clock::now();
    float total = 0;
#pragma omp parallel for simd schedule(static) reduction(+ : total)
    for (size_t i = 0; i < n; ++i)
      total += a[i];
    auto t2 = std::chrono::steady_clock::now();
    sink = sink + total + b[rep];
    bestCopy =
        std::min(bestCopy, std::chrono::duration<double>(t1 - t0).count());
    bestSum = std::min(bestSum, std::chrono::duration<double>(t2 - t1).count());
  }
  double bytes = double(n) * sizeof(float);
  std::printf("{\"threads\": %d, \"copy_gbs\": %.2f, \"read_gbs\": %.2f}\n",
              threads, 2 * bytes / bestCopy / 1e9, bytes / bestSum / 1e9);
  std::free(a);
  std::free(b);
  return 0;
}
