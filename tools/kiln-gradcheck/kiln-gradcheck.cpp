//===- kiln-gradcheck.cpp - Finite-difference check of kiln-autodiff ------===//
//
// The process around kiln::tools::gradcheckMain (GradcheckMain.cpp).
//
//===----------------------------------------------------------------------===//

#include "../ToolMains.h"

#include "llvm/Support/InitLLVM.h"

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  return kiln::tools::gradcheckMain(llvm::ArrayRef<const char *>(argv, argc));
}
