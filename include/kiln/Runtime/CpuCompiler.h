//===- CpuCompiler.h - Kiln IR to x86-64 machine code -----------*- C++ -*-===//
//
// The stages after the MLIR pipeline, shared by kiln-compile (ahead of time)
// and Executable (JIT): translation to LLVM IR, LLVM's -O3, machine code
// for the host CPU, and the compile cache.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_CPUCOMPILER_H
#define KILN_RUNTIME_CPUCOMPILER_H

#include "kiln/Pipelines/Pipelines.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/IR/Module.h"
#include "llvm/Support/CodeGen.h"
#include "llvm/Support/Error.h"
#include "llvm/Target/TargetMachine.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace kiln::runtime {
using kiln::CompileOptions;
using kiln::Target;

/// A target machine for the host CPU (its features included), PIC, -O3.
llvm::Expected<std::unique_ptr<llvm::TargetMachine>> createHostTargetMachine();

/// Runs the CPU pipeline on `module` in place (kiln IR -> llvm dialect).
/// Diagnostics are collected into the error.
llvm::Error lowerToLLVMDialect(mlir::ModuleOp module,
                               const CompileOptions &options);

/// Translates an llvm-dialect module to LLVM IR for `tm`, adds a packed
/// entry `_kiln_packed_<f>(void **descriptors)` for every C interface
/// function `_mlir_ciface_<f>`, and optimizes at -O3.
llvm::Expected<std::unique_ptr<llvm::Module>>
translateAndOptimize(mlir::ModuleOp module, llvm::LLVMContext &context,
                     llvm::TargetMachine &tm);

/// Assembly or object code of `module`.
llvm::Expected<std::string> emitMachineCode(llvm::Module &module,
                                            llvm::TargetMachine &tm,
                                            llvm::CodeGenFileType type);

/// Modules of a smaller estimated compile cost (about their instructions)
/// are compiled by emitObjects in one piece.
constexpr size_t kMinSplitCost = 2000;

/// The threads emitObjects compiles on: KILN_COMPILE_THREADS, by default
/// the hardware threads this process may run on; an error naming the
/// variable when it is not an integer from 1 to 1024.
llvm::Expected<unsigned> compileThreads();

/// Object code of an optimized `module` as relocatable objects that the JIT
/// links together: its functions split into at most `threads` partitions of
/// about equal size, compiled concurrently (SplitCodegen.cpp). Local
/// definitions that another partition refers to become external in
/// `module`.
llvm::Expected<std::vector<std::string>>
emitObjects(llvm::Module &module, llvm::TargetMachine &tm, unsigned threads);

/// What a compiled entry needs besides its code.
struct CompiledCode {
  std::vector<std::string> objects;      // ELF relocatable objects
  std::vector<std::string> errorSites;   // runtime-check sites, by number
  std::vector<std::string> profileSites; // timed kernels (--profile)
  int64_t kernels = 0;
};

/// The compile cache: in memory for the process (the most recently used
/// entries, up to 256 MiB of object code) and on disk under
/// $KILN_CACHE_DIR (default $XDG_CACHE_HOME/kiln or ~/.cache/kiln;
/// KILN_CACHE_DIR=off disables the disk cache; KILN_CACHE_POLICY bounds
/// it, in LLVM's cache-policy syntax, default 1 GiB and 30 days). Keys hash the
/// kiln IR (with locations), the entry, the pipeline, the host CPU and the
/// identity of the compiler binary (so a rebuild invalidates entries).
class CompileCache {
public:
  static CompileCache &get();
  std::string key(mlir::ModuleOp module, llvm::StringRef entry,
                  const CompileOptions &options,
                  const llvm::TargetMachine &tm) const;
  std::optional<CompiledCode> lookup(const std::string &key);
  /// Stores the entry, then prunes the disk level by KILN_CACHE_POLICY.
  void store(const std::string &key, const CompiledCode &code);
  /// An error naming KILN_CACHE_POLICY when it is set, the disk cache is
  /// on, and it is not a valid LLVM cache policy.
  llvm::Error checkPolicy() const;
};

} // namespace kiln::runtime

#endif // KILN_RUNTIME_CPUCOMPILER_H
