// RUN: kiln-opt --kiln-fuse-elementwise --remarks-filter=kiln-fuse %s --verify-diagnostics --split-input-file -o /dev/null
// RUN: kiln-opt --kiln-fuse-elementwise="max-group-ops=2" --remarks-filter=kiln-fuse %S/Inputs/fuse-remarks-full.mlir --verify-diagnostics -o /dev/null
// RUN: sed 's/expected-remark.*//' %s | kiln-opt --kiln-fuse-elementwise --split-input-file -o /dev/null 2>&1 | FileCheck %s --check-prefix=QUIET --allow-empty

// kiln-fuse-elementwise explains itself: each kernel it forms (passed,
// at the kernel's root) and each producer it leaves out with the reason
// (missed, at the producer). One case per reason. Without a remark filter
// it says nothing.
// QUIET-NOT: remark

// A chain into a reduction: one kernel, evaluated where the sum reads.
func.func @into_reduction(%x: tensor<8x16xf32>) -> tensor<8xf32> {
  %c = kiln.constant dense<0.5> : tensor<f32>
  %0 = kiln.mul %x, %c : tensor<8x16xf32>, tensor<f32>
  %1 = kiln.exp %0 : tensor<8x16xf32>
  // expected-remark @below {{3 ops in one kernel (the elementwise chain is evaluated where 'kiln.sum' reads its input): kiln.mul, kiln.exp, kiln.sum}}
  %2 = kiln.sum %1 {dims = array<i64: 1>} : tensor<8x16xf32>
  return %2 : tensor<8xf32>
}

// -----

// Ops of other kinds bound kernels.
func.func @after_matmul(%a: tensor<8x16xf32>, %b: tensor<16x4xf32>) -> tensor<8x4xf32> {
  // expected-remark @below {{it is neither elementwise nor a reduction, softmax, selection or gather; its result is stored}}
  %0 = kiln.matmul %a, %b : tensor<8x16xf32>, tensor<16x4xf32>
  %1 = kiln.tanh %0 : tensor<8x4xf32>
  // expected-remark @below {{2 ops in one kernel (one elementwise loop, no intermediate tensors): kiln.tanh, kiln.neg}}
  %2 = kiln.neg %1 : tensor<8x4xf32>
  return %2 : tensor<8x4xf32>
}

// -----

// A reduction broadcast back over its input (x - amax(x)): the maxima must
// all exist before the subtraction runs. (The amax alone is no group: a
// kernel of one op is not reported.)
func.func @broadcast_back(%x: tensor<8x16xf32>) -> tensor<8x16xf32> {
  // expected-remark @below {{'kiln.amax' is not fused into the kernel of 'kiln.exp'}}
  %m = kiln.amax %x {dims = array<i64: 1>, keepdim = true} : tensor<8x16xf32>
  %0 = kiln.sub %x, %m : tensor<8x16xf32>, tensor<8x1xf32>
  // expected-remark @below {{2 ops in one kernel (one elementwise loop, no intermediate tensors): kiln.sub, kiln.exp}}
  %1 = kiln.exp %0 : tensor<8x16xf32>
  return %1 : tensor<8x16xf32>
}

// -----

// An i1 mask used by two kernels is stored: recomputing it in the later
// kernel would read both f32 inputs (512 bytes) where the mask itself is 64
// bytes. The earlier kernel computes it anyway and yields it as a second
// result; then the two loops, of one shape, become one.
func.func @stored_mask(%x: tensor<64xf32>, %y: tensor<64xf32>) -> (tensor<64xf32>, tensor<64xf32>) {
  // expected-remark @below {{it has users outside the kernel, and recomputing it there would read 512 bytes of new inputs, more than the 128 bytes that storing its result costs (written once, read back)}}
  %m = kiln.gt %x, %y : tensor<64xf32>, tensor<64xf32>
  %z = kiln.constant dense<0.0> : tensor<f32>
  // expected-remark @below {{2 ops in one kernel (one elementwise loop, no intermediate tensors, storing 2 results): kiln.gt, kiln.where}}
  %a = kiln.where %m, %x, %z : tensor<64xi1>, tensor<64xf32>, tensor<f32>
  %o = kiln.constant dense<1.0> : tensor<f32>
  %b = kiln.where %m, %o, %z : tensor<64xi1>, tensor<f32>, tensor<f32>
  // expected-remark @below {{2 ops in one kernel (one elementwise loop, no intermediate tensors): kiln.where, kiln.neg}}
  // expected-remark @below {{(kiln.gt, kiln.where) runs in this kernel's loop: this kernel reads its result, which is no longer stored unless used later}}
  %c = kiln.neg %b : tensor<64xf32>
  return %a, %c : tensor<64xf32>, tensor<64xf32>
}

// -----

// A kernel holds one reduction.
func.func @two_reductions(%x: tensor<8x16xf32>) -> tensor<f32> {
  %e = kiln.exp %x : tensor<8x16xf32>
  // expected-remark @below {{the kernel already holds 'kiln.sum'}}
  // expected-remark @below {{2 ops in one kernel}}
  %s = kiln.sum %e {dims = array<i64: 1>} : tensor<8x16xf32>
  %t = kiln.sum %s : tensor<8xf32>
  return %t : tensor<f32>
}

// -----

// topk's results come from a runtime kernel: no epilogue.
func.func @after_topk(%x: tensor<8x16xf32>) -> tensor<8x2xf32> {
  // expected-remark @below {{its results are computed by a runtime kernel, which takes no elementwise epilogue}}
  %v, %i = kiln.topk %x {k = 2 : i64, dim = 1 : i64} : tensor<8x16xf32>
  %0 = kiln.neg %v : tensor<8x2xf32>
  // expected-remark @below {{2 ops in one kernel}}
  %1 = kiln.exp %0 : tensor<8x2xf32>
  return %1 : tensor<8x2xf32>
}

// -----

// A reduction result needed elsewhere too is stored, not an epilogue.
func.func @reduction_used_twice(%x: tensor<8x16xf32>) -> (tensor<8xf32>, tensor<8xf32>) {
  // expected-remark @below {{its result has users outside the kernel}}
  %s = kiln.sum %x {dims = array<i64: 1>} : tensor<8x16xf32>
  %0 = kiln.neg %s : tensor<8xf32>
  // expected-remark @below {{2 ops in one kernel}}
  %1 = kiln.exp %0 : tensor<8xf32>
  return %s, %1 : tensor<8xf32>, tensor<8xf32>
}

// -----

// An indexed read of stored tensors, reading runs of 32 or more elements,
// is read in place by the reduction.
func.func @indexed_read(%w: tensor<50x32xf32>, %i: tensor<6xi64>) -> tensor<32xf32> {
  %r = kiln.index_select %w, %i {dim = 0 : i64} : tensor<50x32xf32>, tensor<6xi64>
  // expected-remark @below {{2 ops in one kernel (the elementwise chain is evaluated where 'kiln.sum' reads its input; indexed reads evaluated in place, their selections never stored): kiln.index_select, kiln.sum}}
  %b = kiln.sum %r {dims = array<i64: 0>} : tensor<6x32xf32>
  return %b : tensor<32xf32>
}

// -----

// One with another user is stored (not recomputed).
func.func @indexed_read_used_twice(%w: tensor<50x32xf32>, %i: tensor<6xi64>) -> (tensor<32xf32>, tensor<6x32xf32>) {
  // expected-remark @below {{it has users outside the kernel, and an indexed read joins a kernel's chain only as its one user (it is not recomputed)}}
  %r = kiln.index_select %w, %i {dim = 0 : i64} : tensor<50x32xf32>, tensor<6xi64>
  %b = kiln.amax %r {dims = array<i64: 0>} : tensor<6x32xf32>
  return %b, %r : tensor<32xf32>, tensor<6x32xf32>
}

// -----

// One reading short runs keeps its own kernel.
func.func @short_runs(%x: tensor<4x64xf32>, %g: tensor<4x3xi64>) -> tensor<4xf32> {
  // expected-remark @below {{it reads runs of 1 contiguous element(s), fewer than 32, and not along a last dim the consumer keeps: its own kernel (which prefetches scattered reads, or copies short slices for a vectorized consumer) is faster}}
  %0 = kiln.gather %x, %g {dim = 1 : i64} : tensor<4x64xf32>, tensor<4x3xi64>
  %1 = kiln.sum %0 {dims = array<i64: 1>} : tensor<4x3xf32>
  return %1 : tensor<4xf32>
}

// -----

// Rows of 16 selected and summed along them keep their own kernel; summed
// over the selected rows (the columns kept), they are read in place.
func.func @short_rows(%y: tensor<8x16xf32>, %i: tensor<3xi64>) -> (tensor<3xf32>, tensor<16xf32>) {
  // expected-remark @below {{it reads runs of 16 contiguous element(s), fewer than 32, and not along a last dim the consumer keeps}}
  %0 = kiln.index_select %y, %i {dim = 0 : i64} : tensor<8x16xf32>, tensor<3xi64>
  %1 = kiln.sum %0 {dims = array<i64: 1>} : tensor<3x16xf32>
  %2 = kiln.index_select %y, %i {dim = 0 : i64} : tensor<8x16xf32>, tensor<3xi64>
  // expected-remark @below {{2 ops in one kernel (the elementwise chain is evaluated where 'kiln.sum' reads its input; indexed reads evaluated in place, their selections never stored): kiln.index_select, kiln.sum}}
  %3 = kiln.sum %2 {dims = array<i64: 0>} : tensor<3x16xf32>
  return %1, %3 : tensor<3xf32>, tensor<16xf32>
}

// -----

// Views: a reshape keeping the last dim joins a reduction's input chain
// (bags of selected rows) or an elementwise loop; one of a stored argument,
// one that does not keep the last dim and one with a second user stay out,
// each with its reason.
func.func @views(%w: tensor<10x16xf32>, %i: tensor<12xi64>, %x: tensor<8x4xf32>, %y: tensor<4x8xf32>) -> (tensor<3x16xf32>, tensor<2x4xf32>, tensor<f32>, tensor<2x8xf32>, tensor<2x2x8xf32>, tensor<2x2x8xf32>) {
  %s = kiln.index_select %w, %i {dim = 0 : i64} : tensor<10x16xf32>, tensor<12xi64>
  %r = kiln.reshape %s : tensor<12x16xf32> -> tensor<3x4x16xf32>
  // expected-remark @below {{3 ops in one kernel (the elementwise chain is evaluated where 'kiln.sum' reads its input; indexed reads evaluated in place, their selections never stored; views (reshape, permute) read through): kiln.index_select, kiln.reshape, kiln.sum}}
  %b = kiln.sum %r {dims = array<i64: 1>} : tensor<3x4x16xf32>
  // expected-remark @below {{it is a view of a tensor stored before the kernel, which reads it in place as stored}}
  %0 = kiln.reshape %x : tensor<8x4xf32> -> tensor<2x4x4xf32>
  %1 = kiln.sum %0 {dims = array<i64: 1>} : tensor<2x4x4xf32>
  %2 = kiln.exp %y : tensor<4x8xf32>
  // expected-remark @below {{it does not keep the last dim, along which the kernel loads vectors (read through it, the elements would be loaded one at a time); its result is stored}}
  %3 = kiln.reshape %2 : tensor<4x8xf32> -> tensor<32xf32>
  %4 = kiln.amax %3 : tensor<32xf32>
  %5 = kiln.tanh %y : tensor<4x8xf32>
  // expected-remark @below {{it has users outside the kernel, and a view joins a kernel's chain only as its one user (it is not recomputed)}}
  %6 = kiln.reshape %5 : tensor<4x8xf32> -> tensor<2x2x8xf32>
  %7 = kiln.sum %6 {dims = array<i64: 1>} : tensor<2x2x8xf32>
  %8 = kiln.exp %y : tensor<4x8xf32>
  %9 = kiln.reshape %8 : tensor<4x8xf32> -> tensor<2x2x8xf32>
  // expected-remark @below {{3 ops in one kernel (one elementwise loop, no intermediate tensors; views (reshape, permute) read through): kiln.exp, kiln.reshape, kiln.neg}}
  %10 = kiln.neg %9 : tensor<2x2x8xf32>
  return %b, %1, %4, %7, %6, %10 : tensor<3x16xf32>, tensor<2x4xf32>, tensor<f32>, tensor<2x8xf32>, tensor<2x2x8xf32>, tensor<2x2x8xf32>
}

// -----

// A permute copies on its own: read through even from a stored argument
// when it keeps the last dim (heads of [B, L, H, D] as [B, H, L, D]); a
// transpose of the last dim is stored.
func.func @permutes(%x: tensor<2x5x3x8xf32>, %y: tensor<4x8xf32>) -> (tensor<2x3x5x8xf32>, tensor<4xf32>) {
  %0 = kiln.permute %x [0, 2, 1, 3] : tensor<2x5x3x8xf32>
  // expected-remark @below {{2 ops in one kernel (the elementwise chain is evaluated where 'kiln.softmax' reads its input; views (reshape, permute) read through): kiln.permute, kiln.softmax}}
  %1 = kiln.softmax %0 {dim = 3 : i64} : tensor<2x3x5x8xf32>
  %2 = kiln.exp %y : tensor<4x8xf32>
  // expected-remark @below {{it does not keep the last dim, along which the kernel loads vectors}}
  %3 = kiln.permute %2 [1, 0] : tensor<4x8xf32>
  %4 = kiln.sum %3 {dims = array<i64: 0>} : tensor<8x4xf32>
  return %1, %4 : tensor<2x3x5x8xf32>, tensor<4xf32>
}

// -----

// One whose input chain fuses into its own kernel keeps it.
func.func @indexed_read_of_chain(%x: tensor<8x32xf32>, %i: tensor<3xi64>) -> tensor<3xf32> {
  %e = kiln.exp %x : tensor<8x32xf32>
  // expected-remark @below {{its input's elementwise chain fuses into its own kernel, evaluated only at the selected positions (storing the selection costs less than storing the whole chain)}}
  // expected-remark @below {{2 ops in one kernel (the elementwise chain is evaluated where 'kiln.index_select' reads its input): kiln.exp, kiln.index_select}}
  %g = kiln.index_select %e, %i {dim = 0 : i64} : tensor<8x32xf32>, tensor<3xi64>
  %m = kiln.amax %g {dims = array<i64: 1>} : tensor<3x32xf32>
  return %m : tensor<3xf32>
}

// -----

// take has no kernel anchor of its own: only a reduction's, softmax's,
// selection's or gather's chain reads it in place.
func.func @take_elementwise(%x: tensor<8xf32>, %i: tensor<3xi64>) -> tensor<3xf32> {
  // expected-remark @below {{it is an indexed read, which joins only the chain of a reduction, softmax, selection or gather; its result is stored}}
  %t = kiln.take %x, %i : tensor<8xf32>, tensor<3xi64>
  %e = kiln.exp %t : tensor<3xf32>
  // expected-remark @below {{2 ops in one kernel}}
  %n = kiln.neg %e : tensor<3xf32>
  return %n : tensor<3xf32>
}

// -----

// A recomputed value's own producers are recomputed while the whole chain
// reads at most three times the first value's size in new inputs: the last
// sum's kernel recomputes %y3 and %y2 but reads %y1 (stored by a kernel of
// its own), whose recomputation would make four new inputs of 512 bytes.
func.func @recompute_budget(%x: tensor<8x16xf32>, %a1: tensor<8x16xf32>, %a2: tensor<8x16xf32>, %a3: tensor<8x16xf32>, %a4: tensor<8x16xf32>) -> (tensor<16xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>) {
  // expected-remark @below {{read 2048 bytes of new inputs, more than the 1536 bytes allowed (3 times that value's size)}}
  %y1 = kiln.add %x, %a1 : tensor<8x16xf32>, tensor<8x16xf32>
  // expected-remark @below {{2 ops in one kernel}}
  %s1 = kiln.sum %y1 {dims = array<i64: 0>} : tensor<8x16xf32>
  %y2 = kiln.add %y1, %a2 : tensor<8x16xf32>, tensor<8x16xf32>
  // expected-remark @below {{3 ops in one kernel}}
  %s2 = kiln.sum %y2 {dims = array<i64: 0>} : tensor<8x16xf32>
  %y3 = kiln.add %y2, %a3 : tensor<8x16xf32>, tensor<8x16xf32>
  // expected-remark @below {{4 ops in one kernel}}
  %s3 = kiln.sum %y3 {dims = array<i64: 0>} : tensor<8x16xf32>
  %y4 = kiln.add %y3, %a4 : tensor<8x16xf32>, tensor<8x16xf32>
  // expected-remark @below {{4 ops in one kernel (the elementwise chain is evaluated where 'kiln.sum' reads its input): kiln.add x3, kiln.sum}}
  %s4 = kiln.sum %y4 {dims = array<i64: 0>} : tensor<8x16xf32>
  return %s1, %s2, %s3, %s4 : tensor<16xf32>, tensor<16xf32>, tensor<16xf32>, tensor<16xf32>
}
