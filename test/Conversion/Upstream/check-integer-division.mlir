// RUN: kiln-opt --kiln-check-integer-division --split-input-file --verify-diagnostics %s | FileCheck %s
// Integer division of IR files: a zero divisor is reported and replaced by
// one; signed INT_MIN / -1 divides by one (wraps). Divisors that are
// constants other than zero (and, signed, -1) are left alone.

// CHECK: kiln.error_sites = ["arith.divsi at {{.*}}check-integer-division.mlir:[[# @LINE + 18]]:8: integer division by zero"]
// CHECK-LABEL: func.func @signed
// CHECK-SAME: (%[[A:.*]]: i32, %[[B:.*]]: i32)
// CHECK-DAG: %[[ZERO:.*]] = arith.constant 0 : i32
// CHECK-DAG: %[[ONE:.*]] = arith.constant 1 : i32
// CHECK: %[[IS_ZERO:.*]] = arith.cmpi eq, %[[B]], %[[ZERO]] : i32
// CHECK: scf.if %[[IS_ZERO]] {
// CHECK:   kiln.report_index_error %{{.*}}, %{{.*}} {site = 0 : i64}
// CHECK: }
// CHECK: %[[NONZERO:.*]] = arith.select %[[IS_ZERO]], %[[ONE]], %[[B]] : i32
// CHECK: %[[MIN:.*]] = arith.constant -2147483648 : i32
// CHECK: %[[IS_MIN:.*]] = arith.cmpi eq, %[[A]], %[[MIN]] : i32
// CHECK: %[[M1:.*]] = arith.constant -1 : i32
// CHECK: %[[IS_M1:.*]] = arith.cmpi eq, %[[B]], %[[M1]] : i32
// CHECK: %[[OVF:.*]] = arith.andi %[[IS_MIN]], %[[IS_M1]] : i1
// CHECK: %[[SAFE:.*]] = arith.select %[[OVF]], %[[ONE]], %[[NONZERO]] : i32
// CHECK: arith.divsi %[[A]], %[[SAFE]] : i32
func.func @signed(%a: i32, %b: i32) -> i32 {
  %q = arith.divsi %a, %b : i32
  return %q : i32
}

// -----

// Unsigned: no overflow check. Constant divisors that cannot fault: none.
// CHECK-LABEL: func.func @unsigned
// CHECK: arith.cmpi eq
// CHECK: kiln.report_index_error
// CHECK: %[[SAFE:.*]] = arith.select
// CHECK-NOT: arith.select
// CHECK: arith.remui %{{.*}}, %[[SAFE]] : index
// CHECK: arith.divsi %{{.*}}, %{{.*}} : i64
// CHECK: arith.ceildivui %{{.*}}, %{{.*}} : i64
func.func @unsigned(%a: index, %b: index, %x: i64, %y: i64) -> (index, i64, i64) {
  %r = arith.remui %a, %b : index
  %c3 = arith.constant 3 : i64
  %c2 = arith.constant -2 : i64
  %q = arith.divsi %x, %c3 : i64
  %u = arith.ceildivui %y, %c2 : i64
  return %r, %q, %u : index, i64, i64
}

// -----

// A constant -1 divisor needs only the overflow check.
// CHECK-LABEL: func.func @minus_one
// CHECK-NOT: kiln.report_index_error
// CHECK: arith.andi
// CHECK: arith.floordivsi
func.func @minus_one(%a: i64) -> i64 {
  %m1 = arith.constant -1 : i64
  %q = arith.floordivsi %a, %m1 : i64
  return %q : i64
}

// -----

func.func @constant_zero(%a: i64) -> i64 {
  %c0 = arith.constant 0 : i64
  // expected-error @+1 {{'arith.remsi' op divides by zero}}
  %q = arith.remsi %a, %c0 : i64
  return %q : i64
}

// -----

func.func @vector(%a: vector<4xi64>, %b: vector<4xi64>) -> vector<4xi64> {
  // expected-error @+1 {{'arith.divui' op on 'vector<4xi64>' is not supported by Kiln: only scalars and whole tensors are checked for division by zero}}
  %q = arith.divui %a, %b : vector<4xi64>
  return %q : vector<4xi64>
}
