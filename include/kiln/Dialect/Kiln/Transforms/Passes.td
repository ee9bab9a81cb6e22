//===- Passes.td - Kiln dialect passes ---------------------*- tablegen -*-===//

#ifndef KILN_DIALECT_KILN_TRANSFORMS_PASSES_TD
#define KILN_DIALECT_KILN_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def KilnDecompose : Pass<"kiln-decompose"> {
  let summary = "Rewrite composite kiln ops into simpler kiln ops";
  let description = [{
    Expresses `mean`, `norm`, `mse_loss`, `cross_entropy` and `equal` with
    the elementwise ops and plain reductions they are made of (e.g.
    `mean(x) = sum(x) / count`, `cross_entropy = mean(-gather(
    log_softmax(logits), target))`, `equal(a, b) = (sum(cast(a != b)) ==
    0)`), keeping each op's location. On the CPU (`target=cpu`, the
    default) an `equal` neither of whose operands is computed by an op
    kiln-fuse-elementwise would read in place (an elementwise op, a splat
    constant) stays: its lowering calls the runtime's comparison, which
    stops at the first difference, where the sum reads both operands whole
    (the sum is the better kernel when the comparison can read a chain in
    place). With `target=cuda` every `equal` becomes the sum. Thin matmuls -- a dot product, fewer
    matrix rows than the CPU's matrix-vector kernel fills (16 f32, 8
    otherwise) times a vector or a one-column matrix, one row or a vector
    times a matrix of as few columns -- become `sum(a * b)` over k, the
    operands reshaped so that k lines up: a reduction the products fuse
    into, split across threads when long, in the lane order of a sum.
    Remarks (category `kiln-decompose`) report the equal and matmul
    rewrites. `softmax` and `log_softmax` stay: the lowering has kernels
    of their own (and on the CPU kiln-fuse-elementwise writes one over a
    middle dim as a column group where that is the better kernel).
  }];
  let options = [
    Option<"target", "target", "std::string", /*default=*/"\"cpu\"",
           "The target the IR is lowered for: cpu or cuda">,
  ];
  let dependentDialects = [];
}

def KilnAutodiff : Pass<"kiln-autodiff", "mlir::ModuleOp"> {
  let summary = "Derive reverse-mode gradient functions (VJPs)";
  let description = [{
    For each public `func.func @f` with at least one floating-point argument
    and result (or each function named in `functions`), adds

    ```
    @f_vjp(a_1..a_n, ct_1..ct_p) -> (g_1..g_q)
    ```

    where `ct_j` are cotangents of the floating-point results of `@f` in
    order and `g_i` the gradients of its floating-point arguments in order.
    The derived function is ordinary `kiln` IR.

    The pass copies the forward graph into `@f_vjp`, then walks it in
    reverse, asking each op for its gradient rule through
    `DifferentiableOpInterface` (rules are PyTorch's; see
    docs/autodiff.md). Gradients of values used several times are added;
    broadcast operands get gradients summed to their shape; arguments that
    no result depends on get zeros. Forward values the rules need (e.g. the
    result of `exp`) are reused, and forward ops the gradients do not need
    are removed, as is anything folded away (the new function is
    canonicalized and CSE'd).

    Diagnostics: a function that is not a single block of ops; an op without
    a gradient rule on the path from an argument to a result; a
    floating-point result that depends on the floating-point arguments only
    through ops that have no gradient (e.g. `cast` of an integer computed by
    `argmax`); a named function that does not exist or has no
    floating-point argument or result; an existing `@f_vjp`.
  }];
  let options = [
    ListOption<"functions", "functions", "std::string",
               "Differentiate only these functions (default: every public "
               "function with a floating-point argument and result)">,
  ];
  // A function may use no kiln op (an identity); its VJP does.
  let dependentDialects = ["::kiln::KilnDialect"];
}

def KilnFuseElementwise : Pass<"kiln-fuse-elementwise", "mlir::ModuleOp"> {
  let summary = "Group elementwise chains (and their reduction, softmax or "
                "gather consumer) into single kernels";
  let description = [{
    Rewrites each maximal group of ops that can run as one loop nest into a
    `kiln.fused` op, which `-convert-kiln-to-linalg` lowers to one kernel
    with no intermediate tensors:

    - chains of ops with the `Elementwise` trait (unary and binary math,
      `clamp`, `where`, `pow`, comparisons, `cast`, `expand`), with
      broadcasting and mixed element types;
    - elementwise producers of the input of an op with `FusesProducers`
      (`sum`, `prod`, `amax`, `amin`, `softmax`, `log_softmax`, `gather`,
      `index_select`: they are evaluated at each position the op reads;
      `topk`, `kthvalue`, `max`/`min`, `argmax`/`argmin`: evaluated into
      tiles of whole rows that the runtime kernel reads while in cache);
    - elementwise consumers of an op with `FusesConsumers` (`sum`, `prod`,
      `amax`, `amin`, `softmax`, `log_softmax`, `gather`, `index_select`):
      they are applied to each result element as it is computed;
    - indexed reads of stored tensors (`IndexedReadOpInterface`) in such an
      op's input chain, read in place, and views (`ViewOpInterface`:
      `reshape` of a value the chain computes, `permute`) that keep the last
      dim, in such a chain or an elementwise loop, read through.

    A producer used outside the group becomes one more result of the group
    when the group is one elementwise loop, the producer has the root's
    shape and its other users all come after the root (its elements are
    computed by the loop anyway, so they are stored there: one pass over
    its inputs). Otherwise it is recomputed inside the group when the
    inputs it adds are at most twice its result's bytes (what storing it
    costs: written once, read back), and stored otherwise. A recomputed
    value's own producers with other users are recomputed in turn only
    while the whole chain recomputed from it reads at most three times its
    bytes in new inputs, so that a residual stream's kernels do not each
    recompute every earlier step.

    Then elementwise kernels (groups of the elementwise form, or elementwise
    ops left alone) with the same iteration shape merge when one reads the
    other's result or both read the same input, and no user of the earlier
    one's results stands between them: one loop at the later one's place,
    common values computed once. A mask yielded by one chain and read by
    another is then never stored; `exp(x)` and `tanh(x)` returned together
    read x once. With `row-groups`, row groups over the same rows (and
    elementwise kernels of the rows' shape) merge the same way, when the
    merged region is a valid row group: a layer norm and its gradient in
    one graph become one kernel. Splat constants
    are copied into each group. Ops of other kinds (matmul, reshape, topk,
    ...) bound the groups. Groups are formed from the end of each function
    backwards, keyed off traits only.

    A group takes at most `max-group-ops` ops (default 128); a longer
    chain continues in the next group, which stores one intermediate
    tensor. LLVM's code generation is quadratic in the size of a basic
    block, and a kernel's body is one: a chain of 1000 neg/tanh ops took
    3.1 s to compile as one kernel, 0.46 s as eight, and a chain of 20000
    did not compile in 300 s (4.8 s in groups). Next to the arithmetic of
    128 ops, the stored intermediate costs little. A row group (below)
    takes at most `max-row-reductions` reductions (default 4, a softmax
    counting one): it evaluates each reduction's input chain, the
    reductions before it included, at every element of the row, which for
    reductions of one another's results grows with their number.

    With `row-groups` (set by the CPU pipeline), a reduction over the last
    dim with keepdim (`sum`, `prod`, `amax`, `amin`, and `mean` once
    decomposed) whose result the group's elementwise chain broadcasts back
    over the same rows (`x - amax(x)`, a layer norm, softmax's gradient)
    joins the group instead of bounding it, when a row is at most 256 KB
    (the group reduces each row in the order of the reduction's own kernel:
    one loop, or the segments that kernel splits few long rows into, then
    their partials; the same bits); a `softmax` or `log_softmax` over
    those rows then joins as well, unless its kernels would split them. The lowering runs
    each row's reductions, then the chain, while the row is in cache. A
    row group also yields values for users after it: values of its chain
    of the rows' shape, its reductions and per-row values (`[..., 1]`);
    and an anchor reducing the last dim of such rows (keepdim or not)
    becomes a row group's first reduction when a value of its input chain
    or a per-row value is used after it, or a second reduction or softmax
    of the same rows feeds it (`return exp(x), sum(exp(x), 1)`, a mean
    and variance: one kernel, one read of x). A row may also span a
    trailing run of dims (an instance norm's H and W of [N, C, H, W]): the
    group's reductions then all reduce that run (a softmax joins only rows
    of one dim), and once the groups are formed each such row group is
    rewritten over rows of fewer dims, each run of them along which every
    value is constant or varies alike collapsed into one, with reshapes of
    its operands and results outside (views; `CollapsedRowDims` remark).
    Before grouping, a reshape read by row reductions whose values are
    reshaped back and then used elementwise (a group norm written as
    `x.reshape(N, G, -1)`, normalized, reshaped back, scaled per channel)
    has the ops after it and after the reshape back rewritten on the two
    shapes' common refinement (`[N, G, C/G, H, W]`; `RefinedReshapes`
    remark), so that one row group holds them; then keepdim reductions
    over a run of dims with kept dims after it (a layer norm over the
    channels of `[N, C, H, W]`) and the elementwise chain that broadcasts
    them back become one column group on `[O, C, T]` (values also used
    after it, of the rows' shape or the columns', are more results),
    the runs before, in and after the reduced run collapsed (views), when
    every value is constant or full along each and a block of columns fits
    (`ColumnGroup` remark; the lowering walks blocks of columns, each read
    from memory once). Before that, a `softmax` or `log_softmax` over such
    a middle dim whose own packed tiles do not apply (a last dim under 256
    bytes: `kiln::conversion::packedTileBlock`) and whose `[O, C, T]` a
    column group would take is written as its column reductions and chain
    -- amax, the sum of exp(x - m), then exp(x - m) * (1 / s) or
    (x - m) - log(s), the softmax kernels' operations in their order, so
    the same bits -- for the column group to take (`ColumnSoftmax`
    remark). First of all (every
    target), a permute whose input is computed from permutes by its
    inverse through elementwise ops and keepdim reductions only (a
    channels-last layer norm permuted back) has those ops computed on the
    unpermuted tensors instead, and disappears (`CancelledPermutes`
    remark).

    With optimization remarks on (category `kiln-fuse`: kiln-opt
    --remarks-filter=kiln-fuse, kiln-run --remarks), each group of two or
    more ops is reported at its root (`FusedKernel`, passed: its ops and
    how it runs) and each producer left out at the producer (`NotFused`,
    missed: the reason). See docs/remarks.md.
  }];
  let options = [
    Option<"maxGroupOps", "max-group-ops", "unsigned", /*default=*/"128",
           "The most ops one kernel takes (members and recomputed copies)">,
    Option<"maxRowReductions", "max-row-reductions", "unsigned",
           /*default=*/"4",
           "The most reductions (a softmax counting one) one row group "
           "takes: each evaluates its input chain, the reductions before "
           "it included, at every element of the row">,
    Option<"rowGroups", "row-groups", "bool", /*default=*/"false",
           "Row groups (the CPU pipeline): reductions over the last dim "
           "(or a trailing run of dims) with keepdim whose result the elementwise chain broadcasts back "
           "over the same rows join that chain's group, lowered as one "
           "kernel that runs each row's passes while the row is in cache "
           "(and yields the rows' values and per-row values)">
  ];
}

def KilnCheckShapes : Pass<"kiln-check-shapes", "mlir::ModuleOp"> {
  let summary = "Reject shapes no kiln tensor can have, in any op";
  let description = [{
    The first pass of every pipeline, and again after its `canonicalize`
    and `cse` (which fold constant dynamic sizes of IR files into static
    shapes: `tensor.empty(%n, %n)` with n = 2^40 became a static 2^80
    elements, which segfaulted kiln-run). The kiln ops' verifiers bound their
    operands and results (`AddressableTensors`); this pass applies the same
    rule (`kiln::isAddressableShape`: sizes whose nonzero product is at most
    2^59) to every other op's results, to region arguments and to function
    signatures, so that upstream ops in IR files (`arith.constant`,
    `tensor.empty`, `arith.addf` on tensors) cannot overflow the int64 sizes
    and strides of the lowering or ask for a constant too large to build.
    Each bad type gets one diagnostic (`'tensor.empty' op result #0 type
    'tensor<...>' has more than 2^59 elements`); dynamic sizes are left to
    the code that runs the function.
  }];
}

def KilnCheckCalls : Pass<"kiln-check-calls", "mlir::ModuleOp"> {
  let summary = "Reject calls that cannot be compiled";
  let description = [{
    Runs after `inline`, which leaves only the calls it could not inline.
    A `func.call` of a function without a body is an error (`calls @g,
    which has no body`): Kiln compiles whole graphs and links nothing. So is
    a call on a cycle of the call graph (`calls @f recursively`): a kiln
    graph is acyclic, and the compiled code would recurse until the stack
    overflows. Each bad call gets one diagnostic at its location; other
    calls are left alone.
  }];
}

def KilnExportEntryPoints : Pass<"kiln-export-entry-points", "mlir::ModuleOp"> {
  let summary = "Give every public function a C interface";
  let description = [{
    Marks each public `func.func` with `llvm.emit_c_interface`, so that the
    LLVM lowering emits `_mlir_ciface_<name>`, which takes one memref
    descriptor pointer per argument and out-parameter: the entry points
    kiln-run and the C++ API call. Their arguments are marked
    `bufferization.writable = false`: the caller owns those buffers, so
    bufferization copies an argument that an op would update in place
    (`scatter_add`, `index_add`, `put` into an argument).

    A value a function returns more than once is returned as itself the
    first time and as a copy (`bufferization.alloc_tensor() copy(...)`)
    each other time, so that every result has a buffer of its own: each
    becomes a separate out-parameter, and upstream
    `buffer-results-to-out-params` crashes on one allocation returned
    twice.
  }];
  let dependentDialects = ["mlir::bufferization::BufferizationDialect"];
}

def KilnLowerRuntimeCalls : Pass<"kiln-lower-runtime-calls", "mlir::ModuleOp"> {
  let summary = "Turn kiln.report_index_error into runtime calls";
  let description = [{
    Replaces each `kiln.report_index_error` with a call of the runtime's
    `kiln_rt_index_error(site, index, size)` (C interface). Runs after the
    parallel loops are formed, so that loop bodies holding index checks
    had only known memory effects until then.
  }];
  let dependentDialects = ["mlir::func::FuncDialect",
                           "mlir::arith::ArithDialect"];
}

def KilnApproximateMath : Pass<"kiln-approximate-math"> {
  let summary = "Vectorizable math: f32 exp, tanh, erf, pow and log; f64 exp, log, tanh and pow";
  let description = [{
    Rewrites f32 `math.erf` as x P(x^2) / Q(x^2) on x clamped to [-4, 4],
    a rational function fitted for Kiln (within 5.5 ulp of float64's erf
    over a dense sweep of [-6, 6]; half the operations of MLIR's
    approximation; f64 erf is left to libm). Rewrites f32 `math.exp` and `math.tanh` with MLIR's polynomial
    approximations (within 4 and 8 ulp of the exact answer: tested over a
    dense sweep), so that loops computing them vectorize instead of calling
    libm's scalar `expf`/`tanhf` per element (tanh of 16M floats: 263 ms
    -> 4.4 ms on one thread). f32 `math.powf` becomes 2^(y log2|x|)
    evaluated in f64 with polynomials (log2 from the exponent bits and the
    atanh series, 2^t from a Taylor series) and rounded once, with C's
    special cases: not an approximation -- within about 1e-12 relative
    before the rounding, so correctly rounded except next to halfway points
    (0.5 ulp over the test's sweep, PyTorch's powf 0.505) -- and it
    vectorizes (pow(x, 2.5) of 16M floats: 117 ms -> 35 ms on one thread;
    PyTorch 95 ms). Exponents that LLVM turns into exact cheaper code (0,
    1, 2, -1, 0.5: x * x for 2) stay `powf` when they are constants after
    folding, or splat constant inputs of the linalg op using them. f32 `math.log` likewise: e ln 2 + log(m) in f64 from
    the same atanh series, rounded once (0.5 ulp over the test's sweep,
    subnormal inputs included -- MLIR's own f32 log approximation flushes
    them: log(1e-38) came out as -87.34 instead of -87.50; 16M floats 35
    -> 16 ms, PyTorch 51). f64 `math.exp`: x = n ln 2 + r (two fused
    steps, ln 2 split in two), e^r by its Taylor series to degree 13, times
    2^n as two exact powers of two (subnormal results rounded once), within
    1 ulp of glibc's exp (tested over a sweep of the range; over 1.2M
    points 6% of results were 1 ulp away); 512x512 doubles 953 -> 254 us
    on one thread, PyTorch 383. f64 `math.log` is fdlibm's algorithm
    (e_log.c) with its branches as selects: subnormals scaled by 2^54, x =
    2^k (1 + f), s = f / (2 + f), fdlibm's degree-14 polynomial, k ln 2 in
    two parts; within 0.83 ulp of the exact log over the test's sweep
    (against long double); 512x512 doubles 800 -> 366 us, PyTorch 717.
    f64 `math.tanh`: its Taylor series to x^51 below |x| = 0.75 (the
    coefficients from the recurrence of tanh' = 1 - tanh^2, in long
    double), 1 - 2 / (e^(2|x|) + 1) above through the f64 exp, x's sign
    copied; within 1.01 ulp of the exact tanh over the test's sweep
    (glibc's tanh is 2.1 ulp off at worst); 512x512 doubles 3.67 ms ->
    562 us, PyTorch 1.28 ms. f64 `math.powf`: e^(y log|x|) carried in
    double-double (an error d in y log|x| is a relative error d in the
    result, and y log|x| reaches 745): log|x| from fdlibm's two intervals
    (|x| = 2^k m, s = (m - c) / (m + c), c = 1 or 1.5) with s's remainder
    by a fused multiply-add, 2s and 2/3 s^3 in two parts and the rest of
    the atanh series in f64, summed with k ln 2 and log c by two-sums
    (about 2^-67 relative); y times it in two parts, clamped to [-746,
    710]; e^r from n = roundeven(t / ln 2), r exact in two parts, its
    leading terms summed exactly and rounded once; 2^n as two powers of
    two; C's special cases as f32 pow's. Within 0.520 ulp of the exact
    power over the test's 590k-point sweep (glibc's pow: 0.505),
    subnormal results within one unit of the least subnormal; 1024x1024
    doubles 10.7 ms (libm) -> 3.1 ms on one thread with the CPU
    compiler's interleaving of long loops, PyTorch 10.7. Constant
    exponents 0, 1, 2, -1 and 0.5 stay `powf` as in f32. Other math
    functions (f32 sin, cos, ...) keep their libm calls.
  }];
  let dependentDialects = ["mlir::arith::ArithDialect",
                           "mlir::math::MathDialect",
                           "mlir::vector::VectorDialect"];
}

def KilnOuterParallelLoops : Pass<"kiln-outer-parallel-loops"> {
  let summary = "Keep only the outermost dim of each scf.parallel parallel";
  let description = [{
    Rewrites a multi-dimensional `scf.parallel` without reductions into a
    one-dimensional `scf.parallel` over its first dim holding `scf.for`
    loops over the others. Threads then split the outer dim, and the inner
    loops keep affine addresses that LLVM vectorizes (a collapsed
    multi-dimensional worksharing loop recovers indices with divisions,
    which defeats the vectorizer). An `scf.parallel` nested inside another
    (a parallel dim inside a reduction loop, as in matmul's n-k-m order)
    becomes sequential `scf.for` loops.

    When the first dim runs fewer than 64 iterations (a batch of one: a
    [1, N] elementwise loop, the segments of a split reduction over one
    row), splitting it alone would leave the other threads idle: the
    threads then share the first dims whose iterations multiply to 64 or
    more, as one dim (`t` over their iterations row-major, the positions
    recovered by division once per iteration, a unit dim's index 0). The
    last dim joins in blocks when the loop runs out of dims first: blocks
    of about 2^18 operations of work (counted as below), a power of two of
    at most 4096 iterations, each an inner `scf.for` over consecutive
    positions (the last clamped to the dim) -- an elementwise body stays a
    vectorizable loop, and a block of a row that starts 64-byte aligned
    starts aligned; an iteration of that much work or more (a segment) is
    a block of its own (a count of iterations that would overflow -- bounds
    an IR file may claim -- leaves the loop alone). Each such loop gets a
    remark (analysis `ParallelDims`, category `kiln-lower`).

    An outermost `scf.parallel` whose work is known statically and small
    becomes sequential too: starting and joining the worker threads
    (`omp.parallel`) costs microseconds (about 2.5 on the two-core
    development machine, where splitting a kernel in two pays only from
    about 5 µs of work on one thread), and on a loaded machine a worker
    that is not running delays the whole kernel by a scheduler time slice.
    The work is the number of operations one run of the loop executes:
    each op of the body counts once per execution of the loops around it,
    a vector op once per lane, a memory access (an op that reads or
    writes memory: load, store, transfer) 12 times per lane, a copy 24
    times per element (a read and a write). Loop bounds need not be constants: a bound the IR bounds -- a
    constant, an enclosing loop's induction variable, +, -, min, max of
    those, * and / by constants, a remainder by a constant -- counts at its
    largest (a column reduction's last block, `min(n - 128 * i, 128)`).
    A loop whose work is not known -- a bound the IR does not bound, a call
    (the runtime's kernels split their work themselves), an `scf.while` --
    stays parallel. Iterations are independent, so running them in order
    gives the same results. Each loop made sequential gets a remark
    (analysis `SequentialKernel`, category `kiln-lower`) with its work.
  }];
  let options = [
    Option<"minParallelWork", "min-parallel-work", "uint64_t",
           /*default=*/"2097152",
           "Outermost parallel loops that execute fewer operations than "
           "this run sequentially (0: every loop stays parallel)">,
  ];
  let dependentDialects = ["mlir::scf::SCFDialect"];
}

def KilnStridedCopies : Pass<"kiln-strided-copies"> {
  let summary = "Turn copies between non-contiguous buffers into loops";
  let description = [{
    Rewrites each `memref.copy` whose source or target is not one
    contiguous row-major block (a strided subview: a tile of a fused
    runtime kernel's results written into its columns of the full result)
    into a `linalg.copy`, which `convert-linalg-to-parallel-loops` turns
    into loops over the elements. `finalize-memref-to-llvm` would lower it
    to a call of `memrefCopy`, the MLIR runner utilities' generic copy,
    which Kiln's JIT does not link and ahead-of-time objects could not
    resolve. Copies between contiguous buffers stay: they become `memcpy`.
    A copy of a buffer onto itself (the same value, or two equal subviews
    of one buffer, as a bufferized `scf.forall` leaves before CSE) is
    erased: the CPU pipeline runs this pass before the canonicalizations of
    buffer deallocation, which would otherwise fold it, could see it.
  }];
  let dependentDialects = ["mlir::linalg::LinalgDialect"];
}

def KilnIterationScratch : Pass<"kiln-iteration-scratch"> {
  let summary = "Give each thread one stack buffer for a worksharing loop "
                "iteration's small scratch buffer";
  let description = [{
    On the CPU pipeline, after `convert-scf-to-openmp` (and the
    canonicalization that inlines the `memref.alloca_scope` it wraps each
    iteration in, which holds no allocas then) and before loops become
    CFGs: a `memref.alloc` of a static shape of at most `max-bytes` bytes
    directly in the body of an `omp.loop_nest` whose `omp.wsloop` is
    directly in an `omp.parallel`, and whose one `memref.dealloc` follows
    it in the same body -- a buffer that lives for one iteration, such as
    the accumulators and the stack of partial sums of a column reduction's
    block -- becomes a `memref.alloca` (same type and alignment) at the
    start of the parallel region, and its dealloc goes. Each thread runs
    that region once (the OpenMP translation outlines it into a function,
    whose frame then holds the buffer) and its share of the iterations one
    after another, each done with the buffer before the next begins; an
    allocation's contents are undefined either way, so the results are
    unchanged. Every allocation in generated code otherwise goes through
    the runtime's allocator, a `malloc` with a header and an alignment,
    and its `free`: a sum over dim 1 of 128x64x3136 f32 allocated and freed
    two such buffers in each of its 3584 blocks.

    Allocations inside a nested loop or a branch of the body are left
    alone, as are dynamic shapes, buffers larger than `max-bytes`, and
    buffers without a dealloc later in the body (a result, or one that
    outlives the iteration). A parallel region takes buffers in program
    order until they would exceed `max-region-bytes` together; the rest
    stay on the heap. The region's first thread is the caller's: a kernel
    of many reductions (a column group of a few dozen) would otherwise put
    a megabyte on a thread an application may have made with a small
    stack.
  }];
  let options = [
    Option<"maxBytes", "max-bytes", "uint64_t", /*default=*/"32768",
           "The largest buffer put on a thread's stack">,
    Option<"maxRegionBytes", "max-region-bytes", "uint64_t",
           /*default=*/"131072",
           "The most bytes of buffers one parallel region puts on each "
           "thread's stack">,
  ];
  let dependentDialects = ["mlir::memref::MemRefDialect"];
}

def KilnStreamingStores : Pass<"kiln-streaming-stores", "mlir::ModuleOp"> {
  let summary = "Prepare large write-only kernel outputs for non-temporal "
                "stores";
  let description = [{
    On the CPU pipeline, after `kiln-outer-parallel-loops`: a kernel
    argument is *streaming* when it is a memref of at least `min-bytes`
    bytes (static shape, identity layout) that the kernel only stores to
    (`memref.store` / `vector.store`, through views), and no other argument
    of its buffer group is read. An ordinary store to such an output reads
    each cache line from memory before writing it (read for ownership);
    a non-temporal store writes whole lines -- a third less memory traffic
    for an elementwise kernel -- but needs an address aligned to the
    vector's size, and is only worth it for data too large to stay in
    cache for the kernel that reads it next.

    For each kernel with streaming arguments:
    - a one-dimensional outermost `scf.parallel` storing to one runs in
      blocks of 4096 iterations (an `scf.for` inside a parallel loop over
      the blocks), so that each block starts on a multiple of 4096 elements
      -- a thread's share of the plain loop starts anywhere;
    - the body is versioned on whether every streaming buffer starts
      64-byte aligned (`scf.if`; the runtime allocates every buffer so, a
      caller of a compiled object may not): the aligned version starts with
      an `llvm.intr.assume` that each streaming buffer's aligned pointer is
      64-byte aligned, which `kiln-alignment-masks` later turns into masks
      of the pointer where it is read (the OpenMP translation outlines
      parallel loops' bodies into functions of their own, which would not
      see an assumption made outside them);
    - the kernel gets `kiln.streaming_groups` (the buffer groups of its
      streaming arguments), which `kiln-alias-scopes` puts in the names of
      those groups' alias scopes (`buffer1.streaming`).

    The CPU compiler (CpuCompiler.cpp) then makes non-temporal every
    vector store of at least 16 bytes in a streaming scope whose address
    LLVM proves aligned to its size (after vectorization: the assumption,
    an aligned row or block start and the vector loop's step), and ends
    each function that has such stores with `sfence`. A misaligned buffer,
    or rows whose starts LLVM cannot prove aligned (9000x1001 f32), keep
    ordinary stores.
  }];
  let options = [
    Option<"minBytes", "min-bytes", "uint64_t",
           /*default=*/"kiln::conversion::kStreamingMinBytes",
           "Outputs smaller than this many bytes keep ordinary stores "
           "(default 32 MiB, a Zen 4/5 CCD's L3: smaller outputs may still "
           "be in cache for the kernel that reads them)">,
  ];
  let dependentDialects = ["mlir::arith::ArithDialect",
                           "mlir::LLVM::LLVMDialect",
                           "mlir::memref::MemRefDialect",
                           "mlir::scf::SCFDialect"];
}

def KilnAlignmentMasks : Pass<"kiln-alignment-masks", "mlir::ModuleOp"> {
  let summary = "Turn alignment assumptions into pointer masks that survive "
                "OpenMP outlining";
  let description = [{
    On the CPU pipeline, after `finalize-memref-to-llvm` and
    `kiln-alias-scopes`: each `llvm.intr.assume %true ["align"(%p, %a)]`
    (what `kiln-streaming-stores` emits) on a memref's aligned pointer
    (`%p = llvm.extractvalue %d[1]`, or its `ptrtoint`/`inttoptr` round
    trip) is removed, and each read of that memref's aligned pointer the
    assumption dominates -- in the parallel loops' bodies too -- is
    followed by `llvm.intr.ptrmask` of it with `-%a`, which the read's
    users use instead: the same address, since the assumption holds, with
    the alignment written into the value, where LLVM's known-bits analysis
    finds it. The OpenMP translation outlines a parallel loop's body into a
    function of its own, which loads its pointers from a context struct: an
    assumption outside the body, or a masked pointer passed into it, says
    nothing there; a mask applied inside does.
  }];
  let dependentDialects = ["mlir::LLVM::LLVMDialect"];
}

def KilnMaskedRemainders : Pass<"kiln-masked-remainders", "mlir::ModuleOp"> {
  let summary = "Run the remainders of innermost loops as masked vectors";
  let description = [{
    On the CPU pipeline, after `kiln-streaming-stores`: LLVM's loop
    vectorizer runs an innermost loop in steps of VF * IC iterations (VF
    lanes per vector, IC vectors per step) and the iterations left over
    one at a time, in a scalar loop -- a row of 127 f32 ran 96 elements in
    vectors and 31 scalar, and an elementwise kernel over such rows took
    2.4 times as long as over rows of 128. LLVM 22 can mask the whole loop
    instead (tail folding), which gives up the interleaving.

    A loop qualifies when it is an innermost `scf.for` of step 1 whose
    body holds only
    - `memref.load`s and `memref.store`s whose last index is the induction
      variable plus a loop-invariant offset and whose other indices are
      loop-invariant, on memrefs of unit innermost stride (not `i1` or
      `index` elements), and loads whose indices are all loop-invariant;
    - pure elementwise scalar ops (`arith`, `math`; not the integer
      divisions and remainders, which fault on the zero a masked-off lane
      may hold), and values computed from loop-invariant ones only;
    - `memref.prefetch` (dropped from the vector steps);

    whose carried values (iter_args), if any, are exact reductions: each
    used once, by an integer `addi`, `muli`, `maxsi`, `minsi`, `maxui`,
    `minui`, `andi`, `ori` or `xori` with one element, yielded (a row's
    maximum as integer keys; these combine to the same value in any
    order -- float sums do not, and keep the lowering's lane order); and
    where no store may write an element another iteration reads or
    writes (a store and another access of buffers that may overlap -- the
    same buffer group of `kiln.buffer_groups`, or unknown -- use the same
    memref and indices).

    Such a loop keeps its scalar body for the first
    `block * floor(n / block)` iterations, where `block` is four 512-bit
    vectors of the narrowest type the body loads, stores or reduces -- a
    multiple of every VF * IC LLVM chooses on x86, so that its vector loop
    leaves no remainder. The rest run as whole vectors of one 512-bit
    register of the widest type (`vector.load`, the body's ops on vectors,
    `vector.store`), then, when iterations are left, one masked step
    (`vector.create_mask`, `vector.maskedload`, `vector.maskedstore`) --
    or, when the trip count is a constant that leaves a single iteration,
    a plain step of one lane (a constant one-lane mask in each of the 512
    rows LLVM unrolled kept its instruction selection busy for more than
    20 minutes).
    Reductions carry one accumulator per lane through the vector steps
    (the masked step's off lanes take the identity) and combine the lanes
    once with the scalar loop's value (`vector.reduction`).

    Left alone: a constant trip count that is a multiple of a 512-bit
    vector of the narrowest type (LLVM's remainder is whole vectors), or
    smaller than a vector of the widest (LLVM unrolls the loop fully); a
    fill, every store storing the same value in every iteration with
    nothing reduced (LLVM's loop idioms make it a memset of the row or of
    the whole nest; masked, a zero fill of 8x64x47 f32 took 1.9 s to
    compile); and
    a loop that updates in place elements an enclosing `scf.for` revisits
    (`C[i, j] += A[i, k] * B[k, j]` with k outside j). A load of bytes a
    masked store wrote cannot take its data from the store (store-to-load
    forwarding) and waits until the store reaches the cache: the next k's
    update waited on the last one's (a 1000x1000 by 1000x3 matmul: 0.22
    -> 6.4 ms), and log_softmax's passes over rows of 10 on the last
    pass's masked store (0.039 -> 0.129 ms).

    Each loop changed gets a remark (analysis `MaskedRemainder`, category
    `kiln-lower`): how many of its iterations run in LLVM's vector loop,
    as whole vectors and as the masked one.

    Each lane computes what its iteration computed, with the same ops, so
    the results are the same bits.
  }];
  let dependentDialects = ["mlir::arith::ArithDialect",
                           "mlir::scf::SCFDialect",
                           "mlir::vector::VectorDialect"];
}

def KilnTileTransposes : Pass<"kiln-tile-transposes"> {
  let summary = "Tile elementwise kernels that read an operand transposed";
  let description = [{
    An all-parallel linalg op on tensors (a `linalg.generic`, the
    `linalg.transpose` of a `permute`) that reads an input transposed -- the
    input's last dim walked by a loop other than the innermost -- touches one cache line of that
    input per element, and when the input's rows are a power of two apart
    the lines of a column share cache sets. When that walk steps a page
    (4 KB) or more, or a multiple of 512 bytes (the lines of 16 rows then
    fall into at most 8 of a 32 KiB 8-way L1's 64 sets), the op is tiled
    into 16x16 squares of the two dims involved (1 along the others) with
    an `scf.forall` over the squares (`scf::tileUsingSCF`), so each line is
    reused from cache; the squares run in parallel. Elementwise: the
    results do not depend on the order. A 4096x4096 f32 transpose (then an
    add): 127 -> 20 ms on one thread; 64x512: 66 -> 15 us.

    A permute that keeps its innermost dims in place (e.g. (0, 2, 1, 3) of
    [n, 64, 64, 32]) reads chunks of them in order, while the loop outside
    the chunk steps through the input; with chunks of 128 to 256 bytes the
    swapped dims are tiled the same way, the chunk kept whole (4M floats,
    chunks of 32: 1209 -> 960 us on one thread).

    A `linalg.transpose` of 32- or 64-bit elements read element by element
    transposed, whose two swapped dims span at least the lanes of a
    512-bit vector (16 or 8), is instead an `scf.forall` over squares of
    that side transposed in registers, whatever its strides: each square's
    rows are read as vectors (whole 64-byte lines), transposed by rounds of
    two-input `vector.shuffle`s (64 for f32, 24 for f64) and written as the
    output's rows; the strips left over at the ends of the two dims are
    plain transposes of slices. Every line is read and written once,
    whole, so lines sharing cache sets no longer matter. 1 thread, f32:
    1024x1024 862 -> 204 us (PyTorch 596), 4096x4096 34.7 -> 17.7 ms
    (PyTorch 50.6), 800x96 45 -> 7 us, a 64x128x130 permute (2, 0, 1)
    694 -> 215 us (PyTorch 750); f64 1024x1024 1000 -> 520 us.
  }];
  let dependentDialects = ["mlir::scf::SCFDialect",
                           "mlir::tensor::TensorDialect",
                           "mlir::linalg::LinalgDialect",
                           "mlir::vector::VectorDialect",
                           "mlir::arith::ArithDialect"];
}

def KilnOutlineTensorKernels
    : Pass<"kiln-outline-tensor-kernels", "mlir::ModuleOp"> {
  let summary = "Move each distinct kernel on tensors into a function of "
                "its own until bufferization is done";
  let description = [{
    On the CPU pipeline, right after `convert-kiln-to-linalg`: each kernel
    at the top level of a public function -- a linalg op, `scf.forall` or
    `scf.for` with tensor results -- that writes only `tensor.empty`
    results nothing else uses, and whose other tensor operands and captured
    tensors are all whole buffers (the function's arguments, results of
    earlier kernels, or their `collapse_shape`/`expand_shape`, all of which
    bufferize to buffers with the identity layout), becomes a call of a
    private function `@kiln_tensor_kernel*` marked `kiln.tensor_kernel`.
    The function creates the tensors the kernel writes and returns them,
    and takes the tensors and scalars it reads (constants and the reshapes
    of what it reads cloned in), so it never writes an argument. Identical
    kernels (the same ops, attributes and types, operands in the same
    places: compared structurally, found by a hash) share one function.
    The passes up to bufferization (approximations,
    transpose tiling, canonicalization, One-Shot Bufferize with its function
    boundaries) then work on each distinct kernel once, and
    `kiln-inline-tensor-kernels` puts the bufferized bodies back at their
    calls: the IR after it is what bufferizing the whole function gives.

    A kernel with a vector operand or result, one that writes any other
    tensor, or one reading a tensor of any other origin (a slice: a strided
    buffer, which a function boundary of identity layouts would copy),
    stays in place.
  }];
  let dependentDialects = ["mlir::func::FuncDialect"];
}

def KilnInlineTensorKernels
    : Pass<"kiln-inline-tensor-kernels", "mlir::ModuleOp"> {
  let summary = "Put the bufferized kernels of kiln-outline-tensor-kernels "
                "back at their calls";
  let description = [{
    After One-Shot Bufferize: each call of a function marked
    `kiln.tensor_kernel` is replaced by a copy of its body (the call's
    operands for its arguments, what it returns for the call's results),
    and the functions are erased. The allocation a kernel returns is then
    the caller's, as if the kernel had been bufferized in place.
  }];
}

def KilnOutlineKernels : Pass<"kiln-outline-kernels", "mlir::ModuleOp"> {
  let summary = "Move each kernel into a function of its own, one per "
                "distinct kernel";
  let description = [{
    On bufferized code (CPU pipeline, before buffer deallocation, which
    then works on small functions, each distinct kernel once): each
    kernel at the top level of a function -- a linalg op, `scf.forall`,
    `scf.parallel` or `scf.for`, or straight-line vector code (partial
    sums combined in registers once canonicalization unrolled their loop;
    an entry left with vectors would be compiled at -O3 with every kernel
    inlined into it, where an entry of calls is compiled unoptimized and
    its kernels apart) -- becomes a call of a private function
    `@kiln_kernel*` taking the buffers and scalars it uses (constants are
    cloned in, so bounds and shapes stay static). Identical kernels (the
    same op on the same shapes: the layers of a deep network; compared
    structurally, found by a hash) share one function.

    A kernel whose results are vectors (a register block of matmul rows,
    whose accumulators are stored after the loop) is outlined together with
    the ops after it up to the last one that uses what it computes, so that
    no vector is passed to or returned from a kernel: the entry and the
    kernel may be compiled for different vector widths (CpuCompiler.cpp),
    which changes how a vector crosses a call. One whose vectors reach the
    terminator stays in place.

    Each kernel gets `kiln.buffer_groups`: per argument, the allocation it
    views, numbered from 0 (-1: not a memref, or unknown) -- a
    `memref.alloc`/`alloca`, a global, or an argument of an entry point
    (a function nothing calls: the runtime passes distinct buffers, never a
    result buffer that overlaps an argument, and only out-parameters are
    written), reached through view ops. A kernel shared by several calls
    keeps what holds at all of them (groups merged, unknown if unknown at
    any). `kiln-alias-scopes` turns the groups into LLVM alias scopes.

    The entry function keeps allocation, views, runtime calls and calls of
    kernels, and every later pass works on small functions: compiling a
    graph of 100 layers of matmul, relu and softmax (400 kernels) took
    20.8 s, most of it passes and LLVM's OpenMP outlining that scaled with
    the size of the one function (superlinearly: 1.6 s for 25 layers,
    4.4 s for 50), and LLVM optimizing 400 copies of 4 kernels.
  }];
  let dependentDialects = ["mlir::func::FuncDialect",
                           "mlir::LLVM::LLVMDialect"];
}

def KilnByteBools : Pass<"kiln-byte-bools", "mlir::ModuleOp"> {
  let summary = "Load and store i1 elements as the bytes they are";
  let description = [{
    On the CPU pipeline, once memref and vector ops became LLVM loads and
    stores: each `llvm.load` of `i1` (or a vector of `i1`) becomes a load of
    `i8` (a vector of `i8`) and a `trunc`, each `llvm.store` of `i1` a
    `zext` and a store of `i8`, and each `llvm.getelementptr` over `i1`
    elements one over `i8` (the same offsets: an `i1` occupies a byte).
    A bool tensor holds one byte per element, 0 or 1 (numpy's layout), so
    the values are the same.

    LLVM's loop vectorizer treats `i1` as a type of irregular size (1 bit
    in a byte) and scalarizes every access to it: a `where` reading a
    stored mask, or a comparison storing one, ran one element at a time
    (where(mask, g, 0) over 4096x4096 f32 at one thread: 37 ms, 7x the
    time of the same kernel reading f32). As bytes, they vectorize. A
    vector of `i1` in memory is bit-packed for LLVM, so a vector load of
    an `i1` memref would read the wrong bytes: as `i8` lanes it reads the
    bytes the elements are.
  }];
  let dependentDialects = ["mlir::LLVM::LLVMDialect"];
}

def KilnAliasScopes : Pass<"kiln-alias-scopes", "mlir::ModuleOp"> {
  let summary = "Tell LLVM which kernel buffers do not overlap (alias scopes)";
  let description = [{
    On the CPU pipeline, after the memref and vector ops became LLVM loads
    and stores and before functions are converted: in every kernel function
    that `kiln-outline-kernels` gave `kiln.buffer_groups` (the allocation
    each memref argument views, by number; different numbers never
    overlap), each `llvm.load` / `llvm.store` whose address derives from an
    argument (through GEPs, the descriptor's pointers and the descriptors
    views rebuild from them) gets its group's alias scope, and `noalias` of
    the other groups' scopes: the `restrict` of C, as LLVM scoped-noalias
    metadata, which survives the OpenMP outlining of parallel loops (an
    argument's `noalias` would not: the outlined body loads its pointers
    from a context struct). Accesses through an argument of unknown
    allocation (-1) get none. Buffers the kernel allocates itself (`malloc`,
    or an `alloca` of `kiln-iteration-scratch`: accumulators, scratch rows)
    overlap no argument: their accesses share one more scope, `local`,
    noalias with every group's.

    Without it LLVM must assume a kernel's output may overlap its inputs:
    the loop vectorizer adds runtime checks, and a short inner loop that is
    fully unrolled first (a permute keeping a last dim of 32, rows of 10
    classes) stays scalar, because the SLP vectorizer cannot move a load
    above the store before it.

    A group number that is not below the function's argument count (a
    hand-written attribute; kiln-outline-kernels numbers them from 0) is
    an error: it would make that many scopes.
  }];
  let dependentDialects = ["mlir::LLVM::LLVMDialect"];
}

def KilnProfileKernels : Pass<"kiln-profile-kernels", "mlir::ModuleOp"> {
  let summary = "Time each kernel the entry points run (kiln-run --profile)";
  let description = [{
    On the CPU pipeline, after kiln-outline-kernels: in every public
    function, each kernel call (an outlined kernel, a runtime kernel such as
    `kiln_rt_topk_f32`), each kernel left in place and each `memref.copy`
    is bracketed by `kiln_rt_profile_enter(site)` and
    `kiln_rt_profile_exit(site)`, which add the time between them to the
    site's total in the runtime. The module attribute `kiln.profile_sites`
    lists per site the location of the op the kernel came from (a fused
    kernel: its root) and what runs there. The pipeline option `profile`
    (kiln-run --profile) adds the pass; without it the code has no timers.
  }];
  let dependentDialects = ["mlir::func::FuncDialect",
                           "mlir::arith::ArithDialect"];
}

def KilnConstantGlobals : Pass<"kiln-constant-globals", "mlir::ModuleOp"> {
  let summary = "Give tensor constants their memref.globals in program order";
  let description = [{
    Creates the `memref.global` that bufferization would create for each
    tensor-typed `arith.constant`, walking the module in program order, and
    leaves the constants themselves alone; One-Shot Bufferize then finds
    these globals (it reuses a global with the same value and alignment)
    instead of creating them.

    This makes the globals' names and order deterministic. In LLVM 22,
    One-Shot Bufferize visits functions that do not call one another in
    an order that depends on pointer values (fixed upstream by
    llvm/llvm-project#184722), so the `__constant_*` names in the output
    changed from run to run, and with them the compile cache's view of the
    lowered code. Runs right before `one-shot-bufferize`; `alignment` must
    equal its `buffer-alignment`.

    Splat constants of 4 KiB or more (a large `kiln.full` or `zeros` that
    no kernel absorbed, e.g. one returned as it is) get no global: they
    become a `linalg.fill` of `tensor.empty`, a kernel that writes the
    value. As globals they were compiled into the object element by
    element (30M floats: 1.9 s and 600 MB to compile; a 4 TB one made the
    compiler run out of memory) and copied from there on every run.
  }];
  let options = [
    Option<"alignment", "alignment", "uint64_t", /*default=*/"64",
           "Alignment of the globals (one-shot-bufferize's buffer-alignment)">
  ];
  let dependentDialects = ["mlir::memref::MemRefDialect",
                           "mlir::linalg::LinalgDialect",
                           "mlir::tensor::TensorDialect"];
}

def KilnReturnedViews : Pass<"kiln-returned-views"> {
  let summary = "Allocate a buffer returned through a view at the view's shape";
  let description = [{
    Runs on bufferized functions, right before
    `buffer-results-to-out-params{hoist-static-allocs}`. That pass replaces
    a returned `memref.alloc` of static shape with the caller's output
    buffer; any other returned value is copied into it. A kernel's result
    returned through a reshape (`kiln.reshape` of a computed value, a
    reduction with `keepdim`, a kernel that ran on its input without unit
    dims) is a view (`memref.expand_shape`, `memref.collapse_shape`,
    `memref.reshape`) of an allocation, so it was copied: 16 MB after the
    softmax over dim 1 of 4096x1000x1x1 f32, 0.45 ms of its 1.5.

    For each returned view of a `memref.alloc` (both of static shape and
    identity layout, the allocation returned once), the allocation is made
    at the returned shape instead and the kernels write through the
    inverse view (collapse to one dim, expand to the old shape; the same
    contiguous row-major elements), so the returned value is an
    allocation again, and the next pass hands the kernels the caller's
    buffer.
  }];
  let dependentDialects = ["mlir::memref::MemRefDialect"];
}

#endif // KILN_DIALECT_KILN_TRANSFORMS_PASSES_TD
