//===- ToolOptions.h - Command lines of the kiln tools ----------*- C++ -*-===//
//
// The options of kiln-run and kiln-gradcheck (tools.md), parsed by hand:
// libLLVM registers global cl::opts named `threads` and `stats`, which
// options of the same name would clash with. Options are `--name=value`,
// `--name value` or `--name` for flags; one positional argument (the input
// file, `-` for stdin).
//
//===----------------------------------------------------------------------===//

#ifndef KILN_PIPELINES_TOOLOPTIONS_H
#define KILN_PIPELINES_TOOLOPTIONS_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"

#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace kiln {

class ToolOptions {
public:
  /// A flag without a value.
  void flag(llvm::StringRef name, bool &out);
  /// A string; given again, the last one wins.
  void string(llvm::StringRef name, std::string &out);
  /// A string that may be given several times.
  void list(llvm::StringRef name, std::vector<std::string> &out);
  /// An integer in [minimum, maximum].
  void integer(llvm::StringRef name, int minimum, int &out,
               int maximum = std::numeric_limits<int>::max());
  /// A finite number > 0.
  void positiveNumber(llvm::StringRef name, double &out);

  /// Parses `argv` (argv[0] is the program). Returns an error message for
  /// bad usage; `help` is set for --help/-h, `inputFile` to the positional
  /// argument (required unless --help).
  std::optional<std::string> parse(llvm::ArrayRef<const char *> argv,
                                   std::string &inputFile, bool &help) const;

private:
  struct Option {
    std::string name;
    bool takesValue;
    /// Stores the value; returns an error message.
    std::function<std::optional<std::string>(llvm::StringRef)> store;
  };
  std::vector<Option> options;
};

} // namespace kiln

#endif // KILN_PIPELINES_TOOLOPTIONS_H
