//===- SourceFile.h - Loading kiln IR files for the tools -------*- C++ -*-===//

#ifndef KILN_PIPELINES_SOURCEFILE_H
#define KILN_PIPELINES_SOURCEFILE_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/Support/SourceMgr.h"

#include <memory>
#include <optional>
#include <string>

namespace kiln {

/// The MLIR context of the command-line tools: every dialect and interface
/// the pipelines use (registerKilnDialects), registered; each is loaded
/// when first needed.
std::unique_ptr<mlir::MLIRContext> createToolContext();

/// A construct in IR text that MLIR 22's parser crashes on instead of
/// diagnosing it: where it starts and what is wrong.
struct ParserHazard {
  size_t offset;
  std::string message;
};

/// Finds the first parser hazard in `text`, outside comments and string
/// literals. Three are known: a dense array of `index` (`array<index:
/// 1>`), whose element width the parser queries unchecked (fixed upstream
/// by llvm/llvm-project#179075, after LLVM 22); a bracketed list that is
/// not one of integers (`permutation = [f64, 0]`, `[1, 0`, an integer
/// beyond i64) in the custom syntax of linalg.transpose, linalg.reduce and
/// linalg.broadcast, whose parser stores the failed parse's null attribute;
/// and an SSA use naming a result number beyond 2^20 - 1 (`%0#2147483648`),
/// for which the parser makes a placeholder value per result number up to
/// it before it checks the op has that many results (out of memory).
std::optional<ParserHazard> findParserHazard(llvm::StringRef text);

/// Reports the first parser hazard of the main buffer of `sourceMgr` as an
/// error at its location (`file:line:col: error: ...`) and returns failure;
/// every tool and the C++ API's IR loading check before parsing.
mlir::LogicalResult checkParserHazards(llvm::SourceMgr &sourceMgr);

/// An IR file (or `-` for stdin) parsed and verified for a tool. Its
/// diagnostic handler prints errors with source context and stays installed
/// for the file's lifetime, so later stages report the same way.
class SourceFile {
public:
  /// Loads `path` into `context`. Returns null with `error` set when the
  /// file cannot be read; a file that does not parse or verify has its
  /// diagnostics printed and `getModule()` null.
  static std::unique_ptr<SourceFile>
  load(llvm::StringRef path, mlir::MLIRContext &context, std::string &error);

  /// The verified module, or null.
  mlir::ModuleOp getModule() { return module ? *module : nullptr; }

  /// The function a tool runs: `name`, or the module's only public function
  /// when `name` is empty. Returns null with `error` set when there is no
  /// such function (or no single public one).
  mlir::func::FuncOp findEntry(llvm::StringRef name, std::string &error);

  /// Line `line` (1-based) of the file, without its end of line, when
  /// `file` names it (the file name its locations carry); else nothing.
  std::optional<std::string> getLine(llvm::StringRef file, unsigned line) const;

private:
  SourceFile(std::shared_ptr<llvm::SourceMgr> sourceMgr,
             mlir::MLIRContext &context)
      : sourceMgr(std::move(sourceMgr)), handler(*this->sourceMgr, &context) {}

  std::shared_ptr<llvm::SourceMgr> sourceMgr;
  mlir::SourceMgrDiagnosticHandler handler;
  mlir::OwningOpRef<mlir::ModuleOp> module;
};

} // namespace kiln

#endif // KILN_PIPELINES_SOURCEFILE_H
