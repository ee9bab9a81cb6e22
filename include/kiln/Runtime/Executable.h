//===- Executable.h - JIT-compiled kiln functions ---------------*- C++ -*-===//

#ifndef KILN_RUNTIME_EXECUTABLE_H
#define KILN_RUNTIME_EXECUTABLE_H

#include "kiln/Pipelines/Pipelines.h"
#include "kiln/Runtime/HostTensor.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/Support/Error.h"

#include <memory>
#include <string>
#include <vector>

namespace mlir {
class ModuleOp;
} // namespace mlir

namespace llvm::orc {
class LLJIT;
} // namespace llvm::orc

namespace kiln::runtime {
using kiln::CompileOptions;
using kiln::Target;

/// The type of one argument or result: element type and static shape.
struct TensorSpec {
  DType dtype;
  std::vector<int64_t> shape;
  std::string typeString() const;
};

/// An out-of-range index found while running: the message names the op, its
/// source location and the index (tools exit with code 2).
class IndexErrorInfo : public llvm::ErrorInfo<IndexErrorInfo> {
public:
  static char ID;
  explicit IndexErrorInfo(std::string message) : message(std::move(message)) {}
  void log(llvm::raw_ostream &os) const override { os << message; }
  std::error_code convertToErrorCode() const override {
    return llvm::inconvertibleErrorCode();
  }

private:
  std::string message;
};

/// A failure while running on a device (no GPU, a CUDA error): tools exit
/// with code 2.
class DeviceErrorInfo : public llvm::ErrorInfo<DeviceErrorInfo> {
public:
  static char ID;
  explicit DeviceErrorInfo(std::string message) : message(std::move(message)) {}
  void log(llvm::raw_ostream &os) const override { os << message; }
  std::error_code convertToErrorCode() const override {
    return llvm::inconvertibleErrorCode();
  }

private:
  std::string message;
};

/// A kiln function compiled with the ORC JIT: for the host CPU, or host
/// code for the CPU that launches kernels on an NVIDIA GPU (Target::Cuda:
/// arguments and results are copied to and from device memory by run()).
class Executable {
public:
  ~Executable();

  /// Lowers `entry` of `module` (kiln IR; the module is cloned, not
  /// modified) with the CPU pipeline and JIT-compiles it.
  static llvm::Expected<std::unique_ptr<Executable>>
  compile(mlir::ModuleOp module, llvm::StringRef entry,
          const CompileOptions &options = CompileOptions());

  const std::vector<TensorSpec> &getInputs() const { return inputs; }
  const std::vector<TensorSpec> &getOutputs() const { return outputs; }
  /// Loop nests and runtime kernels the entry runs.
  int64_t getKernelCount() const { return kernelCount; }
  /// Compiled with CompileOptions::profile: per timed site (the numbers of
  /// runtime::profileCounts()), "FILE:LINE:COL<tab>what runs there".
  const std::vector<std::string> &getProfileSites() const {
    return profileSites;
  }
  /// Whether the code came from the compile cache (memory or disk).
  bool isCacheHit() const { return cacheHit; }
  Target getTarget() const { return target; }
  /// Target::Cuda: device time of the last run's kernels (without the
  /// copies of arguments and results), in milliseconds.
  double getLastDeviceMs() const { return lastDeviceMs; }

  /// Runs the function. `args` must match getInputs() (checked by the
  /// caller); `results` are (re)allocated here unless they already have the
  /// output types, in which case their buffers are overwritten. An
  /// out-of-range index returns an IndexErrorInfo.
  llvm::Error run(llvm::ArrayRef<const HostTensor *> args,
                  std::vector<HostTensor> &results);

private:
  Executable() = default;
  std::unique_ptr<llvm::orc::LLJIT> jit;
  void (*packedEntry)(void **) = nullptr;
  void (*fini)() = nullptr; // unloads GPU kernel modules
  std::string entry;
  std::vector<TensorSpec> inputs, outputs;
  std::vector<std::string> errorSites;
  std::vector<std::string> profileSites;
  int64_t kernelCount = 0;
  bool cacheHit = false;
  Target target = Target::Cpu;
  double lastDeviceMs = 0;
  llvm::Error runOnDevice(llvm::ArrayRef<const HostTensor *> args,
                          std::vector<HostTensor> &results);
};

} // namespace kiln::runtime

#endif // KILN_RUNTIME_EXECUTABLE_H
