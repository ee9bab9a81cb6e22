//===- SourceFile.cpp - Loading kiln IR files for the tools ---------------===//

#include "kiln/Pipelines/SourceFile.h"
#include "kiln/Pipelines/Pipelines.h"

#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Support/FileUtilities.h"

using namespace mlir;

std::unique_ptr<MLIRContext> kiln::createToolContext() {
  DialectRegistry registry;
  registerKilnDialects(registry);
  auto context = std::make_unique<MLIRContext>(registry);
  context->loadAllAvailableDialects();
  return context;
}

std::unique_ptr<kiln::SourceFile> kiln::SourceFile::load(llvm::StringRef path,
                                                         MLIRContext &context,
                                                         std::string &error) {
  auto buffer = openInputFile(path, &error);
  if (!buffer)
    return nullptr;
  auto sourceMgr = std::make_shared<llvm::SourceMgr>();
  sourceMgr->AddNewSourceBuffer(std::move(buffer), llvm::SMLoc());
  std::unique_ptr<SourceFile> file(new SourceFile(sourceMgr, context));
  file->module = parseSourceFile<ModuleOp>(sourceMgr, ParserConfig(&context));
  if (file->module && failed(verify(*file->module)))
    file->module = nullptr;
  return file;
}

func::FuncOp kiln::SourceFile::findEntry(llvm::StringRef name,
                                         std::string &error) {
  ModuleOp m = getModule();
  if (!name.empty()) {
    auto function = m.lookupSymbol<func::FuncOp>(name);
    if (!function || function.isExternal())
      error = ("no function @" + name + " in the module").str();
    return function && !function.isExternal() ? function : nullptr;
  }
  func::FuncOp only;
  unsigned count = 0;
  for (auto function : m.getOps<func::FuncOp>())
    if (function.isPublic() && !function.isExternal()) {
      only = function;
      ++count;
    }
  if (count == 1)
    return only;
  error = "the module has " + std::to_string(count) +
          " public functions; choose one with --entry";
  return nullptr;
}
