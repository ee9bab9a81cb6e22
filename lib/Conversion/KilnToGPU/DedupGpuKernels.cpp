//===- DedupGpuKernels.cpp - One gpu.module per distinct kernel -----------===//
//
// gpu-kernel-outlining gives every launch a gpu.module of its own; launches
// of identical kernels (the layers of a deep network) are made to share the
// first such module, so that each distinct kernel is compiled and loaded
// once.
//
//===----------------------------------------------------------------------===//

#include "kiln/Conversion/Passes.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/StringMap.h"

namespace kiln {
#define GEN_PASS_DEF_KILNDEDUPGPUKERNELS
#include "kiln/Conversion/Passes.h.inc"
} // namespace kiln

using namespace mlir;

namespace {

/// `module`'s text with its own name and its functions' names replaced by
/// placeholders (generic form, no locations): equal for modules that
/// differ in nothing else. The names are restored before returning.
std::string canonicalText(gpu::GPUModuleOp module) {
  StringAttr moduleName = module.getSymNameAttr();
  SmallVector<std::pair<gpu::GPUFuncOp, StringAttr>> functions;
  for (auto function : module.getOps<gpu::GPUFuncOp>())
    functions.emplace_back(function, SymbolTable::getSymbolName(function));
  module.setSymName("kiln_module");
  for (auto [index, entry] : llvm::enumerate(functions))
    SymbolTable::setSymbolName(entry.first,
                               ("kiln_kernel" + Twine(index)).str());
  std::string text;
  llvm::raw_string_ostream os(text);
  module->print(
      os,
      OpPrintingFlags().printGenericOpForm().useLocalScope().assumeVerified());
  module.setSymName(moduleName);
  for (auto [function, name] : functions)
    SymbolTable::setSymbolName(function, name);
  return text;
}

struct KilnDedupGpuKernelsPass
    : kiln::impl::KilnDedupGpuKernelsBase<KilnDedupGpuKernelsPass> {
  void runOnOperation() override {
    ModuleOp top = getOperation();
    // Text -> the first module that prints so; module name -> the module
    // that replaces it.
    llvm::StringMap<gpu::GPUModuleOp> firsts;
    llvm::DenseMap<StringAttr, gpu::GPUModuleOp> replacement;
    SmallVector<gpu::GPUModuleOp> duplicates;
    llvm::DenseMap<StringAttr, gpu::GPUModuleOp> modules;
    for (auto module : top.getOps<gpu::GPUModuleOp>()) {
      modules[module.getSymNameAttr()] = module;
      auto [it, inserted] = firsts.try_emplace(canonicalText(module), module);
      if (inserted)
        continue;
      replacement[module.getSymNameAttr()] = it->second;
      duplicates.push_back(module);
    }
    if (duplicates.empty())
      return;
    // The kernel of a duplicate is the first's kernel at the same position.
    auto kernelNamed = [](gpu::GPUModuleOp module, StringAttr name) {
      int64_t position = 0;
      for (auto function : module.getOps<gpu::GPUFuncOp>()) {
        if (SymbolTable::getSymbolName(function) == name)
          return position;
        ++position;
      }
      return int64_t(-1);
    };
    auto kernelAt = [](gpu::GPUModuleOp module, int64_t position) {
      for (auto function : module.getOps<gpu::GPUFuncOp>())
        if (position-- == 0)
          return SymbolTable::getSymbolName(function);
      return StringAttr();
    };
    WalkResult result = top.walk([&](gpu::LaunchFuncOp launch) {
      SymbolRefAttr kernel = launch.getKernel();
      auto found = replacement.find(kernel.getRootReference());
      if (found == replacement.end())
        return WalkResult::advance();
      gpu::GPUModuleOp duplicate = modules.lookup(kernel.getRootReference());
      int64_t position = kernelNamed(duplicate, kernel.getLeafReference());
      StringAttr name =
          position < 0 ? StringAttr() : kernelAt(found->second, position);
      if (!name) {
        launch.emitOpError("names no kernel of ") << kernel.getRootReference();
        return WalkResult::interrupt();
      }
      launch.setKernelAttr(SymbolRefAttr::get(found->second.getSymNameAttr(),
                                              {FlatSymbolRefAttr::get(name)}));
      return WalkResult::advance();
    });
    if (result.wasInterrupted())
      return signalPassFailure();
    // Nothing may name a duplicate now (launches were redirected): one
    // walk over every symbol use.
    std::optional<SymbolTable::UseRange> uses =
        SymbolTable::getSymbolUses(&top.getBodyRegion());
    if (uses)
      for (const SymbolTable::SymbolUse &use : *uses) {
        auto found = replacement.find(use.getSymbolRef().getRootReference());
        if (found == replacement.end())
          continue;
        use.getUser()->emitOpError("uses GPU module ")
            << found->first << ", which kiln-dedup-gpu-kernels erases";
        return signalPassFailure();
      }
    for (gpu::GPUModuleOp module : duplicates)
      module.erase();
  }
};

} // namespace
