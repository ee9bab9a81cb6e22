//===- SourceFile.cpp - Loading kiln IR files for the tools ---------------===//

#include "kiln/Pipelines/SourceFile.h"

#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Support/FileUtilities.h"

using namespace mlir;

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
