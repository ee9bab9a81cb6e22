//===- SourceFile.cpp - Loading kiln IR files for the tools ---------------===//

#include "kiln/Pipelines/SourceFile.h"
#include "kiln/Pipelines/Pipelines.h"

#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/ADT/StringExtras.h"

using namespace mlir;

std::unique_ptr<MLIRContext> kiln::createToolContext() {
  DialectRegistry registry;
  registerKilnDialects(registry);
  // Dialects load on demand: the parser loads those the file names, the
  // pass manager those its passes declare. Loading all of them up front
  // cost three quarters of a cached kiln-run (context set-up and
  // tear-down, ~15 ms of ~20 ms).
  return std::make_unique<MLIRContext>(registry);
}

namespace {
bool isIdentifierChar(char c) {
  return llvm::isAlnum(c) || c == '_' || c == '$' || c == '.';
}

/// Whether `element` (trimmed) is an integer a dense i64 array accepts:
/// `true`, `false`, or an optional `-` and a decimal or `0x` hexadecimal
/// literal within i64.
bool isArrayInteger(llvm::StringRef element) {
  if (element == "true" || element == "false")
    return true;
  bool negative = element.consume_front("-");
  element = element.ltrim();
  llvm::StringRef digits = element;
  unsigned radix = 10;
  if (digits.consume_front("0x"))
    radix = 16;
  if (digits.empty() ||
      !llvm::all_of(digits, radix == 16 ? llvm::isHexDigit : llvm::isDigit))
    return false;
  uint64_t magnitude;
  if (digits.getAsInteger(radix, magnitude))
    return false;
  return magnitude <= uint64_t(INT64_MAX) + (negative ? 1 : 0);
}

/// At `text[i]`, the name of one of linalg's custom-syntax array attributes
/// (`permutation` of linalg.transpose, `dimensions` of linalg.reduce and
/// linalg.broadcast) after the operands' `)`: MLIR 22 stores whatever the
/// bracketed list parses to, a null attribute when it does not, and crashes
/// on it. Returns the hazard when the list is not one of integers.
std::optional<kiln::ParserHazard> linalgArrayHazard(llvm::StringRef text,
                                                    size_t i) {
  llvm::StringRef name;
  for (llvm::StringRef candidate : {"permutation", "dimensions"})
    if (text.substr(i).starts_with(candidate))
      name = candidate;
  if (name.empty() || (i > 0 && isIdentifierChar(text[i - 1])) ||
      !text.take_front(i).rtrim().ends_with(")"))
    return std::nullopt;
  llvm::StringRef rest = text.substr(i + name.size());
  if (rest.empty() || isIdentifierChar(rest.front()))
    return std::nullopt;
  rest = rest.ltrim();
  if (!rest.consume_front("="))
    return std::nullopt;
  rest = rest.ltrim();
  if (!rest.starts_with("["))
    return std::nullopt;
  size_t open = text.size() - rest.size();
  kiln::ParserHazard hazard{
      open, ("expected a list of integers in '" + name +
             " = [...]' (MLIR 22's linalg parser crashes on anything else)")
                .str()};
  size_t close = rest.find(']');
  if (close == llvm::StringRef::npos)
    return hazard;
  llvm::StringRef list = rest.slice(1, close).trim();
  if (list.empty())
    return std::nullopt;
  llvm::SmallVector<llvm::StringRef> elements;
  list.split(elements, ',');
  if (!llvm::all_of(elements, [](llvm::StringRef element) {
        return isArrayInteger(element.trim());
      }))
    return hazard;
  return std::nullopt;
}
/// The largest result number an SSA use may name (`%x#N`): MLIR 22's
/// parser makes a placeholder value for every result number up to the one
/// a use names before it checks the op has that many results (`%x#1000000000`
/// took 61 s and 15 GB to be rejected, `%x#2147483648` ran out of memory
/// and aborted).
constexpr uint64_t kMaxResultNumber = (1 << 20) - 1;

/// At `text[i]`, a `%`: the hazard when it begins an SSA use whose result
/// number (`#N`) is beyond kMaxResultNumber.
std::optional<kiln::ParserHazard> resultNumberHazard(llvm::StringRef text,
                                                     size_t i) {
  size_t j = i + 1;
  while (j < text.size() && (isIdentifierChar(text[j]) || text[j] == '-'))
    ++j;
  if (j == i + 1 || j >= text.size() || text[j] != '#')
    return std::nullopt;
  size_t digits = j + 1;
  while (digits < text.size() && llvm::isDigit(text[digits]))
    ++digits;
  llvm::StringRef number = text.slice(j + 1, digits);
  uint64_t value;
  if (number.empty() ||
      (!number.getAsInteger(10, value) && value <= kMaxResultNumber))
    return std::nullopt;
  return kiln::ParserHazard{
      j, ("result number " + number + " is beyond " +
          llvm::Twine(kMaxResultNumber) +
          " (MLIR 22's parser makes a value for every result number up to "
          "the one named, and runs out of memory)")
             .str()};
}
} // namespace

std::optional<kiln::ParserHazard> kiln::findParserHazard(llvm::StringRef text) {
  for (size_t i = 0, e = text.size(); i < e; ++i) {
    char c = text[i];
    if (c == '/' && text.substr(i).starts_with("//")) {
      i = text.find('\n', i);
      if (i == llvm::StringRef::npos)
        return std::nullopt;
      continue;
    }
    if (c == '"') {
      // A string literal; backslash escapes the next character.
      for (++i; i < e && text[i] != '"'; ++i)
        if (text[i] == '\\')
          ++i;
      continue;
    }
    if (c == 'p' || c == 'd')
      if (std::optional<ParserHazard> hazard = linalgArrayHazard(text, i))
        return hazard;
    if (c == '%')
      if (std::optional<ParserHazard> hazard = resultNumberHazard(text, i))
        return hazard;
    if (c != 'a' || (i > 0 && isIdentifierChar(text[i - 1])) ||
        !text.substr(i).starts_with("array<"))
      continue;
    llvm::StringRef rest = text.substr(i + 6).ltrim();
    if (rest.starts_with("index") &&
        (rest.size() == 5 || !isIdentifierChar(rest[5])))
      return ParserHazard{i, "dense arrays of 'index' are not supported (MLIR "
                             "22's parser crashes on them); use i64"};
  }
  return std::nullopt;
}

LogicalResult kiln::checkParserHazards(llvm::SourceMgr &sourceMgr) {
  const llvm::MemoryBuffer *buffer =
      sourceMgr.getMemoryBuffer(sourceMgr.getMainFileID());
  std::optional<ParserHazard> hazard = findParserHazard(buffer->getBuffer());
  if (!hazard)
    return success();
  sourceMgr.PrintMessage(
      llvm::SMLoc::getFromPointer(buffer->getBufferStart() + hazard->offset),
      llvm::SourceMgr::DK_Error, hazard->message);
  return failure();
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
  if (failed(checkParserHazards(*sourceMgr)))
    return file;
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
  error = count == 0 ? std::string("the module has no public function with a "
                                   "body to run")
                     : "the module has " + std::to_string(count) +
                           " public functions; choose one with --entry";
  return nullptr;
}

std::optional<std::string> kiln::SourceFile::getLine(llvm::StringRef file,
                                                     unsigned line) const {
  unsigned main = sourceMgr->getMainFileID();
  const llvm::MemoryBuffer *buffer = sourceMgr->getMemoryBuffer(main);
  if (!buffer || buffer->getBufferIdentifier() != file || line == 0)
    return std::nullopt;
  llvm::SMLoc start = sourceMgr->FindLocForLineAndColumn(main, line, 1);
  if (!start.isValid())
    return std::nullopt;
  llvm::StringRef rest(start.getPointer(),
                       buffer->getBufferEnd() - start.getPointer());
  return rest.take_until([](char c) { return c == '\n' || c == '\r'; }).str();
}
