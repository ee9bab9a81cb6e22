// RUN: kiln-opt %s -kiln-approximate-math | FileCheck %s

// f32 exp becomes Cephes' polynomial (Kiln's expansion) and f32 tanh MLIR's
// polynomial approximation (a few ulp), so the loops computing them
// vectorize instead of calling libm per element. (The pass runs on the
// scalar bodies of linalg ops, before vectorization.)
// CHECK-LABEL: func.func @approximated
// CHECK-NOT:     math.exp
// CHECK-NOT:     math.tanh
// CHECK:         return
func.func @approximated(%x: f32, %v: vector<8xf32>) -> (f32, vector<8xf32>) {
  %e = math.exp %x : f32
  %t = math.tanh %x : f32
  %s = arith.addf %e, %t : f32
  %tv = math.tanh %v : vector<8xf32>
  return %s, %tv : f32, vector<8xf32>
}

// f32 exp: x clamped by compares that let NaN through; n = round(x log2 e)
// and 2^n from one fused multiply-add, t = x log2 e + 1.5 * 2^23 + 127
// (0x4B40007F), clamped to n <= 127: n = t - that, 2^n the bits of t
// shifted into the exponent field. No arith.fptosi, which is poison for
// NaN (LLVM exploited it where the NaN was a constant: a sigmoid of the
// mean of no elements stored nothing). Scalar and vector alike.
// CHECK-LABEL: func.func @exp_exponent
// CHECK-NOT:     arith.fptosi
// CHECK:         %[[LO:.*]] = arith.constant -8.780000e+01 : f32
// CHECK:         arith.cmpf uge, %{{.*}}, %[[LO]] : f32
// CHECK:         %[[HI:.*]] = arith.constant 8.880000e+01 : f32
// CHECK:         arith.cmpf ule, %{{.*}}, %[[HI]] : f32
// CHECK:         %[[SHIFT:.*]] = arith.constant 0x4B40007F : f32
// CHECK:         %[[T:.*]] = math.fma %{{.*}}, %{{.*}}, %[[SHIFT]] : f32
// CHECK:         %[[MAX:.*]] = arith.constant 0x4B4000FE : f32
// CHECK:         %[[BELOW:.*]] = arith.cmpf ule, %[[T]], %[[MAX]] : f32
// CHECK:         %[[TC:.*]] = arith.select %[[BELOW]], %[[T]], %[[MAX]] : f32
// CHECK:         arith.subf %[[TC]], %{{.*}} : f32
// CHECK-COUNT-7: math.fma
// CHECK:         %[[BITS:.*]] = arith.bitcast %[[TC]] : f32 to i32
// CHECK:         %[[POW:.*]] = arith.shli %[[BITS]], %{{.*}} : i32
// CHECK:         arith.bitcast %[[POW]] : i32 to f32
// CHECK-NOT:     arith.fptosi
// CHECK:         arith.bitcast %{{.*}} : vector<8xf32> to vector<8xi32>
// CHECK-NOT:     arith.fptosi
// CHECK:         return
func.func @exp_exponent(%x: f32, %v: vector<8xf32>) -> (f32, vector<8xf32>) {
  %e = math.exp %x : f32
  %ev = math.exp %v : vector<8xf32>
  return %e, %ev : f32, vector<8xf32>
}

// f32 pow (scalar or vector) becomes 2^(y log2|x|) in f64: the operands
// extended, log2 from the exponent bits and the atanh series (one
// division), 2^t from roundeven and a Taylor series in fused multiply-adds,
// the special cases as selects, then one rounding to f32. Both series by
// Estrin's scheme: first pairs of coefficients with the variable (s^2, r),
// which are independent of each other, then with its square, ...
// CHECK-LABEL: func.func @pow_expanded
// CHECK-NOT:     arith.fptosi
// CHECK-NOT:     arith.sitofp
// CHECK-NOT:     math.powf
// CHECK:         arith.extf %{{.*}} : f32 to f64
// CHECK:         arith.bitcast %{{.*}} : f64 to i64
// CHECK:         %[[S:.*]] = arith.divf %{{.*}} : f64
// CHECK:         %[[S2:.*]] = arith.mulf %[[S]], %[[S]] : f64
// CHECK-COUNT-4: math.fma %{{.*}}, %[[S2]], %{{.*}} : f64
// CHECK:         arith.mulf %[[S2]], %[[S2]] : f64
// CHECK:         math.roundeven %{{.*}} : f64
// CHECK:         %[[R:.*]] = arith.mulf %{{.*}}, %{{.*}} : f64
// CHECK-COUNT-6: math.fma %{{.*}}, %[[R]], %{{.*}} : f64
// CHECK:         arith.mulf %[[R]], %[[R]] : f64
// CHECK:         arith.truncf %{{.*}} : f64 to f32
// CHECK-NOT:     math.powf
// CHECK:         arith.extf %{{.*}} : vector<4xf32> to vector<4xf64>
// CHECK:         arith.truncf %{{.*}} : vector<4xf64> to vector<4xf32>
// CHECK-NOT:     math.powf
// CHECK:         return
func.func @pow_expanded(%x: f32, %y: f32, %v: vector<4xf32>) -> (f32, vector<4xf32>) {
  %p = math.powf %x, %y : f32
  %pv = math.powf %v, %v : vector<4xf32>
  return %p, %pv : f32, vector<4xf32>
}

// Exponents LLVM simplifies exactly (0, 1, 2, -1, 0.5) stay powf calls:
// a constant after folding (2 - 1, as in the gradient of x^2), or a splat
// constant input of the linalg op whose body uses it. 2.5 is expanded.
// CHECK-LABEL: func.func @pow_kept
// CHECK:         math.powf %{{.*}}, %{{.*}} : f32
// CHECK:         linalg.generic
// CHECK:           math.powf %{{.*}}, %{{.*}} : f32
// CHECK:         linalg.generic
// CHECK-NOT:       math.powf
// CHECK:           arith.truncf %{{.*}} : f64 to f32
#id = affine_map<(d0) -> (d0)>
#scalar = affine_map<(d0) -> ()>
func.func @pow_kept(%x: f32, %t: tensor<8xf32>) -> (f32, tensor<8xf32>, tensor<8xf32>) {
  %two = arith.constant 2.0 : f32
  %one = arith.constant 1.0 : f32
  %e = arith.subf %two, %one : f32
  %p = math.powf %x, %e : f32
  %half = arith.constant dense<0.5> : tensor<f32>
  %g = linalg.generic {indexing_maps = [#id, #scalar, #id], iterator_types = ["parallel"]}
      ins(%t, %half : tensor<8xf32>, tensor<f32>) outs(%t : tensor<8xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %r = math.powf %a, %b : f32
    linalg.yield %r : f32
  } -> tensor<8xf32>
  %other = arith.constant dense<2.5> : tensor<f32>
  %h = linalg.generic {indexing_maps = [#id, #scalar, #id], iterator_types = ["parallel"]}
      ins(%t, %other : tensor<8xf32>, tensor<f32>) outs(%t : tensor<8xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %r = math.powf %a, %b : f32
    linalg.yield %r : f32
  } -> tensor<8xf32>
  return %p, %g, %h : f32, tensor<8xf32>, tensor<8xf32>
}

// f32 log likewise: e ln 2 + log(m) in f64 (fma), rounded once.
// CHECK-LABEL: func.func @log_expanded
// CHECK-NOT:     math.log
// CHECK:         arith.extf %{{.*}} : f32 to f64
// CHECK:         arith.divf %{{.*}} : f64
// CHECK:         math.fma %{{.*}} : f64
// CHECK:         arith.truncf %{{.*}} : f64 to f32
// CHECK-NOT:     math.log
// CHECK:         return
func.func @log_expanded(%x: f32) -> f32 {
  %l = math.log %x : f32
  return %l : f32
}

// f64 exp (scalar or vector) becomes 2^n e^r: x clamped, n = roundeven(x /
// ln 2), r by two fused steps, the Taylor series in fused multiply-adds,
// and 2^n as two powers of two built from exponent bits; NaN selected
// through. n becomes an integer without arith.fptosi (x86 has no vector
// f64 -> i64 conversion before AVX-512, and LLVM scalarized it): the bits
// of n + 1.5 * 2^52 (0x4338000000000000) less those of 1.5 * 2^52.
// CHECK-LABEL: func.func @exp_f64
// CHECK-NOT:     arith.fptosi
// CHECK:         arith.maximumf %{{.*}} : f64
// CHECK:         arith.minimumf %{{.*}} : f64
// CHECK:         math.roundeven %{{.*}} : f64
// CHECK-COUNT-2: math.fma %{{.*}} : f64
// CHECK:         %[[SHIFT:.*]] = arith.constant 0x4338000000000000 : f64
// CHECK:         %[[SHIFTED:.*]] = arith.addf %{{.*}}, %[[SHIFT]] : f64
// CHECK:         %[[BITS:.*]] = arith.bitcast %[[SHIFTED]] : f64 to i64
// CHECK:         %[[SHIFTBITS:.*]] = arith.constant 4843621399236968448 : i64
// CHECK:         arith.subi %[[BITS]], %[[SHIFTBITS]] : i64
// CHECK:         arith.shrsi
// CHECK:         arith.shli
// CHECK:         arith.bitcast %{{.*}} : i64 to f64
// CHECK:         arith.mulf
// CHECK:         arith.mulf
// CHECK:         arith.select
// CHECK-NOT:     math.exp
// CHECK-NOT:     arith.fptosi
// CHECK:         arith.bitcast %{{.*}} : vector<8xi64> to vector<8xf64>
// CHECK-NOT:     math.exp
// CHECK-NOT:     arith.fptosi
// CHECK:         return
func.func @exp_f64(%x: f64, %v: vector<8xf64>) -> (f64, vector<8xf64>) {
  %e = math.exp %x : f64
  %w = math.exp %v : vector<8xf64>
  return %e, %w : f64, vector<8xf64>
}

// f64 log is fdlibm's: subnormals scaled by 2^54, the exponent and the
// mantissa (halved from sqrt 2 up) from the bits, s = f / (2 + f), both of
// fdlibm's forms computed and one selected, then log(0) = -inf, log(inf) =
// inf and negative or NaN inputs NaN. No libm call is left. The exponent
// k becomes an f64 without arith.sitofp (scalarized before AVX-512, as
// fptosi above): the f64 of the bits of 1.5 * 2^52 plus k, less 1.5 * 2^52.
// CHECK-LABEL: func.func @log_f64
// CHECK-NOT:     arith.sitofp
// CHECK:         arith.cmpf olt
// CHECK:         arith.bitcast %{{.*}} : f64 to i64
// CHECK:         arith.xori
// CHECK:         arith.divf
// CHECK:         %[[SHIFTBITS:.*]] = arith.constant 4843621399236968448 : i64
// CHECK:         %[[SUM:.*]] = arith.addi %{{.*}}, %[[SHIFTBITS]] : i64
// CHECK:         %[[REAL:.*]] = arith.bitcast %[[SUM]] : i64 to f64
// CHECK:         %[[SHIFT:.*]] = arith.constant 0x4338000000000000 : f64
// CHECK:         arith.subf %[[REAL]], %[[SHIFT]] : f64
// CHECK:         arith.cmpi sge
// CHECK:         arith.cmpi sle
// CHECK-COUNT-4: arith.select
// CHECK-NOT:     math.log
// CHECK:         return
func.func @log_f64(%x: f64) -> f64 {
  %l = math.log %x : f64
  return %l : f64
}

// f64 tanh: the Taylor series in fused multiply-adds below 0.75, 1 - 2 /
// (e^(2|x|) + 1) above through the f64 exp expansion, x's sign copied.
// CHECK-LABEL: func.func @tanh_f64
// CHECK:         math.absf
// CHECK-COUNT-25: math.fma %{{.*}} : vector<4xf64>
// CHECK:         math.roundeven
// CHECK:         arith.divf
// CHECK:         arith.cmpf olt
// CHECK:         math.copysign
// CHECK-NOT:     math.tanh
// CHECK-NOT:     math.exp
// CHECK:         return
func.func @tanh_f64(%x: vector<4xf64>) -> vector<4xf64> {
  %t = math.tanh %x : vector<4xf64>
  return %t : vector<4xf64>
}

// f64 pow: log|x| in two parts (exponent and mantissa bits, the quotient
// s and its remainder by a fused multiply-add), y log|x| in two parts,
// clamped, e^r from n = roundeven(t / ln 2), then the special cases as
// selects. No libm call is left, scalar or vector.
// CHECK-LABEL: func.func @pow_f64
// CHECK-NOT:     math.powf
// CHECK:         arith.bitcast %{{.*}} : f64 to i64
// CHECK:         arith.divf
// CHECK:         math.fma
// CHECK:         arith.divf
// CHECK:         arith.maximumf
// CHECK:         arith.minimumf
// CHECK:         math.roundeven
// CHECK:         math.floor
// CHECK-NOT:     math.powf
// CHECK:         math.roundeven %{{.*}} : vector<8xf64>
// CHECK-NOT:     math.powf
// CHECK:         return
func.func @pow_f64(%x: f64, %y: f64, %v: vector<8xf64>) -> (f64, vector<8xf64>) {
  %p = math.powf %x, %y : f64
  %w = math.powf %v, %v : vector<8xf64>
  return %p, %w : f64, vector<8xf64>
}

// Constant exponents that LLVM makes exact cheaper code of stay powf in
// f64 too; f32 functions without an expansion keep their libm calls.
// CHECK-LABEL: func.func @kept
// CHECK:         math.powf %{{.*}} : f64
// CHECK:         math.sin %{{.*}} : f32
func.func @kept(%d: f64, %x: f32) -> (f64, f32) {
  %two = arith.constant 2.0 : f64
  %p = math.powf %d, %two : f64
  %s = math.sin %x : f32
  return %p, %s : f64, f32
}
