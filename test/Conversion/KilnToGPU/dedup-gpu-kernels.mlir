// RUN: kiln-opt %s -split-input-file -verify-diagnostics -allow-unregistered-dialect --kiln-dedup-gpu-kernels | FileCheck %s

// Three launches of one kernel (its module outlined once per launch, as
// gpu-kernel-outlining does, in two host functions) and one of another:
// the launches of the first share its first module; the other module
// differs in one constant and stays. Names do not matter, the kernel's
// launch bounds do.
// CHECK-LABEL: module attributes {gpu.container_module}
// CHECK:         func.func @f
// CHECK:           gpu.launch_func @f_kernel::@f_kernel
// CHECK:           gpu.launch_func @f_kernel::@f_kernel
// CHECK:           gpu.launch_func @f_kernel_1::@f_kernel
// CHECK:           gpu.launch_func @f_kernel_2::@f_kernel
// CHECK:         func.func @g
// CHECK:           gpu.launch_func @f_kernel::@f_kernel
// CHECK:         gpu.module @f_kernel
// CHECK-NOT:     gpu.module @f_kernel_0
// CHECK:         gpu.module @f_kernel_1
// CHECK:           arith.constant 3.000000e+00
// CHECK:         gpu.module @f_kernel_2
// CHECK-NOT:     gpu.module @g_kernel
// CHECK-NOT:     gpu.module
module attributes {gpu.container_module} {
  func.func @f(%a: memref<64xf32>, %b: memref<64xf32>) {
    %c1 = arith.constant 1 : index
    %c64 = arith.constant 64 : index
    gpu.launch_func @f_kernel::@f_kernel blocks in (%c1, %c1, %c1) threads in (%c64, %c1, %c1) args(%a : memref<64xf32>)
    gpu.launch_func @f_kernel_0::@f_kernel blocks in (%c1, %c1, %c1) threads in (%c64, %c1, %c1) args(%b : memref<64xf32>)
    gpu.launch_func @f_kernel_1::@f_kernel blocks in (%c1, %c1, %c1) threads in (%c64, %c1, %c1) args(%a : memref<64xf32>)
    gpu.launch_func @f_kernel_2::@f_kernel blocks in (%c1, %c1, %c1) threads in (%c64, %c1, %c1) args(%a : memref<64xf32>)
    return
  }
  func.func @g(%a: memref<64xf32>) {
    %c1 = arith.constant 1 : index
    %c64 = arith.constant 64 : index
    gpu.launch_func @g_kernel::@g_kernel blocks in (%c1, %c1, %c1) threads in (%c64, %c1, %c1) args(%a : memref<64xf32>)
    return
  }
  gpu.module @f_kernel {
    gpu.func @f_kernel(%arg0: memref<64xf32>) kernel attributes {known_block_size = array<i32: 64, 1, 1>} {
      %x = gpu.thread_id x
      %v = memref.load %arg0[%x] : memref<64xf32>
      %two = arith.constant 2.0 : f32
      %y = arith.mulf %v, %two : f32
      memref.store %y, %arg0[%x] : memref<64xf32>
      gpu.return
    }
  }
  gpu.module @f_kernel_0 {
    gpu.func @f_kernel(%arg0: memref<64xf32>) kernel attributes {known_block_size = array<i32: 64, 1, 1>} {
      %x = gpu.thread_id x
      %v = memref.load %arg0[%x] : memref<64xf32>
      %two = arith.constant 2.0 : f32
      %y = arith.mulf %v, %two : f32
      memref.store %y, %arg0[%x] : memref<64xf32>
      gpu.return
    }
  }
  gpu.module @f_kernel_1 {
    gpu.func @f_kernel(%arg0: memref<64xf32>) kernel attributes {known_block_size = array<i32: 64, 1, 1>} {
      %x = gpu.thread_id x
      %v = memref.load %arg0[%x] : memref<64xf32>
      %three = arith.constant 3.0 : f32
      %y = arith.mulf %v, %three : f32
      memref.store %y, %arg0[%x] : memref<64xf32>
      gpu.return
    }
  }
  // The same body, other launch bounds: a kernel of its own.
  gpu.module @f_kernel_2 {
    gpu.func @f_kernel(%arg0: memref<64xf32>) kernel attributes {known_block_size = array<i32: 32, 1, 1>} {
      %x = gpu.thread_id x
      %v = memref.load %arg0[%x] : memref<64xf32>
      %two = arith.constant 2.0 : f32
      %y = arith.mulf %v, %two : f32
      memref.store %y, %arg0[%x] : memref<64xf32>
      gpu.return
    }
  }
  gpu.module @g_kernel {
    gpu.func @g_kernel(%arg0: memref<64xf32>) kernel attributes {known_block_size = array<i32: 64, 1, 1>} {
      %x = gpu.thread_id x
      %v = memref.load %arg0[%x] : memref<64xf32>
      %two = arith.constant 2.0 : f32
      %y = arith.mulf %v, %two : f32
      memref.store %y, %arg0[%x] : memref<64xf32>
      gpu.return
    }
  }
}

// -----

// A duplicate module that something other than a launch names cannot be
// erased: an error, not a dangling reference.
module attributes {gpu.container_module} {
  func.func @f(%a: memref<64xf32>) {
    %c1 = arith.constant 1 : index
    gpu.launch_func @f_kernel::@f_kernel blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1) args(%a : memref<64xf32>)
    gpu.launch_func @f_kernel_0::@f_kernel blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1) args(%a : memref<64xf32>)
    // expected-error @below {{uses GPU module "f_kernel_0", which kiln-dedup-gpu-kernels erases}}
    "test.use"() {module = @f_kernel_0} : () -> ()
    return
  }
  gpu.module @f_kernel {
    gpu.func @f_kernel(%arg0: memref<64xf32>) kernel {
      gpu.return
    }
  }
  gpu.module @f_kernel_0 {
    gpu.func @f_kernel(%arg0: memref<64xf32>) kernel {
      gpu.return
    }
  }
}
