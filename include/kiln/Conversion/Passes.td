//===- Passes.td - Kiln conversion passes ------------------*- tablegen -*-===//

#ifndef KILN_CONVERSION_PASSES_TD
#define KILN_CONVERSION_PASSES_TD

include "mlir/Pass/PassBase.td"

def ConvertKilnToLinalg : Pass<"convert-kiln-to-linalg", "mlir::ModuleOp"> {
  let summary = "Lower kiln ops to linalg, tensor, arith, math and scf";
  let description = [{
    Lowers every (decomposed) kiln op on tensors: elementwise ops become one
    `linalg.generic` each, built from the op's ScalarOpInterface with
    broadcasting indexing maps; `sum`/`prod`/`amax`/`amin` a parallel
    generic over the kept dims whose body loops over the reduced dims with
    register accumulators; `matmul` a contraction generic with broadcast
    batch dims; `gather`/`index_select`/`take` generics that load through
    `tensor.extract`; `scatter_add`/`index_add`/`put` sequential loops (the
    same bits on every run); `topk`/`kthvalue` and `max`/`min`/`argmax`/
    `argmin` calls into the Kiln runtime's vectorized kernels.

    Indexing ops check every index at run time: the first out-of-range
    index (row-major; found by a reduction before parallel loops, in order
    in sequential ones) is reported with `kiln.report_index_error`, and the
    loops use a clamped index, so no access is ever out of bounds. The
    module attribute `kiln.error_sites` lists, per site, the op and its
    source location for the error message; `kiln.kernels` counts the loop
    nests and runtime kernels.
  }];
  let dependentDialects = [
    "mlir::arith::ArithDialect", "mlir::bufferization::BufferizationDialect",
    "mlir::func::FuncDialect", "mlir::linalg::LinalgDialect",
    "mlir::math::MathDialect", "mlir::memref::MemRefDialect",
    "mlir::scf::SCFDialect", "mlir::tensor::TensorDialect",
    "mlir::vector::VectorDialect"
  ];
}

#endif // KILN_CONVERSION_PASSES_TD
