// Input of fuse-elementwise-remarks.mlir, run with max-group-ops=2: a chain
// of four ops becomes two kernels, and the one left out says why.
func.func @long_chain(%x: tensor<16xf32>) -> tensor<16xf32> {
  %0 = kiln.neg %x : tensor<16xf32>
  // expected-remark @below {{the kernel is full (max-group-ops = 2); its result is stored and the chain goes on in another kernel}}
  // expected-remark @below {{2 ops in one kernel (one elementwise loop, no intermediate tensors): kiln.neg, kiln.exp}}
  %1 = kiln.exp %0 : tensor<16xf32>
  %2 = kiln.tanh %1 : tensor<16xf32>
  // expected-remark @below {{2 ops in one kernel (one elementwise loop, no intermediate tensors): kiln.tanh, kiln.abs}}
  %3 = kiln.abs %2 : tensor<16xf32>
  return %3 : tensor<16xf32>
}
