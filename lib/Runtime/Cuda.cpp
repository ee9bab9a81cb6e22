//===- Cuda.cpp - The CUDA driver runtime of the GPU target ---------------===//

#include "kiln/Runtime/Cuda.h"
#include "kiln/Runtime/GpuErrorRecord.h"

#include "kiln/Pipelines/Pipelines.h"
#include "kiln/Support/GpuChips.h"

#include "Device/SortPlan.h"
#include "Device/TopkPlan.h"
#include "MemRefViews.h"

#include <dlfcn.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>

using namespace kiln::runtime;

namespace {

//===----------------------------------------------------------------------===//
// The driver API, loaded with dlopen
//===----------------------------------------------------------------------===//

using CUresult = int;
using CUdevice = int;
using CUdeviceptr = unsigned long long;
using CUcontext = void *;
using CUmodule = void *;
using CUfunction = void *;
using CUstream = void *;
using CUevent = void *;
using CUmemoryPool = void *;

constexpr int kStreamNonBlocking = 1;
constexpr int kAttrComputeMajor = 75, kAttrComputeMinor = 76;
constexpr int kJitErrorLogBuffer = 5, kJitErrorLogBufferSize = 6,
              kJitOptimizationLevel = 7;
constexpr int kPoolReleaseThreshold = 4;

struct Driver {
  CUresult (*cuInit)(unsigned);
  CUresult (*cuDeviceGet)(CUdevice *, int);
  CUresult (*cuDeviceGetCount)(int *);
  CUresult (*cuDeviceGetName)(char *, int, CUdevice);
  CUresult (*cuDeviceGetAttribute)(int *, int, CUdevice);
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext *, CUdevice);
  CUresult (*cuCtxSetCurrent)(CUcontext);
  CUresult (*cuGetErrorString)(CUresult, const char **);
  CUresult (*cuModuleLoadData)(CUmodule *, const void *);
  CUresult (*cuModuleLoadDataEx)(CUmodule *, const void *, unsigned, int *,
                                 void **);
  CUresult (*cuModuleUnload)(CUmodule);
  CUresult (*cuModuleGetFunction)(CUfunction *, CUmodule, const char *);
  CUresult (*cuLaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned,
                             unsigned, unsigned, unsigned, CUstream, void **,
                             void **);
  CUresult (*cuStreamCreate)(CUstream *, unsigned);
  CUresult (*cuStreamSynchronize)(CUstream);
  CUresult (*cuMemAllocAsync)(CUdeviceptr *, size_t, CUstream);
  CUresult (*cuMemFreeAsync)(CUdeviceptr, CUstream);
  CUresult (*cuMemcpyHtoDAsync)(CUdeviceptr, const void *, size_t, CUstream);
  CUresult (*cuMemcpyDtoHAsync)(void *, CUdeviceptr, size_t, CUstream);
  CUresult (*cuMemsetD8Async)(CUdeviceptr, unsigned char, size_t, CUstream);
  CUresult (*cuDeviceGetDefaultMemPool)(CUmemoryPool *, CUdevice);
  CUresult (*cuMemPoolSetAttribute)(CUmemoryPool, int, void *);
  CUresult (*cuEventCreate)(CUevent *, unsigned);
  CUresult (*cuEventDestroy)(CUevent);
  CUresult (*cuEventRecord)(CUevent, CUstream);
  CUresult (*cuEventElapsedTime)(float *, CUevent, CUevent);
};

Driver driver;
CUdevice device = 0;
CUcontext context = nullptr;
std::string loadError; // why the driver is unusable, once tried

/// Loads libcuda.so.1 and device 0's primary context (once per process).
void loadDriver() {
  void *library = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!library) {
    loadError = "no CUDA driver (libcuda.so.1 could not be loaded)";
    return;
  }
  bool complete = true;
  auto bind = [&](auto &field, const char *name) {
    field = reinterpret_cast<std::remove_reference_t<decltype(field)>>(
        dlsym(library, name));
    complete &= field != nullptr;
  };
  bind(driver.cuInit, "cuInit");
  bind(driver.cuDeviceGet, "cuDeviceGet");
  bind(driver.cuDeviceGetCount, "cuDeviceGetCount");
  bind(driver.cuDeviceGetName, "cuDeviceGetName");
  bind(driver.cuDeviceGetAttribute, "cuDeviceGetAttribute");
  bind(driver.cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
  bind(driver.cuCtxSetCurrent, "cuCtxSetCurrent");
  bind(driver.cuGetErrorString, "cuGetErrorString");
  bind(driver.cuModuleLoadData, "cuModuleLoadData");
  bind(driver.cuModuleLoadDataEx, "cuModuleLoadDataEx");
  bind(driver.cuModuleUnload, "cuModuleUnload");
  bind(driver.cuModuleGetFunction, "cuModuleGetFunction");
  bind(driver.cuLaunchKernel, "cuLaunchKernel");
  bind(driver.cuStreamCreate, "cuStreamCreate");
  bind(driver.cuStreamSynchronize, "cuStreamSynchronize");
  bind(driver.cuMemAllocAsync, "cuMemAllocAsync");
  bind(driver.cuMemFreeAsync, "cuMemFreeAsync");
  bind(driver.cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2");
  bind(driver.cuMemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2");
  bind(driver.cuMemsetD8Async, "cuMemsetD8Async");
  bind(driver.cuDeviceGetDefaultMemPool, "cuDeviceGetDefaultMemPool");
  bind(driver.cuMemPoolSetAttribute, "cuMemPoolSetAttribute");
  bind(driver.cuEventCreate, "cuEventCreate");
  bind(driver.cuEventDestroy, "cuEventDestroy_v2");
  bind(driver.cuEventRecord, "cuEventRecord");
  bind(driver.cuEventElapsedTime, "cuEventElapsedTime");
  if (!complete) {
    loadError = "the CUDA driver is too old (Kiln needs CUDA 11.2 or newer)";
    return;
  }
  int count = 0;
  if (driver.cuInit(0) != 0 || driver.cuDeviceGetCount(&count) != 0 ||
      count == 0) {
    loadError = "no CUDA device present";
    return;
  }
  if (driver.cuDeviceGet(&device, 0) != 0 ||
      driver.cuDevicePrimaryCtxRetain(&context, device) != 0) {
    loadError = "the CUDA device could not be opened";
    return;
  }
  // Freed device memory stays in the stream-ordered pool for the next run.
  CUmemoryPool pool;
  if (driver.cuDeviceGetDefaultMemPool(&pool, device) == 0) {
    uint64_t keep = ~uint64_t(0);
    driver.cuMemPoolSetAttribute(pool, kPoolReleaseThreshold, &keep);
  }
}

std::string errorString(CUresult result) {
  const char *text = nullptr;
  if (driver.cuGetErrorString && driver.cuGetErrorString(result, &text) == 0 &&
      text)
    return text;
  return "CUDA error " + std::to_string(result);
}

/// The words of the device's index error record (GpuErrorRecord.h).
using ErrorRecord = int64_t[gpu_error_record::kWords];

/// Per-thread state: the stream all work of the thread goes to, the first
/// error since the last synchronize, the index error record.
struct ThreadState {
  CUstream stream = nullptr;
  std::string firstError;
  CUdeviceptr errorRecord = 0;
};
thread_local ThreadState state;

void useContext() {
  static thread_local bool current = false;
  if (!current) {
    driver.cuCtxSetCurrent(context);
    current = true;
  }
}

CUstream stream() {
  useContext();
  if (!state.stream)
    driver.cuStreamCreate(&state.stream, kStreamNonBlocking);
  return state.stream;
}

/// Records the first failure of the thread; later work is skipped.
bool check(CUresult result, const char *what) {
  if (result == 0)
    return true;
  if (state.firstError.empty())
    state.firstError = std::string(what) + ": " + errorString(result);
  return false;
}

bool failed() { return !state.firstError.empty(); }

//===----------------------------------------------------------------------===//
// The selection kernels' module
//===----------------------------------------------------------------------===//

const char kDevicePtx[] =
#include "KilnDevicePtx.inc"
    ;

/// Functions of the embedded module, loaded on first use.
CUfunction libraryFunction(const std::string &name) {
  static std::mutex mutex;
  static CUmodule module = nullptr;
  static std::map<std::string, CUfunction> functions;
  std::lock_guard<std::mutex> lock(mutex);
  if (!module && !check(driver.cuModuleLoadData(&module, kDevicePtx),
                        "loading Kiln's GPU kernels"))
    return nullptr;
  auto it = functions.find(name);
  if (it != functions.end())
    return it->second;
  CUfunction function = nullptr;
  if (!check(driver.cuModuleGetFunction(&function, module, name.c_str()),
             name.c_str()))
    return nullptr;
  functions[name] = function;
  return function;
}

void launch(const std::string &name, unsigned blocks, unsigned threads,
            std::vector<void *> args) {
  if (failed() || blocks == 0)
    return;
  CUfunction function = libraryFunction(name);
  if (!function)
    return;
  check(driver.cuLaunchKernel(function, blocks, 1, 1, threads, 1, 1, 0,
                              stream(), args.data(), nullptr),
        name.c_str());
}

using kiln::runtime::detail::split;
using kiln::runtime::detail::Split;
using kiln::runtime::detail::view;
using kiln::runtime::detail::View;

/// Candidates a topk block sorts in shared memory (Device/Kernels.cpp).
constexpr int64_t kSharedCandidates = 2048;

template <typename T>
void topk(const char *suffix, UnrankedMemRefType<T> *in,
          UnrankedMemRefType<T> *values, UnrankedMemRefType<int64_t> *indices,
          int64_t k, int64_t dim, bool largest) {
  View<T> input = view(in);
  Split s = split(input.shape, dim);
  int64_t rows = s.outer * s.inner;
  if (k == 0 || rows == 0)
    return;
  int64_t padded = 1;
  while (padded < k)
    padded <<= 1;
  // Few long rows are split into ranges (Device/TopkPlan.h): one block per
  // range, then one per row merging the ranges' k best.
  int64_t chunks = kiln::runtime::device_kernels::topkChunks(rows, s.size, k);
  int64_t blocks = rows * chunks;
  void *scratchKeys = nullptr, *scratchIndices = nullptr;
  if (padded > kSharedCandidates) {
    scratchKeys = cuda::allocate(blocks * padded * sizeof(uint64_t));
    scratchIndices = cuda::allocate(blocks * padded * sizeof(int64_t));
  }
  T *valuesData = view(values).data;
  int64_t *indicesData = view(indices).data;
  int largestFlag = largest;
  if (chunks == 1) {
    launch(std::string("kiln_gpu_topk_") + suffix, rows, 512,
           {&input.data, &valuesData, &indicesData, &s.size, &s.inner, &k,
            &largestFlag, &scratchKeys, &scratchIndices});
  } else {
    void *candidateValues = cuda::allocate(blocks * k * sizeof(T));
    void *candidateRows = cuda::allocate(blocks * k * sizeof(int64_t));
    int64_t candidates = chunks * k;
    launch(std::string("kiln_gpu_topk_chunks_") + suffix, blocks, 512,
           {&input.data, &candidateValues, &candidateRows, &s.size, &s.inner,
            &k, &largestFlag, &chunks, &scratchKeys, &scratchIndices});
    launch(std::string("kiln_gpu_topk_merge_") + suffix, rows, 512,
           {&candidateValues, &candidateRows, &valuesData, &indicesData,
            &candidates, &s.inner, &k, &largestFlag, &scratchKeys,
            &scratchIndices});
    cuda::release(candidateValues);
    cuda::release(candidateRows);
  }
  cuda::release(scratchKeys);
  cuda::release(scratchIndices);
}

template <typename T>
void kthvalue(const char *suffix, UnrankedMemRefType<T> *in,
              UnrankedMemRefType<T> *values,
              UnrankedMemRefType<int64_t> *indices, int64_t k, int64_t dim) {
  View<T> input = view(in);
  Split s = split(input.shape, dim);
  int64_t rows = s.outer * s.inner;
  T *valuesData = view(values).data;
  int64_t *indicesData = view(indices).data;
  // Few long rows are split into ranges (Device/TopkPlan.h); each radix
  // pass counts over all of them, then one thread per row picks the digit.
  int64_t chunks = kiln::runtime::device_kernels::kthvalueChunks(rows, s.size);
  if (chunks == 1) {
    launch(std::string("kiln_gpu_kthvalue_") + suffix, rows, 512,
           {&input.data, &valuesData, &indicesData, &s.size, &s.inner, &k});
    return;
  }
  void *state =
      cuda::allocate(rows * kiln::runtime::device_kernels::kKthStateBytes);
  unsigned blocks = unsigned(rows * chunks),
           perRow = unsigned((rows + 127) / 128);
  launch("kiln_gpu_kth_init", unsigned(rows), 256, {&state, &k});
  for (int shift = int(sizeof(T) * 8) - 8; shift >= 0; shift -= 8) {
    launch(std::string("kiln_gpu_kth_count_") + suffix, blocks, 512,
           {&input.data, &state, &s.size, &s.inner, &chunks, &shift});
    launch("kiln_gpu_kth_pick", perRow, 128, {&state, &rows, &shift});
  }
  launch(std::string("kiln_gpu_kth_lowest_") + suffix, blocks, 512,
         {&input.data, &state, &s.size, &s.inner, &chunks});
  launch(std::string("kiln_gpu_kth_finish_") + suffix, perRow, 128,
         {&input.data, &state, &valuesData, &indicesData, &rows, &s.size,
          &s.inner});
  cuda::release(state);
}

template <typename T>
void argReduce(const char *suffix, UnrankedMemRefType<T> *in,
               UnrankedMemRefType<T> *values,
               UnrankedMemRefType<int64_t> *indices, int64_t dim, bool isMax,
               bool flatten) {
  View<T> input = view(in);
  Split s = kiln::runtime::detail::splitForReduction(input.shape, dim, flatten);
  int64_t rows = s.outer * s.inner;
  T *valuesData = view(values).data;
  int64_t *indicesData = view(indices).data;
  int isMaxFlag = isMax;
  std::string type = suffix;
  if (s.inner == 1 && rows >= 1024)
    launch(
        "kiln_gpu_arg_warp_" + type, (rows + 7) / 8, 256,
        {&input.data, &valuesData, &indicesData, &rows, &s.size, &isMaxFlag});
  else if (s.inner == 1)
    launch("kiln_gpu_arg_block_" + type, rows, 1024,
           {&input.data, &valuesData, &indicesData, &s.size, &s.inner,
            &isMaxFlag});
  else
    launch("kiln_gpu_arg_strided_" + type, (rows + 255) / 256, 256,
           {&input.data, &valuesData, &indicesData, &rows, &s.size, &s.inner,
            &isMaxFlag});
}

/// kiln_rt_sort_positions on the GPU (Device/Kernels.cpp: an LSD radix
/// sort of (target, position) pairs, 8 bits a pass), in scratch memory of
/// the stream: two (keys, positions) buffers and the (digit, tile) counts.
void sortPositions(UnrankedMemRefType<int64_t> *indexArg,
                   UnrankedMemRefType<int64_t> *orderArg,
                   UnrankedMemRefType<int64_t> *startsArg, int64_t size,
                   bool wrap) {
  namespace plan = kiln::runtime::device_kernels;
  View<int64_t> index = view(indexArg);
  int64_t count = kiln::runtime::detail::numElements(index.shape);
  int64_t *order = view(orderArg).data, *starts = view(startsArg).data;
  int64_t tiles = plan::sortTiles(count);
  int64_t total = int64_t(plan::kSortDigits) * tiles;
  auto *scratch = static_cast<uint32_t *>(
      cuda::allocate(sizeof(uint32_t) * (4 * count + total)));
  if (!scratch)
    return;
  uint32_t *keys[2] = {scratch, scratch + count};
  uint32_t *positions[2] = {scratch + 2 * count, scratch + 3 * count};
  uint32_t *counts = scratch + 4 * count;
  int wrapFlag = wrap;
  launch("kiln_gpu_sort_keys", unsigned((count + 255) / 256), 256,
         {&index.data, &keys[0], &positions[0], &count, &size, &wrapFlag});
  int from = 0;
  for (int pass = 0; pass < plan::sortPasses(size); ++pass, from ^= 1) {
    int shift = pass * plan::kSortDigitBits;
    launch("kiln_gpu_sort_count", unsigned(tiles), plan::kSortThreads,
           {&keys[from], &counts, &count, &tiles, &shift});
    launch("kiln_gpu_sort_offsets", 1, plan::kSortScanThreads,
           {&counts, &total});
    launch("kiln_gpu_sort_move", unsigned(tiles), plan::kSortThreads,
           {&keys[from], &positions[from], &keys[from ^ 1],
            &positions[from ^ 1], &counts, &count, &tiles, &shift});
  }
  int64_t threads = std::max(count, size + 1);
  launch("kiln_gpu_sort_finish", unsigned((threads + 255) / 256), 256,
         {&keys[from], &positions[from], &order, &starts, &count, &size});
  cuda::release(scratch);
}

} // namespace

//===----------------------------------------------------------------------===//
// Public interface
//===----------------------------------------------------------------------===//

llvm::Error cuda::initialize() {
  static std::once_flag once;
  std::call_once(once, loadDriver);
  if (!loadError.empty())
    return llvm::createStringError(llvm::inconvertibleErrorCode(), loadError);
  useContext();
  return llvm::Error::success();
}

std::string cuda::describeDevice() {
  char name[256] = {};
  int major = 0, minor = 0;
  driver.cuDeviceGetName(name, sizeof(name), device);
  driver.cuDeviceGetAttribute(&major, kAttrComputeMajor, device);
  driver.cuDeviceGetAttribute(&minor, kAttrComputeMinor, device);
  return std::string(name) + " (sm_" + std::to_string(major) +
         std::to_string(minor) + ")";
}

llvm::Error cuda::targetDevice(kiln::CompileOptions &options) {
  if (llvm::Error error = initialize())
    return error;
  int major = 0, minor = 0;
  driver.cuDeviceGetAttribute(&major, kAttrComputeMajor, device);
  driver.cuDeviceGetAttribute(&minor, kAttrComputeMinor, device);
  // Was sm_90 for every chip not in the table: PTX a device older than
  // sm_90 cannot load, and a newer one (sm_103) could use sm_100's.
  std::optional<std::string> chip = kiln::getChipForDevice(major, minor);
  if (!chip)
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        "the GPU, " + describeDevice() +
            ", is older than every architecture Kiln compiles for (" +
            kiln::getSupportedChipList() + ")");
  options.target = kiln::Target::Cuda;
  options.chip = *chip;
  return llvm::Error::success();
}

void *cuda::allocate(size_t bytes) {
  CUdeviceptr pointer = 0;
  // Zero-sized buffers still get a distinct address.
  if (!check(driver.cuMemAllocAsync(&pointer, bytes ? bytes : 1, stream()),
             "allocating device memory"))
    return nullptr;
  return reinterpret_cast<void *>(pointer);
}

void cuda::release(void *pointer) {
  if (pointer)
    check(
        driver.cuMemFreeAsync(reinterpret_cast<CUdeviceptr>(pointer), stream()),
        "freeing device memory");
}

void cuda::copyToDevice(void *device, const void *host, size_t bytes) {
  if (bytes && !failed())
    check(driver.cuMemcpyHtoDAsync(reinterpret_cast<CUdeviceptr>(device), host,
                                   bytes, stream()),
          "copying to the device");
}

void cuda::copyToHost(void *host, const void *device, size_t bytes) {
  if (bytes && !failed())
    check(driver.cuMemcpyDtoHAsync(host, reinterpret_cast<CUdeviceptr>(device),
                                   bytes, stream()),
          "copying from the device");
}

void cuda::resetIndexError() {
  if (!state.errorRecord)
    state.errorRecord =
        reinterpret_cast<CUdeviceptr>(allocate(sizeof(ErrorRecord)));
  if (state.errorRecord)
    check(driver.cuMemsetD8Async(state.errorRecord, 0, sizeof(ErrorRecord),
                                 stream()),
          "clearing the error record");
}

llvm::Error cuda::synchronize() {
  check(driver.cuStreamSynchronize(stream()), "running on the GPU");
  if (state.firstError.empty())
    return llvm::Error::success();
  std::string message = std::move(state.firstError);
  state.firstError.clear();
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

std::optional<IndexError> cuda::takeIndexError() {
  if (!state.errorRecord)
    return std::nullopt;
  ErrorRecord record = {};
  namespace words = gpu_error_record;
  if (driver.cuMemcpyDtoHAsync(record, state.errorRecord, sizeof(record),
                               stream()) != 0 ||
      driver.cuStreamSynchronize(stream()) != 0 ||
      record[words::kReported] == 0)
    return std::nullopt;
  return IndexError{record[words::kSite], record[words::kIndex],
                    record[words::kSize]};
}

cuda::Timer::Timer() {
  driver.cuEventCreate(&begin, 0);
  driver.cuEventCreate(&end, 0);
}
cuda::Timer::~Timer() {
  driver.cuEventDestroy(begin);
  driver.cuEventDestroy(end);
}
void cuda::Timer::start() { driver.cuEventRecord(begin, stream()); }
void cuda::Timer::stop() { driver.cuEventRecord(end, stream()); }
double cuda::Timer::elapsedMs() const {
  float ms = 0;
  driver.cuEventElapsedTime(&ms, begin, end);
  return ms;
}

llvm::StringRef cuda::devicePtx() { return kDevicePtx; }

//===----------------------------------------------------------------------===//
// Entry points of generated host code
//===----------------------------------------------------------------------===//

extern "C" {

// MLIR's GPU runtime ABI (what gpu-to-llvm and gpu.binary emit).
void *mgpuModuleLoad(void *data, size_t /*size*/) {
  CUmodule module = nullptr;
  check(driver.cuModuleLoadData(&module, data), "loading a kernel module");
  return module;
}

void *mgpuModuleLoadJIT(void *data, int optLevel) {
  CUmodule module = nullptr;
  char log[4096] = {};
  int options[] = {kJitOptimizationLevel, kJitErrorLogBuffer,
                   kJitErrorLogBufferSize};
  void *values[] = {reinterpret_cast<void *>(intptr_t(optLevel)), log,
                    reinterpret_cast<void *>(sizeof(log))};
  CUresult result =
      driver.cuModuleLoadDataEx(&module, data, 3, options, values);
  if (result != 0 && state.firstError.empty())
    state.firstError = "compiling PTX for the device: " + errorString(result) +
                       (log[0] ? "\n" : "") + log;
  return module;
}

void mgpuModuleUnload(void *module) {
  if (module)
    driver.cuModuleUnload(module);
}

void *mgpuModuleGetFunction(void *module, const char *name) {
  CUfunction function = nullptr;
  if (!module)
    check(/*CUDA_ERROR_INVALID_HANDLE*/ 400, "a kernel module was not loaded");
  else
    check(driver.cuModuleGetFunction(&function, module, name), name);
  return function;
}

void *mgpuStreamCreate() { return stream(); }
// One stream per thread, synchronized when the run ends.
void mgpuStreamDestroy(void *) {}
void mgpuStreamSynchronize(void *) {}

void mgpuLaunchKernel(void *function, intptr_t gridX, intptr_t gridY,
                      intptr_t gridZ, intptr_t blockX, intptr_t blockY,
                      intptr_t blockZ, int32_t sharedBytes, void *stream,
                      void **params, void **extra, size_t /*paramsCount*/) {
  if (failed())
    return;
  if (!function) {
    check(/*CUDA_ERROR_INVALID_HANDLE*/ 400, "launching a kernel");
    return;
  }
  check(driver.cuLaunchKernel(function, gridX, gridY, gridZ, blockX, blockY,
                              blockZ, sharedBytes, stream, params, extra),
        "launching a kernel");
}

void kiln_gpu_rt_softmax_f32(UnrankedMemRefType<float> *in,
                             UnrankedMemRefType<float> *out, bool isLog) {
  View<float> input = view(in);
  int64_t size = input.shape.back();
  int64_t rows = kiln::runtime::detail::numElements(input.shape) / size;
  float *outData = view(out).data;
  int isLogFlag = isLog;
  // Rows of up to 8192 floats (a multiple of 4) are held in registers by
  // 256 threads, V float4s each (the smallest V that fits); longer rows
  // stream twice with 512 threads.
  std::string name = "kiln_gpu_softmax_f32";
  unsigned threads = 512;
  int64_t perThread = (size + 1023) / 1024;
  if (size % 4 == 0 && perThread <= 8) {
    threads = 256;
    name += perThread <= 1   ? "_v1"
            : perThread <= 2 ? "_v2"
            : perThread <= 4 ? "_v4"
                             : "_v8";
  }
  launch(name, rows, threads, {&input.data, &outData, &size, &isLogFlag});
}

void *kiln_gpu_malloc(size_t bytes) { return cuda::allocate(bytes); }
void *kiln_gpu_aligned_alloc(size_t /*alignment*/, size_t bytes) {
  return cuda::allocate(bytes); // device allocations are 256-byte aligned
}
void kiln_gpu_free(void *pointer) { cuda::release(pointer); }

void _mlir_ciface_kiln_gpu_error_record(StridedMemRefType<int64_t, 1> *out) {
  auto *record = reinterpret_cast<int64_t *>(state.errorRecord);
  out->basePtr = out->data = record;
  out->offset = 0;
  out->sizes[0] = gpu_error_record::kWords;
  out->strides[0] = 1;
}

void kiln_gpu_rt_sort_positions(UnrankedMemRefType<int64_t> *index,
                                UnrankedMemRefType<int64_t> *order,
                                UnrankedMemRefType<int64_t> *starts,
                                int64_t size, bool wrap) {
  sortPositions(index, order, starts, size, wrap);
}

#define KILN_GPU_ENTRY_POINTS(T, SUFFIX)                                       \
  void kiln_gpu_rt_topk_##SUFFIX(UnrankedMemRefType<T> *in,                    \
                                 UnrankedMemRefType<T> *values,                \
                                 UnrankedMemRefType<int64_t> *indices,         \
                                 int64_t k, int64_t dim, bool largest, bool) { \
    topk(#SUFFIX, in, values, indices, k, dim, largest);                       \
  }                                                                            \
  void kiln_gpu_rt_kthvalue_##SUFFIX(UnrankedMemRefType<T> *in,                \
                                     UnrankedMemRefType<T> *values,            \
                                     UnrankedMemRefType<int64_t> *indices,     \
                                     int64_t k, int64_t dim, bool, bool) {     \
    kthvalue(#SUFFIX, in, values, indices, k, dim);                            \
  }                                                                            \
  void kiln_gpu_rt_argreduce_##SUFFIX(                                         \
      UnrankedMemRefType<T> *in, UnrankedMemRefType<T> *values,                \
      UnrankedMemRefType<int64_t> *indices, int64_t, int64_t dim, bool isMax,  \
      bool flatten) {                                                          \
    argReduce(#SUFFIX, in, values, indices, dim, isMax, flatten);              \
  }
KILN_GPU_ENTRY_POINTS(float, f32)
KILN_GPU_ENTRY_POINTS(double, f64)
KILN_GPU_ENTRY_POINTS(int64_t, i64)
#undef KILN_GPU_ENTRY_POINTS
}

std::vector<std::pair<llvm::StringRef, void *>> cuda::symbols() {
#define KILN_SYMBOL(NAME, FUNCTION)                                            \
  { NAME, reinterpret_cast<void *>(&FUNCTION) }
#define KILN_SELECTION(KIND, SUFFIX)                                           \
  KILN_SYMBOL("_mlir_ciface_kiln_rt_" #KIND "_" #SUFFIX,                       \
              kiln_gpu_rt_##KIND##_##SUFFIX)
  return {
      KILN_SYMBOL("mgpuModuleLoad", mgpuModuleLoad),
      KILN_SYMBOL("mgpuModuleLoadJIT", mgpuModuleLoadJIT),
      KILN_SYMBOL("mgpuModuleUnload", mgpuModuleUnload),
      KILN_SYMBOL("mgpuModuleGetFunction", mgpuModuleGetFunction),
      KILN_SYMBOL("mgpuStreamCreate", mgpuStreamCreate),
      KILN_SYMBOL("mgpuStreamDestroy", mgpuStreamDestroy),
      KILN_SYMBOL("mgpuStreamSynchronize", mgpuStreamSynchronize),
      KILN_SYMBOL("mgpuLaunchKernel", mgpuLaunchKernel),
      KILN_SYMBOL("malloc", kiln_gpu_malloc),
      KILN_SYMBOL("aligned_alloc", kiln_gpu_aligned_alloc),
      KILN_SYMBOL("free", kiln_gpu_free),
      KILN_SYMBOL("_mlir_ciface_kiln_gpu_error_record",
                  _mlir_ciface_kiln_gpu_error_record),
      KILN_SYMBOL("_mlir_ciface_kiln_rt_softmax_f32", kiln_gpu_rt_softmax_f32),
      KILN_SYMBOL("_mlir_ciface_kiln_rt_sort_positions",
                  kiln_gpu_rt_sort_positions),
      KILN_SELECTION(topk, f32),
      KILN_SELECTION(topk, f64),
      KILN_SELECTION(topk, i64),
      KILN_SELECTION(kthvalue, f32),
      KILN_SELECTION(kthvalue, f64),
      KILN_SELECTION(kthvalue, i64),
      KILN_SELECTION(argreduce, f32),
      KILN_SELECTION(argreduce, f64),
      KILN_SELECTION(argreduce, i64),
  };
#undef KILN_SELECTION
#undef KILN_SYMBOL
}
