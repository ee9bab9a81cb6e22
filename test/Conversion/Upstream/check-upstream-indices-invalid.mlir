// RUN: kiln-opt --kiln-check-upstream-indices --split-input-file --verify-diagnostics %s
// RUN: %expect_exit 1 kiln-opt --kiln-cpu-pipeline %s --split-input-file
// Upstream ops whose positions Kiln does not check, and constant indices
// out of range: one diagnostic each, exit 1 from the pipelines.

func.func @constant_out_of_range(%x: tensor<4xf32>) -> f32 {
  %c4 = arith.constant 4 : index
  // expected-error @+1 {{'tensor.extract' op index 4 is out of bounds for dim 0 of size 4}}
  %e = tensor.extract %x[%c4] : tensor<4xf32>
  return %e : f32
}

// -----

func.func @constant_negative(%x: tensor<4x3xf32>, %v: f32) -> tensor<4x3xf32> {
  %c0 = arith.constant 0 : index
  %m = arith.constant -1 : index
  // expected-error @+1 {{'tensor.insert' op index -1 is out of bounds for dim 1 of size 3}}
  %r = tensor.insert %v into %x[%c0, %m] : tensor<4x3xf32>
  return %r : tensor<4x3xf32>
}

// -----

func.func @dynamic_slice(%x: tensor<8xf32>, %o: index) -> tensor<2xf32> {
  // expected-error @+1 {{'tensor.extract_slice' op with dynamic offsets, sizes or strides is not supported by Kiln: its positions are not bounds-checked at run time}}
  %s = tensor.extract_slice %x[%o] [2] [1] : tensor<8xf32> to tensor<2xf32>
  return %s : tensor<2xf32>
}

// -----

func.func @dynamic_insert_slice(%x: tensor<8xf32>, %y: tensor<2xf32>, %o: index) -> tensor<8xf32> {
  // expected-error @+1 {{'tensor.insert_slice' op with dynamic offsets, sizes or strides is not supported by Kiln}}
  %s = tensor.insert_slice %y into %x[%o] [2] [1] : tensor<2xf32> into tensor<8xf32>
  return %s : tensor<8xf32>
}

// -----

func.func @dynamic_dim(%x: tensor<8x4xf32>, %d: index) -> index {
  // expected-error @+1 {{'tensor.dim' op of a non-constant dim is not supported by Kiln}}
  %n = tensor.dim %x, %d : tensor<8x4xf32>
  return %n : index
}

// -----

func.func @vector_read(%x: tensor<8xf32>, %i: index) -> vector<4xf32> {
  %p = arith.constant 0.0 : f32
  // expected-error @+1 {{'vector.transfer_read' op with non-constant indices is not supported by Kiln}}
  %v = vector.transfer_read %x[%i], %p {in_bounds = [true]} : tensor<8xf32>, vector<4xf32>
  return %v : vector<4xf32>
}

// -----

func.func @gather(%x: tensor<8xf32>, %i: tensor<2x1xindex>) -> tensor<2xf32> {
  // expected-error @+1 {{'tensor.gather' op is not supported by Kiln: its positions are not bounds-checked at run time}}
  %g = tensor.gather %x[%i] gather_dims([0]) unique : (tensor<8xf32>, tensor<2x1xindex>) -> tensor<2xf32>
  return %g : tensor<2xf32>
}

// -----

func.func @complex(%x: tensor<4xcomplex<f32>>, %i: index) -> complex<f32> {
  // expected-error @+1 {{'tensor.extract' op on elements of type 'complex<f32>' is not supported by Kiln}}
  %e = tensor.extract %x[%i] : tensor<4xcomplex<f32>>
  return %e : complex<f32>
}

// -----

// Sizes that must agree with other sizes at run time.
func.func @dynamic_pad(%x: tensor<4xf32>, %n: index) -> tensor<?xf32> {
  %z = arith.constant 0.0 : f32
  // expected-error @+1 {{'tensor.pad' op with dynamic padding is not supported by Kiln}}
  %p = tensor.pad %x low[%n] high[0] {
  ^bb0(%i: index):
    tensor.yield %z : f32
  } : tensor<4xf32> to tensor<?xf32>
  return %p : tensor<?xf32>
}

// -----

func.func @dynamic_expand(%x: tensor<?xf32>, %a: index) -> tensor<?x2xf32> {
  // expected-error @+1 {{'tensor.expand_shape' op with a dynamic output shape is not supported by Kiln}}
  %e = tensor.expand_shape %x [[0, 1]] output_shape [%a, 2] : tensor<?xf32> into tensor<?x2xf32>
  return %e : tensor<?x2xf32>
}

// -----

func.func @dynamic_reshape(%x: tensor<4xf32>, %s: tensor<1xindex>) -> tensor<?xf32> {
  // expected-error @+1 {{'tensor.reshape' op with a dynamic result shape is not supported by Kiln}}
  %r = tensor.reshape %x(%s) : (tensor<4xf32>, tensor<1xindex>) -> tensor<?xf32>
  return %r : tensor<?xf32>
}

// -----

func.func @constant_negative_size() -> tensor<?xf32> {
  %m = arith.constant -3 : index
  // expected-error @+1 {{'tensor.empty' op has a negative size (-3)}}
  %e = tensor.empty(%m) : tensor<?xf32>
  return %e : tensor<?xf32>
}

// -----

// Constant sizes the shape limit rejects (canonicalize does not fold this
// splat into a static type).
func.func @constant_sizes_too_large(%z: f32) -> tensor<?x?xf32> {
  %s = arith.constant 1099511627776 : index
  // expected-error @+1 {{'tensor.splat' op makes a shape that has more than 2^59 elements}}
  %e = tensor.splat %z[%s, %s] : tensor<?x?xf32>
  return %e : tensor<?x?xf32>
}

// -----

// memref.alloca takes stack: at most 1 MiB for the module's allocas in all
// (64 MiB overflowed the stack: SIGSEGV).
func.func @alloca_too_large(%i: index) -> f32 {
  // expected-error @+1 {{'memref.alloca' op takes the stack allocations of the module past Kiln's limit of 1 MiB (1048576 bytes; a thread's stack is a few MiB): use memref.alloc}}
  %m = memref.alloca() : memref<16777216xf32>
  %v = memref.load %m[%i] : memref<16777216xf32>
  return %v : f32
}

// -----

// Each fits; together they do not.
func.func @allocas_too_large_together(%i: index) -> f32 {
  %a = memref.alloca() : memref<131072xf32>
  // expected-error @+1 {{'memref.alloca' op takes the stack allocations of the module past Kiln's limit of 1 MiB}}
  %b = memref.alloca() : memref<65537xf64>
  %v = memref.load %a[%i] : memref<131072xf32>
  return %v : f32
}

// -----

// In a loop, an alloca takes more stack every iteration (scf.for's
// lowering frees nothing per iteration; 1M iterations of a 4 KiB alloca
// overflowed the stack).
func.func @alloca_in_loop(%n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  scf.for %i = %c0 to %n step %c1 {
    // expected-error @+1 {{'memref.alloca' op inside 'scf.for' is not supported by Kiln: the stack would grow with every iteration; use memref.alloc}}
    %m = memref.alloca() : memref<16xf32>
  }
  return
}

// -----

func.func @alloca_in_while(%n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %r = scf.while (%i = %c0) : (index) -> index {
    %more = arith.cmpi slt, %i, %n : index
    scf.condition(%more) %i : index
  } do {
  ^bb0(%i: index):
    // expected-error @+1 {{'memref.alloca' op inside 'scf.while' is not supported by Kiln}}
    %m = memref.alloca() : memref<16xf32>
    %next = arith.addi %i, %c1 : index
    scf.yield %next : index
  }
  return
}

// -----

func.func @alloca_of_unknown_size() {
  // expected-error @+1 {{'memref.alloca' op of elements of type 'complex<f32>' is not supported by Kiln}}
  %m = memref.alloca() : memref<4xcomplex<f32>>
  return
}

// -----

// Constant positions whose vector reaches past the buffer: 3 + 8 > 5 (it
// read past the buffer).
func.func @vector_load_past_the_end(%m: memref<5xf32>) -> vector<8xf32> {
  %c3 = arith.constant 3 : index
  // expected-error @+1 {{'vector.load' op that reaches past its buffer is not supported by Kiln: its positions are not bounds-checked at run time}}
  %v = vector.load %m[%c3] : memref<5xf32>, vector<8xf32>
  return %v : vector<8xf32>
}

// -----

func.func @vector_store_on_dynamic(%m: memref<?xf32>, %v: vector<4xf32>) {
  %c0 = arith.constant 0 : index
  // expected-error @+1 {{'vector.store' op on a dynamic size is not supported by Kiln}}
  vector.store %v, %m[%c0] : memref<?xf32>, vector<4xf32>
  return
}

// -----

// A transfer dim marked in bounds must be; one that may be out of bounds
// is masked by its lowering (below, accepted).
func.func @transfer_in_bounds_past_the_end(%t: tensor<4x5xf32>) -> vector<2x4xf32> {
  %c0 = arith.constant 0 : index
  %c3 = arith.constant 3 : index
  %pad = arith.constant 0.0 : f32
  // expected-error @+1 {{'vector.transfer_read' op that reaches past its buffer is not supported by Kiln}}
  %v = vector.transfer_read %t[%c3, %c0], %pad {in_bounds = [true, true]} : tensor<4x5xf32>, vector<2x4xf32>
  return %v : vector<2x4xf32>
}

// -----

func.func @vector_gather(%m: memref<16xf32>, %idx: vector<4xi32>, %mask: vector<4xi1>, %pass: vector<4xf32>) -> vector<4xf32> {
  %c0 = arith.constant 0 : index
  // expected-error @+1 {{'vector.gather' op is not supported by Kiln: its positions are not bounds-checked at run time}}
  %v = vector.gather %m[%c0] [%idx], %mask, %pass : memref<16xf32>, vector<4xi32>, vector<4xi1>, vector<4xf32> into vector<4xf32>
  return %v : vector<4xf32>
}
