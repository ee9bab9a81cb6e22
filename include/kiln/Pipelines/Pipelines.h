//===- Pipelines.h - The lowering pipelines ---------------------*- C++ -*-===//
//
// One function builds each target's pipeline; kiln-opt
// (--kiln-cpu-pipeline), kiln-compile, kiln-run and the C++ API all call it.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_PIPELINES_PIPELINES_H
#define KILN_PIPELINES_PIPELINES_H

#include "kiln/Support/GpuChips.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassOptions.h"

#include <optional>
#include <string>

namespace mlir {
class DialectRegistry;
}

namespace kiln {

struct CpuPipelineOptions
    : public mlir::PassPipelineOptions<CpuPipelineOptions> {
  // The pipeline text and the compile cache key both come from these, so
  // they stay in one place.
  Option<bool> fuse{*this, "fuse",
                    llvm::cl::desc("Run kiln-fuse-elementwise (default on)"),
                    llvm::cl::init(true)};
  Option<bool> sortedScatters{
      *this, "sorted-scatters",
      llvm::cl::desc("Lower put, 1-D scatter_add and index_add along dim 0 "
                     "as the GPU does: sort the positions by target, then a "
                     "parallel loop over the result (default off)"),
      llvm::cl::init(false)};
  Option<bool> profile{
      *this, "profile",
      llvm::cl::desc("Time each kernel of the entry points "
                     "(kiln-profile-kernels; kiln-run --profile; default "
                     "off)"),
      llvm::cl::init(false)};
  Option<int64_t> vectorBits{
      *this, "vector-bits",
      llvm::cl::desc("The CPU's widest vector register in bits: 512 "
                     "(AVX-512, the default here), 256 (AVX2) or 128; sizes "
                     "register tiles (convert-kiln-to-linalg{vector-bits}). "
                     "kiln-run, kiln-compile and the C++ API pass the "
                     "host's"),
      llvm::cl::init(512)};
};

struct GpuPipelineOptions
    : public mlir::PassPipelineOptions<GpuPipelineOptions> {
  Option<bool> fuse{*this, "fuse",
                    llvm::cl::desc("Run kiln-fuse-elementwise (default on)"),
                    llvm::cl::init(true)};
  Option<std::string> chip{*this, "chip",
                           llvm::cl::desc("The GPU architecture (sm_70 .. "
                                          "sm_120; default sm_90)"),
                           llvm::cl::init("sm_90")};
  Option<bool> vectorize{
      *this, "vectorize",
      llvm::cl::desc("16-byte vector accesses in large elementwise kernels "
                     "(kiln-map-to-gpu{vectorize}; default off)"),
      llvm::cl::init(false)};
};

/// The libdevice bitcode kernels link for math functions (exp, log, ...):
/// $KILN_LIBDEVICE, else $CUDA_HOME or /usr/local/cuda's
/// nvvm/libdevice/libdevice.10.bc; empty when none exists.
std::string findLibdevice();

/// Kiln IR -> host code in the llvm dialect plus one gpu.binary of PTX per
/// kernel: the CPU pipeline's front (decompose, fuse, kiln-to-linalg with
/// GPU reductions, bufferize), then kiln-map-to-gpu, kernel outlining,
/// NVVM and the NVPTX backend for `chip`.
void buildKilnGpuPipeline(mlir::OpPassManager &pm,
                          const GpuPipelineOptions &options);

/// The GPU pipeline as a comma-separated list of module passes.
std::string getKilnGpuPipelineText(const GpuPipelineOptions &options);

/// Kiln IR -> the LLVM dialect for x86-64: decompose, lower to linalg,
/// bufferize (results become out-parameters of every public function, which
/// gets a C interface), lower to loops and to the llvm dialect.
void buildKilnCpuPipeline(mlir::OpPassManager &pm,
                          const CpuPipelineOptions &options);

/// The CPU pipeline as a comma-separated list of module passes (for docs
/// and the compile cache key).
std::string getKilnCpuPipelineText(const CpuPipelineOptions &options);

/// Where compiled code runs.
enum class Target { Cpu, Cuda };

/// The host CPU's widest vector register in bits: 512 with AVX-512F, 256
/// with AVX, else 128 (the code the ORC JIT compiles for the host uses
/// them; register tiles are sized for them).
int hostVectorBits();

/// The error of a tool's `--vector-bits=bits` (0: not given) for a run on
/// `target`, if any: a width the lowering does not tile for, or any width
/// with --target=cuda.
std::optional<std::string> checkVectorBitsOption(int bits, Target target);

/// What the tools and the API compile for: the target and its pipeline's
/// options (a plain copyable struct; the pass pipeline options above are
/// built from it).
struct CompileOptions {
  Target target = Target::Cpu;
  bool fuse = true;
  bool sortedScatters = false; // Target::Cpu (the GPU always sorts)
  bool gpuVectorize = false;   // Target::Cuda: GpuPipelineOptions::vectorize
  bool profile = false;        // Target::Cpu: time each kernel
  std::string chip = "sm_90";  // GPU architecture (Target::Cuda)
  /// Target::Cpu: the widest vector register in bits (128, 256 or 512), or
  /// 0 for the host's (hostVectorBits).
  int vectorBits = 0;

  /// The pipeline as text (its passes and their options).
  std::string pipelineText() const;
  /// Adds the target's pipeline to `pm`.
  void buildPipeline(mlir::OpPassManager &pm) const;
};

/// Registers -kiln-cpu-pipeline and -kiln-gpu-pipeline with the global pass
/// registry.
void registerKilnPipelines();

/// Registers every kiln pass (transforms and conversions).
void registerAllKilnPasses();

/// The front of every pipeline on its own: inlines the functions that
/// `module`'s functions call (`inline`), then reports each call left
/// (`kiln-check-calls`: recursive, or of a declaration) as a diagnostic.
/// kiln-gradcheck and the C++ API run it before differentiating.
mlir::LogicalResult inlineCalls(mlir::ModuleOp module);

/// Turns on Kiln's optimization remarks in `context`: what the compiler did
/// and why (categories `kiln-fuse`: each kernel kiln-fuse-elementwise
/// formed and each producer it left out, with the reason; `kiln-lower`: the
/// algorithm each kernel runs). Each remark goes to `sink` as one line,
/// "FILE:LINE:COL: remark: [CATEGORY] TEXT" ("[CATEGORY, missed]" for a
/// fusion that did not happen). The compile cache is bypassed while remarks
/// are on (Executable::compile), so every compilation explains itself.
/// kiln-opt has MLIR's own flags instead (--remarks-filter=kiln-.*).
mlir::LogicalResult
enableRemarks(mlir::MLIRContext &context,
              std::function<void(llvm::StringRef line)> sink);
/// enableRemarks with each line on stderr (kiln-run, kiln-compile
/// --remarks).
mlir::LogicalResult enableRemarksOnStderr(mlir::MLIRContext &context);

/// Adds the dialects and interface models Kiln's pipelines need.
void registerKilnDialects(mlir::DialectRegistry &registry);

} // namespace kiln

#endif // KILN_PIPELINES_PIPELINES_H
