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
    `tensor.extract`; `scatter_add`/`index_add` loops over independent
    groups of positions (`scf.forall`), `put` a sequential loop, each
    element receiving its updates in the sequential order (the same bits on
    every run and thread count); with `sorted-scatters` (always for cuda)
    `put`, 1-D `scatter_add` and `index_add` along dim 0 sort the positions
    by target at run time (`kiln_rt_sort_positions`) and run a parallel
    loop over the result that adds each target's run in order;
    `topk`/`kthvalue` and `max`/`min`/`argmax`/`argmin` calls into the Kiln
    runtime's vectorized kernels. Reductions over few kept positions are
    split into segments reduced in parallel (float sums and products in
    the lane order); on the CPU those that keep the input's innermost dim
    walk the reduced dims outside and blocks of contiguous columns inside.

    Indexing ops check every index at run time, before the loops that use
    them: the first out-of-range index in row-major order (found by a
    reduction) is reported with `kiln.report_index_error`, and the loops use
    a clamped index, so no access is ever out of bounds. The
    module attribute `kiln.error_sites` lists, per site, the op and its
    source location for the error message; `kiln.kernels` counts the loop
    nests and runtime kernels.

    With optimization remarks on (category `kiln-lower`), each kernel
    reports its algorithm as chosen from the shapes: row, column or split
    reduction, softmax's passes, register-tiled or loop-nest matmul, the
    indexing and scatter strategies, the runtime's selection plan
    (SelectionPlan.h) for topk/kthvalue, the tiles of a fused runtime
    kernel. See docs/remarks.md.
  }];
  let options = [
    Option<"target", "target", "std::string", /*default=*/"\"cpu\"",
           "The target being lowered for: cpu, or cuda (reductions then split "
           "their 32 lanes across threads and merge them in a second kernel, "
           "with the CPU's order of operations)">,
    Option<"sortedScatters", "sorted-scatters", "bool", /*default=*/"false",
           "Lower put, 1-D scatter_add and index_add along dim 0 by sorting "
           "the positions by target (the runtime's kiln_rt_sort_positions) "
           "and a parallel loop over the result (always on for cuda)">,
    Option<"vectorBits", "vector-bits", "int64_t", /*default=*/"512",
           "The CPU's widest vector register in bits: 512 (AVX-512, 32 "
           "registers), 256 (AVX2, 16) or 128 (SSE, 16). Sizes the matmul's "
           "register tiles so that they fit the register file; kiln-run, "
           "kiln-compile and the C++ API pass the host's">
  ];
  let dependentDialects = [
    "mlir::arith::ArithDialect", "mlir::bufferization::BufferizationDialect",
    "mlir::func::FuncDialect", "mlir::linalg::LinalgDialect",
    "mlir::math::MathDialect", "mlir::memref::MemRefDialect",
    "mlir::scf::SCFDialect", "mlir::tensor::TensorDialect",
    "mlir::vector::VectorDialect"
  ];
}

def KilnMapToGpu : Pass<"kiln-map-to-gpu", "mlir::ModuleOp"> {
  let summary = "Turn the loop nests of bufferized host functions into GPU "
                "kernels";
  let description = [{
    Runs after bufferization in the GPU pipeline. In every function, each
    top-level `linalg.generic` (named linalg ops are generalized first)
    becomes a `gpu.launch` with one thread per point of its parallel
    iteration space, 256 threads per block, consecutive threads on
    consecutive points of the innermost dim (coalesced loads and stores);
    reduction dims, if any, run as sequential loops in each thread.
    Large elementwise kernels take four points a block apart and issue all
    their loads before their stores. With `vectorize`, those whose operands
    are dense along the innermost dim (or constant along it) take four
    consecutive points per thread with 16-byte `vector.load`/`vector.store`
    instead (off by default: not yet measured on a GPU).
    A bufferized `scf.forall` (the line-parallel `scatter_add` and
    `index_add`) becomes a kernel with a thread per iteration.
    `memref.copy` becomes a copy kernel, a `memref.get_global` (a constant
    tensor) a device buffer filled by a kernel, and any other op that
    touches memory on the host (an index check's report) a kernel run by
    one thread, so results keep the CPU's order. Allocation, views and runtime calls stay on the host.

    Inside kernels, `kiln.report_index_error` keeps the least (site,
    index, size) reported, as the CPU runtime does, in a six-word record
    (reported, site, index, size, lock, filter; see
    `kiln/Runtime/GpuErrorRecord.h`) that the host function obtains from
    the runtime (`kiln_gpu_error_record`) and reads after the run: the
    message does not depend on which thread reports first, and a bad index
    never faults the CUDA context. A report whose filter key (an atomic
    max) shows a lesser one already recorded stops there; the others take
    the record's lock (an atomic exchange), compare and update.
  }];
  let options = [
    Option<"vectorize", "vectorize", "bool", /*default=*/"false",
           "Four consecutive points per thread with 16-byte vector accesses "
           "in large elementwise kernels">
  ];
  let dependentDialects = [
    "mlir::arith::ArithDialect", "mlir::func::FuncDialect",
    "mlir::gpu::GPUDialect", "mlir::LLVM::LLVMDialect",
    "mlir::memref::MemRefDialect", "mlir::scf::SCFDialect",
    "mlir::vector::VectorDialect"
  ];
}

def KilnCheckUpstreamShapes
    : Pass<"kiln-check-upstream-shapes", "mlir::ModuleOp"> {
  let summary = "Check at run time the sizes upstream ops take to agree";
  let description = [{
    Upstream ops of IR files may take a dynamic size to agree with another
    size; where it does not, their lowering reads or writes out of bounds
    or computes a wrong answer silently (`tensor.cast` of a 3-element
    tensor to `tensor<4xf32>` read a fourth element; `linalg.add` of 3 and
    100000000 elements summed garbage). This pass runs before
    `canonicalize`, which folds such claims into the IR (a cast into the
    slice it casts), and checks each at run time:

    - `tensor.cast` to a static size of a dynamic dim: the dim equals it;
    - `tensor.extract_slice` / `tensor.insert_slice` with static offsets,
      sizes and strides on a source / destination with dynamic dims: each
      such dim reaches the slice's last position;
    - `memref.copy` with dynamic dims: source and target dims are equal;
    - structured linalg ops with dynamic dims: every operand dim a loop
      indexes equals the first one it indexes (the loop's size), and a dim
      read at a constant position holds it.
    - `tensor.reshape` to a static type: the shape operand's elements are
      the type's sizes, and a dynamic source has as many elements;
    - `tensor.concat` with dynamic sizes: the other dims agree with the
      result type's (or operand #0's), and the sizes along the
      concatenated dim add up to the result type's.

    A claim that fails is reported (`kiln-run` exits 2: `tensor.cast at
    f.mlir:6:8: dim 0 of the source is 3, not 4 (the result type's)`) and
    the op does not run: its results are zeros, an insert_slice's
    destination or a structured op's inits. (A cast, slice, reshape or
    concat that runs is copied out and the zeros are filled: both branches
    yield fresh buffers, whose deallocation the function-level deallocation
    pipeline can lower.)

    Errors at compile time, for ops no check covers: ops of the llvm
    dialect (raw pointers); `memref.cast` to a static size of a dynamic
    dim and `memref.subview` of a buffer with dynamic sizes (their memref
    results cannot be replaced by a neutral value; the tensor forms are
    checked); `tensor.parallel_insert_slice` into a destination with
    dynamic sizes (a terminator of `scf.forall`, which cannot be guarded);
    `memref.reinterpret_cast` unless its buffer has a static
    shape and identity layout and its static offset, sizes and strides
    stay inside it; `memref.view` unless its constant shift and static
    shape stay inside its static buffer (both segfaulted or read past the
    buffer); structured ops with dynamic sizes and indexing maps that are
    not permutations of loops.
  }];
  let dependentDialects = [
    "kiln::KilnDialect", "mlir::arith::ArithDialect",
    "mlir::memref::MemRefDialect", "mlir::scf::SCFDialect",
    "mlir::tensor::TensorDialect"
  ];
}

def KilnCheckUpstreamIndices
    : Pass<"kiln-check-upstream-indices", "mlir::ModuleOp"> {
  let summary = "Bounds-check the element accesses of upstream ops";
  let description = [{
    IR files may index tensors with upstream ops, whose out-of-range
    positions are undefined behaviour (a segfault at run time). This pass
    gives them the runtime checks of kiln's own indexing ops: each
    `tensor.extract`, `tensor.insert`, `memref.load`, `memref.store`,
    `memref.atomic_rmw` and `memref.generic_atomic_rmw` whose indices are not constants in range runs only when every index is
    in `[0, size)`; otherwise `kiln.report_index_error` reports each bad
    index (the runtime keeps the least of a check reached many times, by
    many threads) and its dim's size at the op's site (`kiln-run` exits 2:
    `tensor.extract at f.mlir:3:8: index 7 is out of bounds for size 4`),
    an extract or load yields zero and an insert yields its destination
    unchanged. A constant index out of range is a compile-time error.

    Dynamic sizes of ops that make tensors and buffers (`tensor.empty`,
    `tensor.splat`, `tensor.generate`, `bufferization.alloc_tensor`,
    `memref.alloc`, `memref.alloca`) are
    checked the same way: a negative one is reported (`tensor.splat at
    f.mlir:6:8: negative size -5`) and made 0, and a shape whose nonzero
    sizes multiply past 2^59 elements (kiln::isAddressableShape's limit: its
    byte size would wrap) is reported and gets every dynamic size 0. A
    constant negative size is a compile-time error. These checks come
    before the accesses' guards, whose bound is the size the op really
    makes (`memref.dim` folds to the checked size).

    `memref.alloca` takes stack, which the threads running kernels have a
    few MiB of: the allocas of a module may take 1 MiB in all. Those of
    constant size count at compile time (past the limit: an error); the
    others share what is left evenly, and one sized from data beyond its
    share is reported (`memref.alloca at f.mlir:6:8: 16777216 elements of
    4 bytes on the stack: more than this memref.alloca's share ...`) and
    made 0. An alloca inside a loop (scf.for, scf.while, scf.parallel, a
    linalg body: anything but `scf.if`, `scf.index_switch` and
    `scf.execute_region` between it and its function or
    `memref.alloca_scope`) is an error: the loop's lowering frees nothing
    per iteration, so the stack grew with each one (a segfault). So is an
    alloca of elements whose size Kiln does not know (complex numbers).

    Upstream ops that address memory through positions this pass does not
    check are errors: slices and views with dynamic offsets, sizes or
    strides (`tensor.extract_slice`, `tensor.insert_slice`,
    `tensor.parallel_insert_slice`, `memref.subview`,
    `memref.reinterpret_cast`), `tensor.dim`/`memref.dim` of a non-constant
    dim, the vector dialect's loads and stores with non-constant indices
    or whose vector reaches past the buffer's static sizes or lies on a
    dynamic one (a transfer's dims marked possibly out of bounds excepted:
    its lowering masks them), `vector.gather`/`vector.scatter`,
    `tensor.gather`/`tensor.scatter`, and sizes that must agree with others
    at run time (`tensor.pad` with dynamic padding, `tensor.expand_shape`
    with a dynamic output shape, `tensor.reshape` to a dynamic shape).
  }];
  let dependentDialects = [
    "kiln::KilnDialect", "mlir::arith::ArithDialect",
    "mlir::memref::MemRefDialect", "mlir::scf::SCFDialect",
    "mlir::tensor::TensorDialect"
  ];
}

def KilnCheckIntegerDivision
    : Pass<"kiln-check-integer-division", "mlir::ModuleOp"> {
  let summary = "Make upstream integer division of IR files safe";
  let description = [{
    Upstream integer division and remainder (`arith.divsi`, `divui`,
    `remsi`, `remui`, `ceildivsi`, `ceildivui`, `floordivsi`) by zero is
    undefined behaviour, and on x86-64 a SIGFPE that kills the process, as
    is the signed overflow `INT_MIN / -1`. Runs after
    `convert-elementwise-to-linalg`, so that ops on whole tensors are
    scalar ops in `linalg.generic` bodies, and before kiln ops are lowered
    (Kiln's own index arithmetic divides by sizes it knows are not zero).
    Unless its divisor is a constant that is neither zero nor (signed) -1,
    each op divides by a safe divisor: a zero divisor is reported at the
    op's site through `kiln.report_index_error` (`kiln-run` exits 2:
    `arith.divsi at f.mlir:2:8: integer division by zero`) and replaced by
    one, and `INT_MIN / -1` divides by one instead, which gives the
    wrapped two's-complement result NumPy gives (`INT_MIN`, remainder 0;
    PyTorch 1.13 dies of the SIGFPE). A constant zero divisor is a
    compile-time error, and so is integer division on vectors.
  }];
  let dependentDialects = [
    "kiln::KilnDialect", "mlir::arith::ArithDialect", "mlir::scf::SCFDialect"
  ];
}

def KilnDedupGpuKernels : Pass<"kiln-dedup-gpu-kernels", "mlir::ModuleOp"> {
  let summary = "Let launches of identical GPU kernels share one gpu.module";
  let description = [{
    Runs after `gpu-kernel-outlining` in the GPU pipeline, which gives every
    launch a `gpu.module` of its own. Modules that print the same (generic
    form, no locations, their own and their kernels' names aside) -- the
    same op on the same shapes, like the layers of a deep network -- are
    one: each `gpu.launch_func` names the first of them, the others are
    erased. `gpu-module-to-binary` then compiles each distinct kernel once
    (NVPTX and libdevice per module: the gradient of a 12-layer
    transformer, 1347 launches, compiled in 17 s, 13 of them making PTX),
    and the runtime loads each once. A kernel that reports index errors
    holds its site's number, so only launches of one op share it.
  }];
  let dependentDialects = ["mlir::gpu::GPUDialect"];
}

def KilnStripCompileTimes : Pass<"kiln-strip-compile-times", "mlir::ModuleOp"> {
  let summary = "Drop the compile-time measurements from gpu.binary objects";
  let description = [{
    `gpu-module-to-binary` records how long each kernel took to compile
    (`LLVMIRToISATimeInMs`, and any other `*TimeInMs` property) in its
    `#gpu.object`, so the same input printed different IR from run to run.
    The GPU pipeline runs this pass last: `kiln-opt --kiln-gpu-pipeline`
    prints the same text every time. The objects' code is unchanged.
  }];
  let dependentDialects = ["mlir::gpu::GPUDialect"];
}

#endif // KILN_CONVERSION_PASSES_TD
