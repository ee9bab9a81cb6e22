//===- Pipelines.h - The lowering pipelines ---------------------*- C++ -*-===//
//
// One function builds each target's pipeline; kiln-opt
// (--kiln-cpu-pipeline), kiln-compile, kiln-run and the C++ API all call it.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_PIPELINES_PIPELINES_H
#define KILN_PIPELINES_PIPELINES_H

#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassOptions.h"

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
};

/// Kiln IR -> the LLVM dialect for x86-64: decompose, lower to linalg,
/// bufferize (results become out-parameters of every public function, which
/// gets a C interface), lower to loops and to the llvm dialect.
void buildKilnCpuPipeline(mlir::OpPassManager &pm,
                          const CpuPipelineOptions &options);

/// The CPU pipeline as a comma-separated list of module passes (for docs
/// and the compile cache key).
std::string getKilnCpuPipelineText(const CpuPipelineOptions &options);

/// Registers -kiln-cpu-pipeline with the global pass registry.
void registerKilnPipelines();

/// Registers every kiln pass (transforms and conversions).
void registerAllKilnPasses();

/// Adds the dialects and interface models Kiln's pipelines need.
void registerKilnDialects(mlir::DialectRegistry &registry);

} // namespace kiln

#endif // KILN_PIPELINES_PIPELINES_H
