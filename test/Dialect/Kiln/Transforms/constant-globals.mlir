// RUN: kiln-opt %s --kiln-constant-globals --split-input-file | FileCheck %s

// Globals are created in program order (each new one goes to the front of
// the module, as One-Shot Bufferize puts them), one per distinct value and
// type; the constants stay for bufferization, which then reuses the globals.
// CHECK-LABEL: module
// CHECK:       memref.global "private" constant @__constant_2xi64_0 : memref<2xi64> = dense<[3, 4]> {alignment = 64 : i64}
// CHECK-NEXT:  memref.global "private" constant @__constant_2xf32 : memref<2xf32> = dense<2.500000e+00> {alignment = 64 : i64}
// CHECK-NEXT:  memref.global "private" constant @__constant_2xi64 : memref<2xi64> = dense<[1, 2]> {alignment = 64 : i64}
// CHECK-NOT:   memref.global
// CHECK-LABEL: func.func @first
// CHECK:         arith.constant dense<[1, 2]> : tensor<2xi64>
// CHECK-LABEL: func.func @second

// One-Shot Bufferize then uses these globals and creates none of its own.
// RUN: kiln-opt %s --kiln-constant-globals --one-shot-bufferize=bufferize-function-boundaries --split-input-file | FileCheck %s --check-prefix=BUF
// BUF-COUNT-3: memref.global
// BUF-NOT:     memref.global
// BUF-LABEL:   func.func @first
// BUF:           memref.get_global @__constant_2xi64 :
// BUF:           memref.get_global @__constant_2xf32 :
// BUF-LABEL:   func.func @second
// BUF:           memref.get_global @__constant_2xi64 :
// BUF:           memref.get_global @__constant_2xi64_0 :
func.func @first() -> (tensor<2xi64>, tensor<2xf32>) {
  %a = arith.constant dense<[1, 2]> : tensor<2xi64>
  %b = arith.constant dense<2.5> : tensor<2xf32>
  return %a, %b : tensor<2xi64>, tensor<2xf32>
}
func.func @second() -> (tensor<2xi64>, tensor<2xi64>, index) {
  %a = arith.constant dense<[1, 2]> : tensor<2xi64>
  %b = arith.constant dense<[3, 4]> : tensor<2xi64>
  // Scalars are not bufferized: no global.
  %c = arith.constant 7 : index
  return %a, %b, %c : tensor<2xi64>, tensor<2xi64>, index
}

// -----

// The alignment option is the one given to one-shot-bufferize.
// RUN: kiln-opt %s --kiln-constant-globals=alignment=16 --split-input-file | FileCheck %s --check-prefix=ALIGN
// ALIGN: memref.global "private" constant @__constant_3xf64 : memref<3xf64> = dense<[1.000000e+00, 2.000000e+00, 3.000000e+00]> {alignment = 16 : i64}
func.func @aligned() -> tensor<3xf64> {
  %a = arith.constant dense<[1.0, 2.0, 3.0]> : tensor<3xf64>
  return %a : tensor<3xf64>
}

// -----

// Splats of 4 KiB or more get no global: a fill kernel writes them (as a
// global, a 30M-float `full` took 1.9 s to compile). Smaller splats, index
// splats and non-splat values keep their globals.
// RUN: kiln-opt %s --kiln-constant-globals --split-input-file | FileCheck %s --check-prefix=FILL
// FILL-LABEL: module
// FILL:         memref.global "private" constant @__constant_2xindex
// FILL-NEXT:    memref.global "private" constant @__constant_1023xf32 : memref<1023xf32> = dense<1.500000e+00>
// FILL-NOT:     memref.global
// FILL-LABEL: func.func @splats
// FILL-DAG:     %[[EMPTY:.*]] = tensor.empty() : tensor<1024xf32>
// FILL-DAG:     %[[ONE:.*]] = arith.constant 1.500000e+00 : f32
// FILL:         %[[FILLED:.*]] = linalg.fill ins(%[[ONE]] : f32) outs(%[[EMPTY]] : tensor<1024xf32>) -> tensor<1024xf32>
// FILL-DAG:     %[[EMPTYI:.*]] = tensor.empty() : tensor<8x64xi64>
// FILL-DAG:     %[[SEVEN:.*]] = arith.constant 7 : i64
// FILL:         %[[FILLEDI:.*]] = linalg.fill ins(%[[SEVEN]] : i64) outs(%[[EMPTYI]] : tensor<8x64xi64>) -> tensor<8x64xi64>
// FILL:         return %[[FILLED]], {{.*}}, %[[FILLEDI]], {{.*}}
func.func @splats() -> (tensor<1024xf32>, tensor<1023xf32>, tensor<8x64xi64>, tensor<2xindex>) {
  %a = arith.constant dense<1.5> : tensor<1024xf32>
  %b = arith.constant dense<1.5> : tensor<1023xf32>
  %c = arith.constant dense<7> : tensor<8x64xi64>
  %d = arith.constant dense<3> : tensor<2xindex>
  return %a, %b, %c, %d : tensor<1024xf32>, tensor<1023xf32>, tensor<8x64xi64>, tensor<2xindex>
}
