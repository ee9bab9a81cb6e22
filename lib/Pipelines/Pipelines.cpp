//===- Pipelines.cpp - The lowering pipelines -----------------------------===//

#include "kiln/Pipelines/Pipelines.h"

#include "kiln/Conversion/Passes.h"
#include "kiln/Dialect/Kiln/IR/KilnDialect.h"
#include "kiln/Dialect/Kiln/Transforms/Passes.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/Remarks.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Target/LLVM/NVVM/Target.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/GPU/GPUToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/NVVM/NVVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/OpenMP/OpenMPToLLVMIRTranslation.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/TargetParser/Host.h"

#include <cstdlib>

#include <mutex>

using namespace mlir;

/// Shapes first: every later pass may multiply sizes. Then inlining: graphs
/// from the C++ API may call functions loaded from IR files (kiln::callIR);
/// a call left cannot be compiled. Sizes upstream ops of IR files take to agree
/// are checked before a canonicalize folds the claims (a tensor.cast into the
/// slice it casts). The inliner runs no canonicalize of its own: the C++
/// API derives gradients right after inlining, and canonical forms are not
/// differentiated as PyTorch differentiates the op (pow(x, -2) becomes
/// 1 / (x * x), whose derivation gave NaN at x = -0, where PyTorch's
/// -2 * x^-3 gives inf); the pipelines canonicalize next.
static constexpr llvm::StringLiteral kInlinePasses =
    "kiln-check-shapes,kiln-check-upstream-shapes,inline{default-pipeline=},"
    "kiln-check-calls";

/// The passes every target starts with, up to the lowering of kiln ops,
/// for `target` (cpu or cuda): kiln-decompose's, and kiln-fuse-elementwise's
/// row groups on the CPU only (a GPU thread per row would be slow).
static std::string frontPasses(bool fuse, llvm::StringRef target) {
  bool rowGroups = target == "cpu";
  return kInlinePasses.str() +
         ",canonicalize,"
         // Inlined functions may compute the same values (the C++ API's
         // backward runs a graph and its VJP, which recomputes it, as one):
         // each is computed once.
         "cse,"
         // Shapes again: canonicalize folds constant dynamic sizes of IR
         // files into static ones (tensor.splat %c[%n, %n] with n = 2^40).
         "kiln-check-shapes,"
         // tensor.extract/insert, memref.load/store of IR files: checked
         // like kiln's indexing ops (constant indices are folded by now).
         "kiln-check-upstream-indices,"
         "kiln-export-entry-points,"
         "kiln-decompose{target=" +
         target.str() + "}," +
         // Decomposed ops (mean, norm, losses) fuse like the rest.
         (fuse ? rowGroups ? "kiln-fuse-elementwise{row-groups=true},"
                           : "kiln-fuse-elementwise,"
               : "") +
         // arith/math ops on whole tensors in IR files become loops.
         "convert-elementwise-to-linalg,"
         // Their integer divisions by zero: errors, not SIGFPE.
         "kiln-check-integer-division,";
}

/// Tensors to buffers; results become out-parameters of public functions.
/// `inlineKernels`: after kiln-outline-tensor-kernels, whose kernels are
/// put back once bufferized and canonicalized.
static std::string bufferizePasses(bool inlineKernels) {
  return std::string("kiln-constant-globals{alignment=64},"
                     "one-shot-bufferize{buffer-alignment=64 "
                     "bufferize-function-boundaries "
                     "function-boundary-type-conversion=identity-layout-map},"
                     // A loop that updates a buffer in place still carries it
                     // (scf.for iter_args yielded unchanged, as bufferization
                     // leaves a tensor loop): folded away, a result is its
                     // allocation again, which buffer-results-to-out-params
                     // replaces with the caller's buffer instead of copying
                     // into it.
                     "func.func(canonicalize),") +
         (inlineKernels ? "kiln-inline-tensor-kernels," : "") +
         // A result returned through a view (a reshape) is allocated at the
         // returned shape, so that the next pass hands its kernel the
         // caller's buffer instead of copying into it.
         "func.func(kiln-returned-views),"
         "buffer-results-to-out-params{modify-public-functions "
         "hoist-static-allocs},";
}

/// Adds the module passes of `text` to `pm`. The text names registered
/// passes only, so a parse failure is a Kiln bug.
static void addPipeline(OpPassManager &pm, llvm::StringRef text) {
  kiln::registerAllKilnPasses();
  if (failed(parsePassPipeline(text, pm, llvm::errs())))
    llvm::report_fatal_error("kiln: malformed pipeline: " + llvm::Twine(text));
}

std::string kiln::getKilnCpuPipelineText(const CpuPipelineOptions &options) {
  std::string lowering;
  if (options.sortedScatters)
    lowering += "sorted-scatters=true";
  if (options.vectorBits != 512)
    lowering +=
        (lowering.empty() ? "" : " ") +
        llvm::formatv("vector-bits={0}", int64_t(options.vectorBits)).str();
  return frontPasses(options.fuse, "cpu") + "convert-kiln-to-linalg" +
         (lowering.empty() ? std::string() : "{" + lowering + "}") + "," +
         // Each distinct kernel once, up to bufferization (the layers of a
         // deep network repeat theirs).
         "kiln-outline-tensor-kernels,"
         "kiln-approximate-math,"
         // Function by function: in parallel on the context's threads
         // (every function-local pass below is nested so).
         "func.func(kiln-tile-transposes,canonicalize)," +
         bufferizePasses(/*inlineKernels=*/true) +
         // A tile's results copied into strided slices of the full ones:
         // loops, not the MLIR runner's memrefCopy.
         "func.func(kiln-strided-copies),"
         // One function per distinct kernel: later passes, the OpenMP
         // translation and LLVM work on small functions, each kernel once.
         "kiln-outline-kernels,"
         // After outlining: the deallocation passes and their canonicalizes
         // see each distinct kernel once, on small functions, in parallel
         // (a 12-layer transformer's gradient: 6.8 -> 4.8 s of CPU in MLIR
         // passes, the same LLVM IR). The ownership-based deallocation
         // frees every buffer at the end of its block; each free then moves
         // to right after the buffer's last use (and its views'), so that
         // the runtime's pool hands the memory to the next kernel: that
         // gradient held 122 MB of temporaries at its peak, now 29.
         "func.func(buffer-deallocation-pipeline,"
         "optimize-allocation-liveness)," +
         (options.profile ? "kiln-profile-kernels," : "") +
         // Parallel dims become scf.parallel, run by OpenMP worker threads;
         // reduction dims stay sequential loops inside each iteration, so
         // results do not depend on the thread count.
         "func.func(convert-linalg-to-parallel-loops),"
         // Line-parallel scatters (scf.forall) join them.
         "func.func(scf-forall-to-parallel),"
         "kiln-outer-parallel-loops,"
         // Large write-only outputs: aligned, for non-temporal stores.
         "kiln-streaming-stores,"
         // Remainders of LLVM's vector loops as masked vectors.
         "kiln-masked-remainders,"
         "func.func(canonicalize),"
         "convert-scf-to-openmp,"
         // Inlines the memref.alloca_scope that wraps each worksharing loop
         // body (no allocas inside), before loops become CFGs.
         "func.func(canonicalize),"
         // A worksharing loop iteration's small buffers: one per thread,
         // on its stack.
         "func.func(kiln-iteration-scratch),"
         "kiln-lower-runtime-calls,"
         // The conversions that work op by op run function by function;
         // those that add declarations to the module (malloc, libm) on it.
         "func.func(convert-scf-to-cf,expand-strided-metadata,lower-affine,"
         "convert-vector-to-llvm),"
         "finalize-memref-to-llvm,"
         "func.func(convert-math-to-llvm),"
         // libm calls of vector math (f64 erf) extract lanes: lowered too.
         "convert-math-to-libm,func.func(convert-vector-to-llvm),"
         "func.func(convert-arith-to-llvm,convert-index-to-llvm),"
         // Mask loads and stores as bytes, which LLVM vectorizes.
         "kiln-byte-bools,"
         // Before the kernels' memref arguments become pointers.
         "kiln-alias-scopes,"
         // Before the OpenMP translation outlines loop bodies.
         "kiln-alignment-masks,"
         "convert-func-to-llvm,"
         "convert-cf-to-llvm,"
         "convert-openmp-to-llvm,"
         "reconcile-unrealized-casts";
}

mlir::LogicalResult kiln::inlineCalls(mlir::ModuleOp module) {
  PassManager pm(module.getContext());
  addPipeline(pm, kInlinePasses);
  return pm.run(module);
}

void kiln::buildKilnCpuPipeline(OpPassManager &pm,
                                const CpuPipelineOptions &options) {
  addPipeline(pm, getKilnCpuPipelineText(options));
}

std::string kiln::findLibdevice() {
  auto exists = [](const std::string &path) {
    return !path.empty() && llvm::sys::fs::exists(path);
  };
  if (const char *path = std::getenv("KILN_LIBDEVICE"))
    return exists(path) ? std::string(path) : std::string();
  std::string home = "/usr/local/cuda";
  if (const char *cudaHome = std::getenv("CUDA_HOME"))
    home = cudaHome;
  std::string path = home + "/nvvm/libdevice/libdevice.10.bc";
  return exists(path) ? path : std::string();
}

std::string kiln::getKilnGpuPipelineText(const GpuPipelineOptions &options) {
  std::string chip = options.chip;
  std::string libdevice = findLibdevice();
  return frontPasses(options.fuse, "cuda") +
         "convert-kiln-to-linalg{target=cuda},"
         "canonicalize," +
         bufferizePasses(/*inlineKernels=*/false) +
         // cse lets canonicalize drop the self-copies that bufferized
         // scf.forall slices leave (two equal subviews of one buffer).
         "cse,"
         "canonicalize,"
         "linalg-generalize-named-ops,"
         // Loop nests become gpu.launch ops; the host keeps allocation,
         // views, launches and runtime calls, and frees each buffer after
         // its last use.
         "kiln-map-to-gpu{vectorize=" +
         (options.vectorize ? "true" : "false") +
         "},"
         "gpu-kernel-outlining,"
         // Launches of identical kernels share one module, compiled once.
         "kiln-dedup-gpu-kernels,"
         "lower-affine,"
         "convert-scf-to-cf,"
         "nvvm-attach-target{chip=" +
         chip + " features=" + getPtxFeatureForChip(chip) + " O=3" +
         (libdevice.empty() ? "" : " l=" + libdevice) +
         "},"
         "gpu.module(convert-gpu-to-nvvm{index-bitwidth=64}),"
         "expand-strided-metadata,"
         "lower-affine,"
         "finalize-memref-to-llvm,"
         "convert-math-to-llvm,"
         "convert-arith-to-llvm,"
         "convert-index-to-llvm,"
         "convert-func-to-llvm,"
         "convert-cf-to-llvm,"
         "gpu-to-llvm,"
         "reconcile-unrealized-casts,"
         "gpu-module-to-binary{format=isa},"
         // Compile times recorded in the objects would make the IR vary.
         "kiln-strip-compile-times";
}

void kiln::buildKilnGpuPipeline(OpPassManager &pm,
                                const GpuPipelineOptions &options) {
  addPipeline(pm, getKilnGpuPipelineText(options));
}

int kiln::hostVectorBits() {
  static const int bits = [] {
    llvm::StringMap<bool> features = llvm::sys::getHostCPUFeatures();
    if (features.lookup("avx512f"))
      return 512;
    return features.lookup("avx") ? 256 : 128;
  }();
  return bits;
}

std::optional<std::string> kiln::checkVectorBitsOption(int bits,
                                                       Target target) {
  if (bits && !isSupportedVectorBits(bits))
    return "--vector-bits expects 128, 256 or 512, got " + std::to_string(bits);
  if (bits && target != Target::Cpu)
    return std::string("--vector-bits sizes CPU register tiles; it does not "
                       "apply to --target=cuda");
  return std::nullopt;
}

std::string kiln::CompileOptions::pipelineText() const {
  if (target == Target::Cuda) {
    GpuPipelineOptions options;
    options.fuse = fuse;
    options.chip = chip;
    options.vectorize = gpuVectorize;
    return getKilnGpuPipelineText(options);
  }
  CpuPipelineOptions options;
  options.fuse = fuse;
  options.sortedScatters = sortedScatters;
  options.profile = profile;
  options.vectorBits = vectorBits ? vectorBits : hostVectorBits();
  return getKilnCpuPipelineText(options);
}

void kiln::CompileOptions::buildPipeline(OpPassManager &pm) const {
  addPipeline(pm, pipelineText());
}

void kiln::registerAllKilnPasses() {
  static std::once_flag once;
  std::call_once(once, [] {
    mlir::registerAllPasses();
    kiln::registerKilnPasses();
    kiln::registerKilnConversionPasses();
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
    // Registered by hand rather than with PassPipelineRegistration, whose
    // builder cannot fail: an unknown chip is an error, not PTX for a
    // `.target` ptxas rejects.
    registerPassPipeline(
        "kiln-gpu-pipeline",
        "Lower kiln IR for NVIDIA GPUs: host code in the llvm dialect, "
        "kernels in gpu.module ops compiled to PTX (option chip=sm_90)",
        [](OpPassManager &pm, llvm::StringRef text,
           llvm::function_ref<LogicalResult(const llvm::Twine &)> error) {
          GpuPipelineOptions options;
          if (failed(options.parseFromString(text)))
            return failure();
          if (getPtxFeatureForChip(options.chip).empty())
            return error("kiln-gpu-pipeline: unknown chip '" + options.chip +
                         "' (expected one of " + getSupportedChipList() + ")");
          buildKilnGpuPipeline(pm, options);
          return success();
        },
        [](llvm::function_ref<void(const detail::PassOptions &)> handler) {
          handler(GpuPipelineOptions());
        });
  });
}

void kiln::registerKilnDialects(DialectRegistry &registry) {
  registry.insert<KilnDialect>();
  mlir::registerAllDialects(registry);
  mlir::registerAllExtensions(registry);
  mlir::registerBuiltinDialectTranslation(registry);
  mlir::registerLLVMDialectTranslation(registry);
  mlir::registerOpenMPDialectTranslation(registry);
  mlir::registerGPUDialectTranslation(registry);
  mlir::gpu::registerOffloadingLLVMTranslationInterfaceExternalModels(registry);
  mlir::registerNVVMDialectTranslation(registry);
  mlir::NVVM::registerNVVMTargetInterfaceExternalModels(registry);
}

namespace {

/// Formats each remark as one line for a sink (kiln::enableRemarks).
class LineRemarkStreamer : public remark::detail::MLIRRemarkStreamerBase {
public:
  explicit LineRemarkStreamer(std::function<void(llvm::StringRef)> sink)
      : sink(std::move(sink)) {}

  void streamOptimizationRemark(const remark::detail::Remark &r) override {
    std::string line;
    llvm::raw_string_ostream os(line);
    if (std::optional<std::string> where = kiln::filePosition(r.getLocation()))
      os << *where << ": ";
    os << "remark: [" << r.getCombinedCategoryName();
    if (r.getRemarkTypeString() == "Missed")
      os << ", missed";
    os << "] ";
    // The texts, then the metrics in brackets.
    std::string metrics;
    bool first = true;
    for (const remark::detail::Remark::Arg &arg : r.getArgs()) {
      if (arg.key == "Remark" || arg.key == "Reason" ||
          arg.key == "Suggestion") {
        os << (first ? "" : "; ") << arg.val;
        first = false;
      } else {
        metrics += (metrics.empty() ? "" : ", ") + arg.key + "=" + arg.val;
      }
    }
    if (!metrics.empty())
      os << " [" << metrics << "]";
    sink(line);
  }

private:
  std::function<void(llvm::StringRef)> sink;
};

} // namespace

LogicalResult
kiln::enableRemarks(MLIRContext &context,
                    std::function<void(llvm::StringRef line)> sink) {
  remark::RemarkCategories categories;
  // Every kind (the engine reads the per-kind filters, not `all`).
  categories.all = categories.passed = categories.missed = categories.analysis =
      categories.failed = "kiln-.*";
  return remark::enableOptimizationRemarks(
      context, std::make_unique<LineRemarkStreamer>(std::move(sink)),
      std::make_unique<remark::RemarkEmittingPolicyAll>(), categories,
      /*printAsEmitRemarks=*/false);
}

LogicalResult kiln::enableRemarksOnStderr(MLIRContext &context) {
  return enableRemarks(
      context, [](llvm::StringRef line) { llvm::errs() << line << "\n"; });
}
