//===- Passes.td - Kiln conversion passes ------------------*- tablegen -*-===//

#ifndef KILN_CONVERSION_PASSES_TD
#define KILN_CONVERSION_PASSES_TD

include "mlir/Pass/PassBase.td"

def ConvertKilnToLinalg : Pass<"convert-kiln-to-linalg", "mlir::ModuleOp"> {
  let summary = "Lower kiln ops to linalg, tensor, arith, math and scf";
  let description = [{
    Lowers every (decomposed) kiln op on tensors: elementwise ops become one
    `linalg.generic` each, built from the op's ScalarOpInterface with
    broadcasting indexing maps; reductions and `max`/`argmax` become
    reduction generics (NaN and lowest-index tie rules in the combiner);
    `matmul` a contraction generic with broadcast batch dims;
    `gather`/`index_select`/`take` generics that load through
    `tensor.extract`; `scatter_add`/`index_add`/`put` sequential loops (the
    same bits on every run); `topk`/`kthvalue` calls into the Kiln runtime.

    Indexing ops check every index at run time: an out-of-range index calls
    `kiln_rt_index_error(site, index, size)` and is clamped, so no access is
    ever out of bounds. The module attribute `kiln.error_sites` lists, per
    site, the op and its source location for the error message.
  }];
  let dependentDialects = [
    "mlir::arith::ArithDialect", "mlir::bufferization::BufferizationDialect",
    "mlir::func::FuncDialect", "mlir::linalg::LinalgDialect",
    "mlir::math::MathDialect", "mlir::memref::MemRefDialect",
    "mlir::scf::SCFDialect", "mlir::tensor::TensorDialect"
  ];
}

#endif // KILN_CONVERSION_PASSES_TD
