//===- kiln-run.cpp - Compile a kiln function with the JIT and run it -----===//
//
// The process around kiln::tools::runMain (RunMain.cpp).
//
//===----------------------------------------------------------------------===//

#include "../ToolMains.h"

#include "llvm/Support/InitLLVM.h"

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  return kiln::tools::runMain(llvm::ArrayRef<const char *>(argv, argc));
}
