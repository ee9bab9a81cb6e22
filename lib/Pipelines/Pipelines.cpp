//===- Pipelines.cpp - The lowering pipelines -----------------------------===//

#include "kiln/Pipelines/Pipelines.h"

#include "kiln/Conversion/Passes.h"
#include "kiln/Dialect/Kiln/IR/KilnDialect.h"
#include "kiln/Dialect/Kiln/Transforms/Passes.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/OpenMP/OpenMPToLLVMIRTranslation.h"

#include <mutex>

using namespace mlir;

std::string kiln::getKilnCpuPipelineText(const CpuPipelineOptions &options) {
  // `inline` first: graphs from the C++ API may call functions loaded
  // from IR files (kiln::callIR).
  return std::string("inline,"
                     "canonicalize,"
                     "kiln-export-entry-points,"
                     "kiln-decompose,") +
         // Decomposed ops (mean, norm, losses) fuse like the rest.
         (options.fuse ? "kiln-fuse-elementwise," : "") +
         "convert-kiln-to-linalg,"
         "kiln-approximate-math,"
         "canonicalize,"
         "one-shot-bufferize{bufferize-function-boundaries "
         "function-boundary-type-conversion=identity-layout-map},"
         "buffer-results-to-out-params{modify-public-functions "
         "hoist-static-allocs},"
         "func.func(buffer-deallocation-pipeline),"
         // Parallel dims become scf.parallel, run by OpenMP worker threads;
         // reduction dims stay sequential loops inside each iteration, so
         // results do not depend on the thread count.
         "func.func(convert-linalg-to-parallel-loops),"
         "kiln-outer-parallel-loops,"
         "canonicalize,"
         "convert-scf-to-openmp,"
         // Inlines the memref.alloca_scope that wraps each worksharing loop
         // body (no allocas inside), before loops become CFGs.
         "canonicalize,"
         "kiln-lower-runtime-calls,"
         "convert-scf-to-cf,"
         "expand-strided-metadata,"
         "lower-affine,"
         "convert-vector-to-llvm,"
         "finalize-memref-to-llvm,"
         "convert-math-to-llvm,"
         "convert-math-to-libm,"
         "convert-arith-to-llvm,"
         "convert-index-to-llvm,"
         "convert-func-to-llvm,"
         "convert-cf-to-llvm,"
         "convert-openmp-to-llvm,"
         "reconcile-unrealized-casts";
}

void kiln::buildKilnCpuPipeline(OpPassManager &pm,
                                const CpuPipelineOptions &options) {
  registerAllKilnPasses();
  std::string text = getKilnCpuPipelineText(options);
  // The text lists module passes (it is anchored on pm's builtin.module);
  // it names registered passes only, so a parse failure is a Kiln bug.
  if (failed(parsePassPipeline(text, pm, llvm::errs())))
    llvm::report_fatal_error("kiln: malformed CPU pipeline: " +
                             llvm::Twine(text));
}

void kiln::registerAllKilnPasses() {
  static std::once_flag once;
  std::call_once(once, [] {
    mlir::registerAllPasses();
    kiln::registerKilnAutodiff();
    kiln::registerKilnDecompose();
    kiln::registerKilnFuseElementwise();
    kiln::registerKilnExportEntryPoints();
    kiln::registerKilnLowerRuntimeCalls();
    kiln::registerKilnApproximateMath();
    kiln::registerKilnOuterParallelLoops();
    kiln::registerConvertKilnToLinalg();
  });
}

void kiln::registerKilnPipelines() {
  registerAllKilnPasses();
  static std::once_flag once;
  std::call_once(once, [] {
    PassPipelineRegistration<CpuPipelineOptions>(
        "kiln-cpu-pipeline",
        "Lower kiln IR to the llvm dialect for x86-64 (decompose, linalg, "
        "bufferize, loops, llvm)",
        buildKilnCpuPipeline);
  });
}

void kiln::registerKilnDialects(DialectRegistry &registry) {
  registry.insert<KilnDialect>();
  mlir::registerAllDialects(registry);
  mlir::registerAllExtensions(registry);
  mlir::registerBuiltinDialectTranslation(registry);
  mlir::registerLLVMDialectTranslation(registry);
  mlir::registerOpenMPDialectTranslation(registry);
}
