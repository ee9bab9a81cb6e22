//===- ToolOptions.cpp - Command lines of the kiln tools ------------------===//

#include "kiln/Pipelines/ToolOptions.h"

#include "llvm/ADT/Twine.h"

#include <cmath>

using namespace kiln;
using llvm::StringRef;

void ToolOptions::flag(StringRef name, bool &out) {
  options.push_back({name.str(), false, [&out](StringRef) {
                       out = true;
                       return std::optional<std::string>();
                     }});
}

void ToolOptions::string(StringRef name, std::string &out) {
  options.push_back({name.str(), true, [&out](StringRef value) {
                       out = value.str();
                       return std::optional<std::string>();
                     }});
}

void ToolOptions::list(StringRef name, std::vector<std::string> &out) {
  options.push_back({name.str(), true, [&out](StringRef value) {
                       out.push_back(value.str());
                       return std::optional<std::string>();
                     }});
}

void ToolOptions::integer(StringRef name, int minimum, int &out, int maximum) {
  std::string n = name.str();
  options.push_back(
      {n, true,
       [&out, minimum, maximum,
        n](StringRef value) -> std::optional<std::string> {
         if (!value.getAsInteger(10, out) && out >= minimum && out <= maximum)
           return std::nullopt;
         if (maximum == std::numeric_limits<int>::max())
           return ("--" + n + " expects an integer >= " + llvm::Twine(minimum) +
                   ", got '" + value + "'")
               .str();
         return ("--" + n + " expects an integer from " + llvm::Twine(minimum) +
                 " to " + llvm::Twine(maximum) + ", got '" + value + "'")
             .str();
       }});
}

void ToolOptions::positiveNumber(StringRef name, double &out) {
  std::string n = name.str();
  options.push_back(
      {n, true, [&out, n](StringRef value) -> std::optional<std::string> {
         if (value.getAsDouble(out) || !std::isfinite(out) || out <= 0)
           return ("--" + n + " expects a positive number, got '" + value + "'")
               .str();
         return std::nullopt;
       }});
}

std::optional<std::string> ToolOptions::parse(llvm::ArrayRef<const char *> argv,
                                              std::string &inputFile,
                                              bool &help) const {
  for (size_t i = 1; i < argv.size(); ++i) {
    StringRef arg(argv[i]);
    if (arg == "-" || !arg.starts_with("-")) {
      if (!inputFile.empty())
        return "more than one input file ('" + inputFile + "', '" + arg.str() +
               "')";
      inputFile = arg.str();
      continue;
    }
    StringRef name = arg.drop_while([](char c) { return c == '-'; });
    std::optional<StringRef> value;
    if (size_t eq = name.find('='); eq != StringRef::npos) {
      value = name.drop_front(eq + 1);
      name = name.take_front(eq);
    }
    if (name == "help" || name == "h") {
      help = true;
      continue;
    }
    const Option *option = nullptr;
    for (const Option &candidate : options)
      if (candidate.name == name)
        option = &candidate;
    if (!option)
      return "unknown option '" + arg.str() + "'";
    if (!option->takesValue) {
      if (value)
        return "--" + name.str() + " takes no value";
    } else if (!value) {
      if (i + 1 >= argv.size())
        return "--" + name.str() + " expects a value";
      value = StringRef(argv[++i]);
    }
    if (std::optional<std::string> error = option->store(value.value_or("")))
      return error;
  }
  if (!help && inputFile.empty())
    return std::string("no input file");
  return std::nullopt;
}
