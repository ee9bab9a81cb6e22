// Large outputs that a kernel only writes get non-temporal stores
// (kiln-streaming-stores, kiln-alignment-masks, CpuCompiler.cpp): an
// ordinary store to a line not in cache reads the line from memory first.
// RUN: split-file %s %t
// RUN: kiln-opt %t/pass.mlir --kiln-streaming-stores=min-bytes=4096 | FileCheck %t/pass.mlir
// RUN: kiln-opt %t/pass.mlir --kiln-streaming-stores | FileCheck %t/pass.mlir --check-prefix=DEFAULT
// RUN: kiln-opt %t/masks.mlir --kiln-alignment-masks | FileCheck %t/masks.mlir
// RUN: kiln-compile %t/aligned.mlir --target=cpu --emit=llvm-ir | FileCheck %t/aligned.mlir
// RUN: kiln-compile %t/unaligned.mlir --target=cpu --emit=llvm-ir | FileCheck %t/unaligned.mlir
// RUN: kiln-compile %t/small.mlir --target=cpu --emit=llvm-ir | FileCheck %t/small.mlir

//--- pass.mlir
// A flat elementwise loop writing a 64 KiB output: run in blocks of 4096
// iterations (each block starts aligned), versioned on the output's
// alignment, the aligned version assuming it.
// CHECK-LABEL: func.func private @flat(
// CHECK-SAME:    kiln.streaming_groups = array<i64: 1>
// CHECK:         %[[PTR:.*]] = memref.extract_aligned_pointer_as_index %arg1
// CHECK:         %[[LOW:.*]] = arith.andi %[[PTR]], %c63
// CHECK:         %[[OK:.*]] = arith.cmpi eq, %[[LOW]], %c0
// CHECK:         scf.if %[[OK]] {
// CHECK:           llvm.intr.assume %{{.*}} ["align"(%{{.*}}, %{{.*}} : !llvm.ptr, i64)]
// CHECK:           scf.parallel (%[[B:.*]]) = (%{{.*}}) to (%c4) step
// CHECK:             %[[BEGIN:.*]] = arith.muli %[[B]], %c4096
// CHECK:             scf.for %[[I:.*]] = %[[BEGIN]] to
// CHECK:               memref.store %{{.*}}, %arg1[%[[I]]]
// CHECK:         } else {
// CHECK-NOT:       llvm.intr.assume
// CHECK:           scf.parallel
// CHECK:             scf.for
// CHECK:               memref.store %{{.*}}, %arg1[
// CHECK:         }
// Below the default threshold (32 MiB): left alone.
// DEFAULT-LABEL: func.func private @flat(
// DEFAULT-NOT:     kiln.streaming_groups
// DEFAULT-NOT:     scf.if
func.func private @flat(%x: memref<16384xf32>, %y: memref<16384xf32>)
    attributes {kiln.buffer_groups = array<i64: 0, 1>} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %n = arith.constant 16384 : index
  scf.parallel (%i) = (%c0) to (%n) step (%c1) {
    %v = memref.load %x[%i] : memref<16384xf32>
    %w = arith.negf %v : f32
    memref.store %w, %y[%i] : memref<16384xf32>
    scf.reduce
  }
  return
}

// Rows (a loop over rows with a loop inside) keep their parallel loop; a
// write through a view counts as a write.
// CHECK-LABEL: func.func private @rows(
// CHECK-SAME:    kiln.streaming_groups = array<i64: 1>
// CHECK:         scf.if
// CHECK:           scf.parallel (%{{.*}}) = (%c0{{.*}}) to (%c64{{.*}}) step
func.func private @rows(%x: memref<64x256xf32>, %y: memref<64x256xf32>)
    attributes {kiln.buffer_groups = array<i64: 0, 1>} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %c256 = arith.constant 256 : index
  scf.parallel (%r) = (%c0) to (%c64) step (%c1) {
    %row = memref.subview %y[%r, 0] [1, 256] [1, 1]
        : memref<64x256xf32> to memref<256xf32, strided<[1], offset: ?>>
    scf.for %j = %c0 to %c256 step %c1 {
      %v = memref.load %x[%r, %j] : memref<64x256xf32>
      memref.store %v, %row[%j] : memref<256xf32, strided<[1], offset: ?>>
    }
    scf.reduce
  }
  return
}

// Not streaming: the kernel reads its output back (softmax's exps divided
// in place): a non-temporal store would send the line to memory just
// before the read.
// CHECK-LABEL: func.func private @reads_output(
// CHECK-NOT:     kiln.streaming_groups
// CHECK-NOT:     scf.if
func.func private @reads_output(%x: memref<16384xf32>, %y: memref<16384xf32>)
    attributes {kiln.buffer_groups = array<i64: 0, 1>} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %n = arith.constant 16384 : index
  scf.parallel (%i) = (%c0) to (%n) step (%c1) {
    %v = memref.load %x[%i] : memref<16384xf32>
    memref.store %v, %y[%i] : memref<16384xf32>
    %w = memref.load %y[%i] : memref<16384xf32>
    %z = arith.addf %w, %v : f32
    memref.store %z, %y[%i] : memref<16384xf32>
    scf.reduce
  }
  return
}

// Not streaming: another argument of the same buffer group (a view of the
// same allocation) is read.
// CHECK-LABEL: func.func private @group_read(
// CHECK-NOT:     kiln.streaming_groups
func.func private @group_read(%x: memref<16384xf32>, %y: memref<16384xf32>)
    attributes {kiln.buffer_groups = array<i64: 0, 0>} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %n = arith.constant 16384 : index
  scf.parallel (%i) = (%c0) to (%n) step (%c1) {
    %v = memref.load %x[%i] : memref<16384xf32>
    memref.store %v, %y[%i] : memref<16384xf32>
    scf.reduce
  }
  return
}

// Not streaming: the buffer's allocation is unknown (group -1).
// CHECK-LABEL: func.func private @unknown_group(
// CHECK-NOT:     kiln.streaming_groups
func.func private @unknown_group(%x: memref<16384xf32>, %y: memref<16384xf32>)
    attributes {kiln.buffer_groups = array<i64: 0, -1>} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %n = arith.constant 16384 : index
  scf.parallel (%i) = (%c0) to (%n) step (%c1) {
    %v = memref.load %x[%i] : memref<16384xf32>
    memref.store %v, %y[%i] : memref<16384xf32>
    scf.reduce
  }
  return
}

//--- masks.mlir
// The assumption becomes a mask of each read of the buffer's aligned
// pointer it dominates, inside the parallel region too; reads before it
// (and the other buffer's) stay as they were.
// CHECK-LABEL: llvm.func @masks(
// CHECK:         %[[D:.*]] = llvm.insertvalue %arg0, %{{.*}}[1]
// CHECK:         %[[BEFORE:.*]] = llvm.extractvalue %[[D]][1]
// CHECK-NEXT:    llvm.store %{{.*}}, %[[BEFORE]]
// CHECK-NOT:     llvm.intr.assume
// CHECK:         omp.parallel {
// CHECK:           %[[P:.*]] = llvm.extractvalue %[[D]][1]
// CHECK-NEXT:      %[[M:.*]] = llvm.mlir.constant(-64 : i64)
// CHECK-NEXT:      %[[MASKED:.*]] = llvm.intr.ptrmask %[[P]], %[[M]]
// CHECK-NEXT:      llvm.store %{{.*}}, %[[MASKED]]
llvm.func @masks(%p: !llvm.ptr, %v: f32) {
  %u = llvm.mlir.undef : !llvm.struct<(ptr, ptr, i64)>
  %a = llvm.insertvalue %p, %u[0] : !llvm.struct<(ptr, ptr, i64)>
  %d = llvm.insertvalue %p, %a[1] : !llvm.struct<(ptr, ptr, i64)>
  %before = llvm.extractvalue %d[1] : !llvm.struct<(ptr, ptr, i64)>
  llvm.store %v, %before : f32, !llvm.ptr
  %q = llvm.extractvalue %d[1] : !llvm.struct<(ptr, ptr, i64)>
  %i = llvm.ptrtoint %q : !llvm.ptr to i64
  %r = llvm.inttoptr %i : i64 to !llvm.ptr
  %c64 = llvm.mlir.constant(64 : i64) : i64
  %true = llvm.mlir.constant(true) : i1
  llvm.intr.assume %true ["align"(%r, %c64 : !llvm.ptr, i64)] : i1
  omp.parallel {
    %inside = llvm.extractvalue %d[1] : !llvm.struct<(ptr, ptr, i64)>
    llvm.store %v, %inside : f32, !llvm.ptr
    omp.terminator
  }
  llvm.return
}

//--- aligned.mlir
// 4100x2048 f32 (33.6 MB): rows start 64-byte aligned; the vector stores
// to the result become non-temporal, aligned to their size, and the
// outlined body ends with sfence.
// CHECK-LABEL: define internal void @kiln_kernel..omp_par
// CHECK:         call align 64 ptr @llvm.ptrmask.p0.i64(ptr %{{.*}}, i64 -64)
// CHECK:         call void @llvm.x86.sse.sfence()
// CHECK-NEXT:    ret void
// CHECK:         store <{{16|8}} x float> %{{.*}}, ptr %{{.*}}, align {{64|32}}, !alias.scope ![[SCOPES:[0-9]+]], !noalias !{{[0-9]+}}, !nontemporal
// The misaligned version: ordinary stores.
// CHECK-LABEL: define internal void @kiln_kernel..omp_par
// CHECK-NOT:     !nontemporal
// CHECK-NOT:     sfence
// CHECK:         ret void
// CHECK:         ![[SCOPE:[0-9]+]] = distinct !{![[SCOPE]], !{{[0-9]+}}, !"buffer{{[0-9]}}.streaming"}
func.func @aligned(%a: tensor<4100x2048xf32>, %b: tensor<2048xf32>) -> tensor<4100x2048xf32> {
  %y = kiln.add %a, %b : tensor<4100x2048xf32>, tensor<2048xf32>
  return %y : tensor<4100x2048xf32>
}

//--- unaligned.mlir
// 9000x1001 f32 (36 MB): a row of 4004 bytes starts 64-byte aligned only
// every 16 rows, which LLVM cannot prove of the vector loop: ordinary
// stores (a non-temporal store to a misaligned address faults). (Rows of
// 4000 bytes would do: every row starts 32-byte aligned, and LLVM proves
// its 256-bit stores aligned.)
// CHECK-NOT: !nontemporal
// CHECK-NOT: sfence
// CHECK: !"buffer{{[0-9]}}.streaming"
func.func @unaligned(%a: tensor<9000x1001xf32>, %b: tensor<9000x1xf32>) -> tensor<9000x1001xf32> {
  %y = kiln.mul %a, %b : tensor<9000x1001xf32>, tensor<9000x1xf32>
  return %y : tensor<9000x1001xf32>
}

//--- small.mlir
// 4 MiB: may still be in cache for whoever reads it next; not streaming.
// CHECK-NOT: !nontemporal
// CHECK-NOT: streaming
// CHECK-NOT: ptrmask
func.func @small(%a: tensor<1024x1024xf32>) -> tensor<1024x1024xf32> {
  %y = kiln.neg %a : tensor<1024x1024xf32>
  return %y : tensor<1024x1024xf32>
}
