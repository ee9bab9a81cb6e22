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
using kiln::CpuPipelineOptions;

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

/// A kiln function compiled for the host CPU with the ORC JIT.
class Executable {
public:
  ~Executable();

  /// Lowers `entry` of `module` (kiln IR; the module is cloned, not
  /// modified) with the CPU pipeline and JIT-compiles it.
  static llvm::Expected<std::unique_ptr<Executable>>
  compile(mlir::ModuleOp module, llvm::StringRef entry,
          const CpuPipelineOptions &options = CpuPipelineOptions());

  const std::vector<TensorSpec> &getInputs() const { return inputs; }
  const std::vector<TensorSpec> &getOutputs() const { return outputs; }
  /// Loop nests and runtime kernels the entry runs.
  int64_t getKernelCount() const { return kernelCount; }
  /// Whether the code came from the compile cache (memory or disk).
  bool isCacheHit() const { return cacheHit; }

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
  std::string entry;
  std::vector<TensorSpec> inputs, outputs;
  std::vector<std::string> errorSites;
  int64_t kernelCount = 0;
  bool cacheHit = false;
};

} // namespace kiln::runtime

#endif // KILN_RUNTIME_EXECUTABLE_H
