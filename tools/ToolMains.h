//===- ToolMains.h - The command-line tools' mains as functions -*- C++ -*-===//
//
// kiln-run and kiln-gradcheck are each a `main` that sets up the process
// (llvm::InitLLVM) and calls one of these; kiln-batch (the numerical tests'
// driver) calls them many times in one process. Each takes the command line
// as argv (the program name first), writes to stdout/stderr as the tool
// does and returns the tool's exit code; no state carries from one call to
// the next except the process's compile cache.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TOOLS_TOOLMAINS_H
#define KILN_TOOLS_TOOLMAINS_H

#include "llvm/ADT/ArrayRef.h"

namespace kiln::tools {

/// kiln-run (tools.md).
int runMain(llvm::ArrayRef<const char *> args);

/// kiln-gradcheck (tools.md).
int gradcheckMain(llvm::ArrayRef<const char *> args);

} // namespace kiln::tools

#endif // KILN_TOOLS_TOOLMAINS_H
