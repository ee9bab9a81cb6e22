// RUN: kiln-opt --kiln-check-upstream-shapes --split-input-file --verify-diagnostics %s
// RUN: %expect_exit 1 kiln-opt --kiln-cpu-pipeline %s --split-input-file
// Upstream ops that address memory in ways no runtime check covers: one
// diagnostic each, exit 1 from the pipelines.

// Raw pointers: a wild address segfaulted.
func.func @llvm_pointer() -> f32 {
  // expected-error @+1 {{'llvm.mlir.constant' op is not supported by Kiln in IR files: the llvm dialect's raw pointers are outside Kiln's runtime checks}}
  %c = llvm.mlir.constant(16 : i64) : i64
  // expected-error @+1 {{'llvm.inttoptr' op is not supported by Kiln in IR files}}
  %p = llvm.inttoptr %c : i64 to !llvm.ptr
  // expected-error @+1 {{'llvm.load' op is not supported by Kiln in IR files}}
  %e = llvm.load %p : !llvm.ptr -> f32
  return %e : f32
}

// -----

// A function of the llvm dialect (what `kiln-compile --emit=mlir` prints):
// one diagnostic, on the function, none for the ops in its body.
// expected-error @+1 {{'llvm.func' op is not supported by Kiln in IR files: the llvm dialect's raw pointers are outside Kiln's runtime checks}}
llvm.func @lowered(%p: !llvm.ptr) -> f32 {
  %c = llvm.mlir.constant(4 : i64) : i64
  %q = llvm.getelementptr %p[%c] : (!llvm.ptr, i64) -> !llvm.ptr, f32
  %e = llvm.load %q : !llvm.ptr -> f32
  llvm.return %e : f32
}

// -----

// A view of 10^8 floats over 5: a segfault.
func.func @reinterpret_past_the_buffer(%m: memref<5xf32>) -> f32 {
  // expected-error @+1 {{'memref.reinterpret_cast' op is supported by Kiln only on a buffer of static shape and identity layout, with static offset, sizes and strides that stay within it}}
  %v = memref.reinterpret_cast %m to offset: [0], sizes: [100000000], strides: [1] : memref<5xf32> to memref<100000000xf32>
  %c = arith.constant 99999999 : index
  %e = memref.load %v[%c] : memref<100000000xf32>
  return %e : f32
}

// -----

// One position past the end of 6: offset 2 + (2 - 1) * 4 = 6.
func.func @reinterpret_strided_past_the_end(%m: memref<2x3xf32>) -> memref<2xf32, strided<[4], offset: 2>> {
  // expected-error @+1 {{'memref.reinterpret_cast' op is supported by Kiln only}}
  %v = memref.reinterpret_cast %m to offset: [2], sizes: [2], strides: [4] : memref<2x3xf32> to memref<2xf32, strided<[4], offset: 2>>
  return %v : memref<2xf32, strided<[4], offset: 2>>
}

// -----

func.func @reinterpret_dynamic_buffer(%m: memref<?xf32>) -> memref<2xf32> {
  // expected-error @+1 {{'memref.reinterpret_cast' op is supported by Kiln only}}
  %v = memref.reinterpret_cast %m to offset: [0], sizes: [2], strides: [1] : memref<?xf32> to memref<2xf32>
  return %v : memref<2xf32>
}

// -----

// 5 * 10^7 floats over 8 bytes: read past the buffer.
func.func @view_past_the_buffer() -> f32 {
  %buf = memref.alloc() : memref<8xi8>
  %c0 = arith.constant 0 : index
  // expected-error @+1 {{'memref.view' op is supported by Kiln only with a constant shift and a static shape that stay within its static buffer}}
  %v = memref.view %buf[%c0][] : memref<8xi8> to memref<50000000xf32>
  %c = arith.constant 49999999 : index
  %e = memref.load %v[%c] : memref<50000000xf32>
  return %e : f32
}

// -----

func.func @view_shifted_past_the_end(%i: index) -> memref<2xf32> {
  %buf = memref.alloc() : memref<8xi8>
  %c1 = arith.constant 1 : index
  // expected-error @+1 {{'memref.view' op is supported by Kiln only}}
  %v = memref.view %buf[%c1][] : memref<8xi8> to memref<2xf32>
  return %v : memref<2xf32>
}

// -----

func.func @memref_cast_to_static(%m: memref<?xf32>) -> memref<4xf32> {
  // expected-error @+1 {{'memref.cast' op to a static size of a dynamic dim is not supported by Kiln: the size is not checked at run time (cast the tensor, tensor.cast is checked)}}
  %v = memref.cast %m : memref<?xf32> to memref<4xf32>
  return %v : memref<4xf32>
}

// -----

func.func @subview_of_dynamic(%m: memref<?xf32>) -> memref<4xf32, strided<[1]>> {
  // expected-error @+1 {{'memref.subview' op of a buffer with dynamic sizes is not supported by Kiln: its bounds are not checked at run time (slice the tensor, tensor.extract_slice is checked)}}
  %v = memref.subview %m[0] [4] [1] : memref<?xf32> to memref<4xf32, strided<[1]>>
  return %v : memref<4xf32, strided<[1]>>
}

// -----

// A convolution's input dim is indexed by d0 + d1: its size is not a
// loop's.
func.func @conv_dynamic(%x: tensor<?xf32>, %w: tensor<3xf32>, %o: tensor<?xf32>) -> tensor<?xf32> {
  // expected-error @+1 {{'linalg.conv_1d' op with dynamic sizes and an indexing map that is not a permutation of loops is not supported by Kiln: its sizes are not checked at run time}}
  %r = linalg.conv_1d ins(%x, %w : tensor<?xf32>, tensor<3xf32>) outs(%o : tensor<?xf32>) -> tensor<?xf32>
  return %r : tensor<?xf32>
}

// -----

func.func @parallel_insert_into_dynamic(%x: tensor<1xf32>, %dest: tensor<?xf32>) -> tensor<?xf32> {
  %r = scf.forall (%i) in (4) shared_outs(%o = %dest) -> (tensor<?xf32>) {
    scf.forall.in_parallel {
      // expected-error @+1 {{'tensor.parallel_insert_slice' op into a destination with dynamic sizes is not supported by Kiln: its bounds are not checked at run time (an scf.forall terminator cannot be guarded)}}
      tensor.parallel_insert_slice %x into %o[3] [1] [1] : tensor<1xf32> into tensor<?xf32>
    }
  }
  return %r : tensor<?xf32>
}
