//===- kiln-compile.cpp - Ahead-of-time output of the kiln pipelines ------===//
//
// kiln-compile FILE.mlir --target=cpu|cuda [--gpu-arch=sm_90]
//              --emit=mlir|llvm-ir|asm|obj|ptx [-o OUT]
//
// For the GPU (--target=cuda): the lowered MLIR (host code in the llvm
// dialect with one gpu.binary per kernel), the host's LLVM IR, assembly or
// object (the PTX embedded), or --emit=ptx: the PTX of every kernel.
// For the CPU: the lowered MLIR (llvm dialect), optimized LLVM IR, x86-64
// assembly or an ELF object with one `_mlir_ciface_<f>` (and
// `_kiln_packed_<f>`) per public function. Exit codes as in tools.md.
//
//===----------------------------------------------------------------------===//

#include "kiln/Pipelines/Pipelines.h"
#include "kiln/Pipelines/SourceFile.h"
#include "kiln/Runtime/CpuCompiler.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
namespace cl = llvm::cl;

static cl::OptionCategory category("kiln-compile options");
static cl::opt<std::string> inputFile(cl::Positional, cl::desc("<file.mlir|->"),
                                      cl::init("-"), cl::cat(category));
static cl::opt<std::string> outputFile("o", cl::desc("Output file"),
                                       cl::init("-"), cl::cat(category));
static cl::opt<std::string> target("target", cl::desc("cpu or cuda"),
                                   cl::init("cpu"), cl::cat(category));
static cl::opt<std::string> gpuArch("gpu-arch",
                                    cl::desc("GPU architecture (cuda)"),
                                    cl::init("sm_90"), cl::cat(category));
static cl::opt<std::string>
    emit("emit", cl::desc("mlir, llvm-ir, asm, obj (cpu) or ptx (cuda)"),
         cl::Required, cl::cat(category));
static cl::opt<int> vectorBits(
    "vector-bits",
    cl::desc("cpu: the widest vector register in bits (128, 256 or 512), "
             "which sizes register tiles; default: the host's"),
    cl::init(0), cl::cat(category));
static cl::opt<bool>
    remarks("remarks",
            cl::desc("Explain on stderr what the compiler did and why: the "
                     "kernels fusion formed and missed, each kernel's "
                     "algorithm"),
            cl::init(false), cl::cat(category));

static int fail(int code, const llvm::Twine &message) {
  llvm::errs() << "kiln-compile: error: " << message << "\n";
  return code;
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions(category);
  cl::ParseCommandLineOptions(argc, argv, "Kiln ahead-of-time compiler\n");

  if (target != "cpu" && target != "cuda")
    return fail(1, "unknown --target '" + target + "' (expected cpu or cuda)");
  if (emit != "mlir" && emit != "llvm-ir" && emit != "asm" && emit != "obj" &&
      emit != "ptx")
    return fail(1, "unknown --emit '" + emit +
                       "' (expected mlir, llvm-ir, asm, obj or ptx)");
  if (emit == "ptx" && target != "cuda")
    return fail(1, "--emit=ptx needs --target=cuda");
  kiln::CompileOptions options;
  if (std::optional<std::string> error = kiln::checkVectorBitsOption(
          vectorBits, target == "cpu" ? kiln::Target::Cpu : kiln::Target::Cuda))
    return fail(1, *error);
  options.vectorBits = vectorBits;
  if (target == "cuda") {
    if (kiln::getPtxFeatureForChip(gpuArch).empty())
      return fail(1, "unknown --gpu-arch '" + gpuArch + "' (expected one of " +
                         kiln::getSupportedChipList() + ")");
    options.target = kiln::Target::Cuda;
    options.chip = gpuArch;
  }

  std::unique_ptr<MLIRContext> context = kiln::createToolContext();
  if (remarks && failed(kiln::enableRemarksOnStderr(*context)))
    return fail(1, "--remarks: the remark engine could not be set up");

  std::string errorMessage;
  auto source = kiln::SourceFile::load(inputFile, *context, errorMessage);
  if (!source)
    return fail(1, errorMessage);
  ModuleOp module = source->getModule();
  if (!module)
    return 1; // the parser or verifier reported the error

  if (llvm::Error error = kiln::runtime::lowerToLLVMDialect(module, options))
    return fail(1, llvm::toString(std::move(error)));

  auto output = openOutputFile(outputFile, &errorMessage);
  if (!output)
    return fail(1, errorMessage);
  if (emit == "mlir") {
    module.print(output->os());
  } else if (emit == "ptx") {
    // Each kernel's gpu.binary holds its PTX (format=isa).
    module.walk([&](gpu::BinaryOp binary) {
      for (Attribute object : binary.getObjects())
        output->os() << "// kernel module @" << binary.getName() << "\n"
                     << cast<gpu::ObjectAttr>(object).getObject().getValue()
                     << "\n";
    });
  } else {
    auto tm = kiln::runtime::createHostTargetMachine();
    if (!tm)
      return fail(1, llvm::toString(tm.takeError()));
    llvm::LLVMContext llvmContext;
    auto llvmModule =
        kiln::runtime::translateAndOptimize(module, llvmContext, **tm);
    if (!llvmModule)
      return fail(1, llvm::toString(llvmModule.takeError()));
    if (emit == "llvm-ir") {
      (*llvmModule)->print(output->os(), nullptr);
    } else {
      auto code = kiln::runtime::emitMachineCode(
          **llvmModule, **tm,
          emit == "asm" ? llvm::CodeGenFileType::AssemblyFile
                        : llvm::CodeGenFileType::ObjectFile);
      if (!code)
        return fail(1, llvm::toString(code.takeError()));
      output->os() << *code;
    }
  }
  output->keep();
  return 0;
}
