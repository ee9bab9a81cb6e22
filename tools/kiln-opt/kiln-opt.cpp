//===- kiln-opt.cpp - The opt-like driver for kiln IR ---------------------===//
//
// `mlir-opt` plus the kiln dialect: every upstream dialect, pass and
// extension is registered, so that any stage of Kiln's lowering can be
// inspected and replayed from IR files.
//
//===----------------------------------------------------------------------===//

#include "kiln/Pipelines/Pipelines.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  kiln::registerAllKilnPasses();
  kiln::registerKilnPipelines();

  mlir::DialectRegistry registry;
  kiln::registerKilnDialects(registry);

  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "Kiln optimizer driver\n", registry));
}
