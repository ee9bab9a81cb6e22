// RUN: kiln-opt --kiln-autodiff %s | FileCheck %s
// RUN: kiln-opt --kiln-autodiff=functions=topk %s | FileCheck %s --check-prefix=ONLY

// Each @f gains @f_vjp(args, cotangents) -> gradients with the rule of
// ops.md; the forward function is unchanged.

// ONLY-NOT: @exp_vjp
// ONLY: func.func @topk_vjp(%arg0: tensor<4xf32>, %arg1: tensor<2xf32>) -> tensor<4xf32>
// ONLY-NOT: _vjp

// CHECK-LABEL: func.func @exp_vjp(
// exp reuses the forward result: one exp in the VJP.
// CHECK: %[[Y:.*]] = kiln.exp %arg0
// CHECK-NOT: kiln.exp
// CHECK: %[[G:.*]] = kiln.mul %arg1, %[[Y]]
// CHECK: return %[[G]]
func.func @exp(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = kiln.exp %x : tensor<4xf32>
  return %y : tensor<4xf32>
}

// CHECK-LABEL: func.func @abs_vjp(
// sgn(x) = (x > 0) - (x < 0): 0 at 0 and NaN.
// CHECK: kiln.gt %arg0
// CHECK: kiln.lt %arg0
// CHECK: kiln.sub
// CHECK: kiln.mul %arg1
func.func @abs(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = kiln.abs %x : tensor<4xf32>
  return %y : tensor<4xf32>
}

// CHECK-LABEL: func.func @sqrt_vjp(
// CHECK: %[[Y:.*]] = kiln.sqrt %arg0
// CHECK: %[[D:.*]] = kiln.mul %[[Y]], %{{.*}} : tensor<4xf32>, tensor<f32>
// CHECK: kiln.div %arg1, %[[D]]
func.func @sqrt(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = kiln.sqrt %x : tensor<4xf32>
  return %y : tensor<4xf32>
}

// CHECK-LABEL: func.func @floor_vjp(
// Zero gradient: no forward op survives.
// CHECK-NOT: kiln.floor
// CHECK: %[[Z:.*]] = kiln.constant dense<0.000000e+00> : tensor<4xf32>
// CHECK-NEXT: return %[[Z]]
func.func @floor(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = kiln.floor %x : tensor<4xf32>
  return %y : tensor<4xf32>
}

// CHECK-LABEL: func.func @relu_vjp(
// CHECK: %[[Y:.*]] = kiln.relu %arg0
// PyTorch's threshold_backward: 0 where y <= 0, so NaN passes the gradient.
// CHECK: %[[M:.*]] = kiln.le %[[Y]], %[[ZERO:.*]] :
// CHECK: kiln.where %[[M]], %[[ZERO]], %arg1
func.func @relu(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = kiln.relu %x : tensor<4xf32>
  return %y : tensor<4xf32>
}

// CHECK-LABEL: func.func @add_broadcast_vjp(
// The broadcast operand gets the gradient summed over the stretched dim.
// CHECK: %[[S:.*]] = kiln.sum %arg2 {dims = array<i64: 0>, keepdim = true}
// CHECK: %[[R:.*]] = kiln.reshape %[[S]] : tensor<1x4xf32> -> tensor<4xf32>
// CHECK: return %arg2, %[[R]]
func.func @add_broadcast(%a: tensor<3x4xf32>, %b: tensor<4xf32>) -> tensor<3x4xf32> {
  %y = kiln.add %a, %b : tensor<3x4xf32>, tensor<4xf32>
  return %y : tensor<3x4xf32>
}

// CHECK-LABEL: func.func @mul_column_vjp(
// CHECK-DAG: %[[A:.*]] = kiln.mul %arg2, %arg1
// CHECK-DAG: %[[B:.*]] = kiln.mul %arg2, %arg0
// CHECK-DAG: kiln.sum %[[A]] {dims = array<i64: 1>, keepdim = true}
// CHECK-DAG: kiln.sum %[[B]] {dims = array<i64: 0>, keepdim = true}
func.func @mul_column(%a: tensor<3x1xf32>, %b: tensor<4xf32>) -> tensor<3x4xf32> {
  %y = kiln.mul %a, %b : tensor<3x1xf32>, tensor<4xf32>
  return %y : tensor<3x4xf32>
}

// CHECK-LABEL: func.func @div_vjp(
// d/db = -ct * (a/b) / b, from the forward quotient.
// CHECK: %[[Q:.*]] = kiln.div %arg0, %arg1
// CHECK: %[[GA:.*]] = kiln.div %arg2, %arg1
// CHECK: kiln.div %[[Q]], %arg1
// CHECK: kiln.neg
func.func @div(%a: tensor<4xf32>, %b: tensor<4xf32>) -> tensor<4xf32> {
  %y = kiln.div %a, %b : tensor<4xf32>, tensor<4xf32>
  return %y : tensor<4xf32>
}

// CHECK-LABEL: func.func @maximum_vjp(
// Ties split: half each where a == b.
// CHECK: %[[EQ:.*]] = kiln.eq %arg0, %arg1
// CHECK: %[[HALF:.*]] = kiln.mul %arg2
// CHECK: %[[T:.*]] = kiln.where %[[EQ]], %[[HALF]], %arg2
// CHECK-DAG: %[[LT:.*]] = kiln.lt %arg0, %arg1
// CHECK-DAG: %[[GT:.*]] = kiln.gt %arg0, %arg1
// CHECK-DAG: kiln.where %[[LT]], %{{.*}}, %[[T]]
// CHECK-DAG: kiln.where %[[GT]], %{{.*}}, %[[T]]
func.func @maximum(%a: tensor<4xf32>, %b: tensor<4xf32>) -> tensor<4xf32> {
  %y = kiln.maximum %a, %b : tensor<4xf32>, tensor<4xf32>
  return %y : tensor<4xf32>
}

// CHECK-LABEL: func.func @pow_vjp(
// d/da is masked where b == 0; d/db = y log(a), masked where a == 0 and b >= 0.
// CHECK: %[[Y:.*]] = kiln.pow %arg0, %arg1
// CHECK: kiln.eq %arg1
// CHECK: %[[L:.*]] = kiln.log %arg0
// CHECK: kiln.mul %[[Y]], %[[L]]
// CHECK: kiln.ge %arg1
// CHECK: kiln.eq %arg0
func.func @pow(%a: tensor<4xf32>, %b: tensor<4xf32>) -> tensor<4xf32> {
  %y = kiln.pow %a, %b : tensor<4xf32>, tensor<4xf32>
  return %y : tensor<4xf32>
}

// CHECK-LABEL: func.func @clamp_vjp(
// Inclusive bounds: the gradient passes where 1.5 <= x <= 5.5.
// CHECK-DAG: %[[LO:.*]] = kiln.constant dense<1.500000e+00>
// CHECK-DAG: %[[HI:.*]] = kiln.constant dense<5.500000e+00>
// CHECK: %[[LE:.*]] = kiln.le %arg0, %[[HI]]
// CHECK: %[[A:.*]] = kiln.where %[[LE]], %arg1
// CHECK: %[[GE:.*]] = kiln.ge %arg0, %[[LO]]
// CHECK: kiln.where %[[GE]], %[[A]]
func.func @clamp(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = kiln.clamp %x {min = 1.5 : f64, max = 5.5 : f64} : tensor<4xf32>
  return %y : tensor<4xf32>
}

// CHECK-LABEL: func.func @where_vjp(
// The condition gets nothing; the rank-0 branch gets its gradient summed.
// CHECK: kiln.where %arg0, %arg3, %{{.*}}
// CHECK: %[[B:.*]] = kiln.where %arg0, %{{.*}}, %arg3
// CHECK: kiln.sum %[[B]]
// CHECK: kiln.reshape %{{.*}} : tensor<1xf32> -> tensor<f32>
func.func @where(%c: tensor<4xi1>, %a: tensor<4xf32>, %b: tensor<f32>) -> tensor<4xf32> {
  %y = kiln.where %c, %a, %b : tensor<4xi1>, tensor<4xf32>, tensor<f32>
  return %y : tensor<4xf32>
}

// CHECK-LABEL: func.func @permute_vjp(
// CHECK: kiln.permute %arg1 [1, 2, 0] : tensor<4x2x3xf32>
func.func @permute(%x: tensor<2x3x4xf32>) -> tensor<4x2x3xf32> {
  %y = kiln.permute %x [2, 0, 1] : tensor<2x3x4xf32>
  return %y : tensor<4x2x3xf32>
}

// CHECK-LABEL: func.func @matmul_batch_vjp(
// dA = dC B^T; dB = A^T dC summed over the broadcast batch dim 1.
// CHECK: %[[BT:.*]] = kiln.permute %arg1 [0, 1, 3, 2]
// CHECK: %[[GA:.*]] = kiln.matmul %arg2, %[[BT]]
// CHECK: %[[AT:.*]] = kiln.permute %arg0 [0, 1, 3, 2]
// CHECK: %[[GB:.*]] = kiln.matmul %[[AT]], %arg2
// CHECK: %[[S:.*]] = kiln.sum %[[GB]] {dims = array<i64: 1>, keepdim = true} : tensor<4x3x6x2xf32>
// CHECK: return %[[GA]], %[[S]]
func.func @matmul_batch(%a: tensor<4x3x5x6xf32>, %b: tensor<4x1x6x2xf32>) -> tensor<4x3x5x2xf32> {
  %y = kiln.matmul %a, %b : tensor<4x3x5x6xf32>, tensor<4x1x6x2xf32>
  return %y : tensor<4x3x5x2xf32>
}

// CHECK-LABEL: func.func @sum_vjp(
// CHECK: %[[R:.*]] = kiln.reshape %arg1 : tensor<3xf32> -> tensor<3x1xf32>
// CHECK: kiln.expand %[[R]] : tensor<3x1xf32> -> tensor<3x4xf32>
func.func @sum(%x: tensor<3x4xf32>) -> tensor<3xf32> {
  %y = kiln.sum %x {dims = array<i64: 1>} : tensor<3x4xf32>
  return %y : tensor<3xf32>
}

// CHECK-LABEL: func.func @prod_vjp(
// Exact with zeros: product of the non-zero elements, split by zero count.
// CHECK: %[[Z:.*]] = kiln.eq %arg0
// CHECK: %[[ZF:.*]] = kiln.cast %[[Z]]
// CHECK: %[[N:.*]] = kiln.sum %[[ZF]] {dims = array<i64: 1>, keepdim = true}
// CHECK: %[[NZ:.*]] = kiln.where %[[Z]], %{{.*}}, %arg0
// CHECK: kiln.prod %[[NZ]] {dims = array<i64: 1>, keepdim = true}
// CHECK-NOT: kiln.prod
func.func @prod(%x: tensor<3x4xf32>) -> tensor<3xf32> {
  %y = kiln.prod %x {dims = array<i64: 1>} : tensor<3x4xf32>
  return %y : tensor<3xf32>
}

// CHECK-LABEL: func.func @amax_vjp(
// Ties split evenly: ct / count(x == max) at each maximum.
// CHECK: %[[M:.*]] = kiln.amax %arg0
// CHECK: %[[EQ:.*]] = kiln.eq %arg0, %[[M]]
// CHECK: %[[F:.*]] = kiln.cast %[[EQ]]
// CHECK: %[[C:.*]] = kiln.sum %[[F]] {keepdim = true}
// CHECK: %[[D:.*]] = kiln.div %arg1, %[[C]]
// CHECK: kiln.mul %[[D]], %[[F]]
func.func @amax(%x: tensor<6xf32>) -> tensor<f32> {
  %y = kiln.amax %x : tensor<6xf32>
  return %y : tensor<f32>
}

// CHECK-LABEL: func.func @norm_vjp(
// x * ct / ||x||, 0 where the norm is 0.
// CHECK: %[[N:.*]] = kiln.norm %arg0
// CHECK: %[[NK:.*]] = kiln.reshape %[[N]]
// CHECK: %[[Z:.*]] = kiln.eq %[[NK]]
// CHECK: kiln.where %[[Z]]
// CHECK: kiln.mul %arg0
func.func @norm(%x: tensor<3x4xf32>) -> tensor<3xf32> {
  %y = kiln.norm %x {dims = array<i64: 1>} : tensor<3x4xf32>
  return %y : tensor<3xf32>
}

// CHECK-LABEL: func.func @max_dim_vjp(
// CHECK: %[[V:.*]], %[[I:.*]] = kiln.max %arg0 {dim = 1 : i64}
// CHECK: %[[IK:.*]] = kiln.reshape %[[I]] : tensor<3xi64> -> tensor<3x1xi64>
// CHECK: %[[CK:.*]] = kiln.reshape %arg1 : tensor<3xf32> -> tensor<3x1xf32>
// CHECK: kiln.scatter_add %{{.*}}, %[[IK]], %[[CK]] {dim = 1 : i64}
func.func @max_dim(%x: tensor<3x4xf32>) -> (tensor<3xf32>, tensor<3xi64>) {
  %v, %i = kiln.max %x {dim = 1 : i64} : tensor<3x4xf32>
  return %v, %i : tensor<3xf32>, tensor<3xi64>
}

// CHECK-LABEL: func.func @topk_vjp(
// CHECK: %[[Z:.*]] = kiln.constant dense<0.000000e+00> : tensor<4xf32>
// CHECK: %[[V:.*]], %[[I:.*]] = kiln.topk %arg0
// CHECK: kiln.scatter_add %[[Z]], %[[I]], %arg1 {dim = 0 : i64}
func.func @topk(%x: tensor<4xf32>) -> tensor<2xf32> {
  %v, %i = kiln.topk %x {k = 2 : i64} : tensor<4xf32>
  return %v : tensor<2xf32>
}

// CHECK-LABEL: func.func @gather_vjp(
// The integer index gets no gradient.
// CHECK-SAME: -> tensor<3x5xf32>
// CHECK: kiln.scatter_add %{{.*}}, %arg1, %arg2 {dim = 1 : i64}
func.func @gather(%x: tensor<3x5xf32>, %i: tensor<3x2xi64>) -> tensor<3x2xf32> {
  %y = kiln.gather %x, %i {dim = 1 : i64} : tensor<3x5xf32>, tensor<3x2xi64>
  return %y : tensor<3x2xf32>
}

// CHECK-LABEL: func.func @index_select_vjp(
// CHECK: kiln.index_add %{{.*}}, %arg1, %arg2 {dim = 1 : i64}
func.func @index_select(%x: tensor<3x5xf32>, %i: tensor<2xi64>) -> tensor<3x2xf32> {
  %y = kiln.index_select %x, %i {dim = 1 : i64} : tensor<3x5xf32>, tensor<2xi64>
  return %y : tensor<3x2xf32>
}

// CHECK-LABEL: func.func @take_vjp(
// CHECK: kiln.put %{{.*}}, %arg1, %arg2 {accumulate = true}
func.func @take(%x: tensor<3x5xf32>, %i: tensor<4xi64>) -> tensor<4xf32> {
  %y = kiln.take %x, %i : tensor<3x5xf32>, tensor<4xi64>
  return %y : tensor<4xf32>
}

// CHECK-LABEL: func.func @softmax_vjp(
// y (ct - sum(ct y)), from the forward softmax.
// CHECK: %[[Y:.*]] = kiln.softmax %arg0
// CHECK: %[[P:.*]] = kiln.mul %arg1, %[[Y]]
// CHECK: %[[S:.*]] = kiln.sum %[[P]] {dims = array<i64: 1>, keepdim = true}
// CHECK: %[[D:.*]] = kiln.sub %arg1, %[[S]]
// CHECK: kiln.mul %[[Y]], %[[D]]
func.func @softmax(%x: tensor<3x5xf32>) -> tensor<3x5xf32> {
  %y = kiln.softmax %x {dim = 1 : i64} : tensor<3x5xf32>
  return %y : tensor<3x5xf32>
}

// CHECK-LABEL: func.func @log_softmax_vjp(
// CHECK: %[[Y:.*]] = kiln.log_softmax %arg0
// CHECK: %[[E:.*]] = kiln.exp %[[Y]]
// CHECK: %[[S:.*]] = kiln.sum %arg1 {dims = array<i64: 1>, keepdim = true}
// CHECK: %[[M:.*]] = kiln.mul %[[E]], %[[S]]
// CHECK: kiln.sub %arg1, %[[M]]
func.func @log_softmax(%x: tensor<3x5xf32>) -> tensor<3x5xf32> {
  %y = kiln.log_softmax %x {dim = 1 : i64} : tensor<3x5xf32>
  return %y : tensor<3x5xf32>
}

// CHECK-LABEL: func.func @mse_vjp(
// 2 (x - t) ct / 15 for the input, its negation for the target.
// CHECK-DAG: %[[N:.*]] = kiln.constant dense<1.500000e+01>
// CHECK: %[[D:.*]] = kiln.sub %arg0, %arg1
// CHECK: kiln.div %arg2, %[[N]]
// CHECK: %[[G:.*]] = kiln.mul %[[D]]
// CHECK: %[[NG:.*]] = kiln.neg %[[G]]
// CHECK: return %[[G]], %[[NG]]
func.func @mse(%x: tensor<3x5xf32>, %t: tensor<3x5xf32>) -> tensor<f32> {
  %y = kiln.mse_loss %x, %t : tensor<3x5xf32>, tensor<3x5xf32>
  return %y : tensor<f32>
}

// CHECK-LABEL: func.func @cross_entropy_vjp(
// (softmax - onehot(target)) ct / N, the one-hot as target == class number
// (elementwise: it fuses into the softmax's last pass).
// CHECK: %[[P:.*]] = kiln.softmax %arg0 {dim = 1 : i64}
// CHECK: %[[C:.*]] = kiln.arange {start = 0.000000e+00 : f64} : tensor<5xi64>
// CHECK: %[[T:.*]] = kiln.reshape %arg1 : tensor<3xi64> -> tensor<3x1xi64>
// CHECK: %[[E:.*]] = kiln.eq %[[T]], %[[C]] : tensor<3x1xi64>, tensor<5xi64>
// CHECK: %[[H:.*]] = kiln.cast %[[E]] : tensor<3x5xi1> to tensor<3x5xf32>
// CHECK: kiln.sub %[[P]], %[[H]]
func.func @cross_entropy(%x: tensor<3x5xf32>, %t: tensor<3xi64>) -> tensor<f32> {
  %y = kiln.cross_entropy %x, %t : tensor<3x5xf32>, tensor<3xi64>
  return %y : tensor<f32>
}

// CHECK-LABEL: func.func @reuse_vjp(
// x is used twice by the mul: the two contributions are added. The sum and
// its input are not needed by the gradient and are gone.
// CHECK-NOT: kiln.sum
// CHECK: %[[S:.*]] = kiln.mul %arg0, %arg0
// CHECK: %[[E:.*]] = kiln.exp %[[S]]
// CHECK: %[[G:.*]] = kiln.mul %{{.*}}, %arg0
// CHECK: kiln.add %[[G]], %[[G]]
func.func @reuse(%x: tensor<4xf32>) -> tensor<f32> {
  %s = kiln.mul %x, %x : tensor<4xf32>, tensor<4xf32>
  %e = kiln.exp %s : tensor<4xf32>
  %t = kiln.sum %e : tensor<4xf32>
  return %t : tensor<f32>
}

// CHECK-LABEL: func.func @unused_vjp(
// The unused float argument gets zeros; the integer one gets no gradient.
// CHECK-SAME: -> (tensor<4xf32>, tensor<2xf32>)
// CHECK: %[[Z:.*]] = kiln.constant dense<0.000000e+00> : tensor<2xf32>
// CHECK: %[[N:.*]] = kiln.neg %arg3
// CHECK: return %[[N]], %[[Z]]
func.func @unused(%x: tensor<4xf32>, %u: tensor<2xf32>, %i: tensor<2xi64>) -> tensor<4xf32> {
  %y = kiln.neg %x : tensor<4xf32>
  return %y : tensor<4xf32>
}

// CHECK-LABEL: func.func @neg_vjp(
// CHECK: %[[G:.*]] = kiln.neg %arg1
// CHECK-NEXT: return %[[G]]
func.func @neg(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = kiln.neg %x : tensor<4xf32>
  return %y : tensor<4xf32>
}

// CHECK-LABEL: func.func @rsqrt_vjp(
// -0.5 ct y^3 from the forward result.
// CHECK: %[[Y:.*]] = kiln.rsqrt %arg0
// CHECK: %[[Y2:.*]] = kiln.mul %[[Y]], %[[Y]]
// CHECK: kiln.mul %[[Y2]], %[[Y]]
func.func @rsqrt(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = kiln.rsqrt %x : tensor<4xf32>
  return %y : tensor<4xf32>
}

// CHECK-LABEL: func.func @log_vjp(
// CHECK: kiln.div %arg1, %arg0
func.func @log(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = kiln.log %x : tensor<4xf32>
  return %y : tensor<4xf32>
}

// CHECK-LABEL: func.func @sigmoid_vjp(
// ct y (1 - y) from the forward result.
// CHECK: %[[Y:.*]] = kiln.sigmoid %arg0
// CHECK: %[[ONEMINUS:.*]] = kiln.sub %{{.*}}, %[[Y]]
// CHECK: kiln.mul %[[Y]], %[[ONEMINUS]]
func.func @sigmoid(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = kiln.sigmoid %x : tensor<4xf32>
  return %y : tensor<4xf32>
}

// CHECK-LABEL: func.func @tanh_vjp(
// CHECK: %[[Y:.*]] = kiln.tanh %arg0
// CHECK: %[[Y2:.*]] = kiln.mul %[[Y]], %[[Y]]
// CHECK: kiln.sub %{{.*}}, %[[Y2]]
func.func @tanh(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = kiln.tanh %x : tensor<4xf32>
  return %y : tensor<4xf32>
}

// d erf = 2 / sqrt(pi) exp(-x^2) (PyTorch's rule).
// CHECK-LABEL: func.func @erf_vjp(
// CHECK: %[[C:.*]] = kiln.constant dense<1.12837923> : tensor<f32>
// CHECK: %[[SQ:.*]] = kiln.mul %arg0, %arg0
// CHECK: %[[NEG:.*]] = kiln.neg %[[SQ]]
// CHECK: %[[DENSITY:.*]] = kiln.exp %[[NEG]]
// CHECK: %[[SLOPE:.*]] = kiln.mul %[[DENSITY]], %[[C]]
// CHECK: kiln.mul %[[SLOPE]], %arg1
func.func @erf(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = kiln.erf %x : tensor<4xf32>
  return %y : tensor<4xf32>
}

// CHECK-LABEL: func.func @frac_vjp(
// Slope 1: the cotangent itself.
// CHECK-NEXT: return %arg1
func.func @frac(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = kiln.frac %x : tensor<4xf32>
  return %y : tensor<4xf32>
}

// CHECK-LABEL: func.func @round_vjp(
// CHECK-NOT: kiln.round
// CHECK: %[[Z:.*]] = kiln.constant dense<0.000000e+00> : tensor<4xf32>
// CHECK-NEXT: return %[[Z]]
func.func @round(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = kiln.round %x : tensor<4xf32>
  return %y : tensor<4xf32>
}

// CHECK-LABEL: func.func @sub_vjp(
// CHECK: %[[N:.*]] = kiln.neg %arg2
// CHECK-NEXT: return %arg2, %[[N]]
func.func @sub(%a: tensor<4xf32>, %b: tensor<4xf32>) -> tensor<4xf32> {
  %y = kiln.sub %a, %b : tensor<4xf32>, tensor<4xf32>
  return %y : tensor<4xf32>
}

// CHECK-LABEL: func.func @minimum_vjp(
// CHECK: %[[EQ:.*]] = kiln.eq %arg0, %arg1
// CHECK-DAG: %[[GT:.*]] = kiln.gt %arg0, %arg1
// CHECK-DAG: %[[LT:.*]] = kiln.lt %arg0, %arg1
// CHECK-DAG: kiln.where %[[GT]]
// CHECK-DAG: kiln.where %[[LT]]
func.func @minimum(%a: tensor<4xf32>, %b: tensor<4xf32>) -> tensor<4xf32> {
  %y = kiln.minimum %a, %b : tensor<4xf32>, tensor<4xf32>
  return %y : tensor<4xf32>
}

// CHECK-LABEL: func.func @cast_vjp(
// CHECK: kiln.cast %arg1 : tensor<4xf64> to tensor<4xf32>
func.func @cast(%x: tensor<4xf32>) -> tensor<4xf64> {
  %y = kiln.cast %x : tensor<4xf32> to tensor<4xf64>
  return %y : tensor<4xf64>
}

// CHECK-LABEL: func.func @reshape_vjp(
// CHECK: kiln.reshape %arg1 : tensor<3x4xf32> -> tensor<2x6xf32>
func.func @reshape(%x: tensor<2x6xf32>) -> tensor<3x4xf32> {
  %y = kiln.reshape %x : tensor<2x6xf32> -> tensor<3x4xf32>
  return %y : tensor<3x4xf32>
}

// CHECK-LABEL: func.func @expand_vjp(
// CHECK: %[[S:.*]] = kiln.sum %arg1 {dims = array<i64: 0, 2>, keepdim = true}
// CHECK: kiln.reshape %[[S]] : tensor<1x3x1xf32> -> tensor<3x1xf32>
func.func @expand(%x: tensor<3x1xf32>) -> tensor<2x3x4xf32> {
  %y = kiln.expand %x : tensor<3x1xf32> -> tensor<2x3x4xf32>
  return %y : tensor<2x3x4xf32>
}

// CHECK-LABEL: func.func @mean_vjp(
// CHECK-DAG: %[[N:.*]] = kiln.constant dense<4.000000e+00> : tensor<f32>
// CHECK: %[[K:.*]] = kiln.reshape %arg1 : tensor<3xf32> -> tensor<3x1xf32>
// CHECK: %[[D:.*]] = kiln.div %[[K]], %[[N]]
// CHECK: kiln.expand %[[D]] : tensor<3x1xf32> -> tensor<3x4xf32>
func.func @mean(%x: tensor<3x4xf32>) -> tensor<3xf32> {
  %y = kiln.mean %x {dims = array<i64: 1>} : tensor<3x4xf32>
  return %y : tensor<3xf32>
}

// CHECK-LABEL: func.func @amin_vjp(
// CHECK: %[[M:.*]] = kiln.amin %arg0
// CHECK: %[[MK:.*]] = kiln.reshape %[[M]]
// CHECK: kiln.eq %arg0, %[[MK]]
func.func @amin(%x: tensor<3x4xf32>) -> tensor<3xf32> {
  %y = kiln.amin %x {dims = array<i64: 1>} : tensor<3x4xf32>
  return %y : tensor<3xf32>
}

// CHECK-LABEL: func.func @min_keepdim_vjp(
// keepdim: the indices already have the kept shape.
// CHECK: %[[V:.*]], %[[I:.*]] = kiln.min %arg0 {dim = 0 : i64, keepdim = true}
// CHECK: kiln.scatter_add %{{.*}}, %[[I]], %arg1 {dim = 0 : i64}
func.func @min_keepdim(%x: tensor<3x4xf32>) -> tensor<1x4xf32> {
  %v, %i = kiln.min %x {dim = 0 : i64, keepdim = true} : tensor<3x4xf32>
  return %v : tensor<1x4xf32>
}

// CHECK-LABEL: func.func @kthvalue_vjp(
// CHECK: %[[V:.*]], %[[I:.*]] = kiln.kthvalue %arg0
// CHECK: %[[IK:.*]] = kiln.reshape %[[I]] : tensor<3xi64> -> tensor<3x1xi64>
// CHECK: kiln.scatter_add %{{.*}}, %[[IK]], %{{.*}} {dim = 1 : i64}
func.func @kthvalue(%x: tensor<3x4xf32>) -> tensor<3xf32> {
  %v, %i = kiln.kthvalue %x {k = 2 : i64} : tensor<3x4xf32>
  return %v : tensor<3xf32>
}

// CHECK-LABEL: func.func @scatter_add_vjp(
// base: the cotangent; src: gathered at the indices.
// CHECK: %[[G:.*]] = kiln.gather %arg3, %arg1 {dim = 0 : i64}
// CHECK: return %arg3, %[[G]]
func.func @scatter_add(%b: tensor<3x4xf32>, %i: tensor<2x3xi64>, %s: tensor<2x3xf32>) -> tensor<3x4xf32> {
  %y = kiln.scatter_add %b, %i, %s {dim = 0 : i64} : tensor<3x4xf32>, tensor<2x3xi64>, tensor<2x3xf32>
  return %y : tensor<3x4xf32>
}

// CHECK-LABEL: func.func @scatter_add_wide_src_vjp(
// src wider than the index: its elements past the index get 0 (the
// gathered block is scattered into zeros at its own positions).
// CHECK: %[[G:.*]] = kiln.gather %arg3, %arg1
// CHECK: %[[R:.*]] = kiln.arange
// CHECK: %[[P:.*]] = kiln.expand %{{.*}} : tensor<2x1xi64> -> tensor<2x3xi64>
// CHECK: kiln.scatter_add %{{.*}}, %[[P]], %[[G]] {dim = 0 : i64} : tensor<2x4xf32>
func.func @scatter_add_wide_src(%b: tensor<3x4xf32>, %i: tensor<2x3xi64>, %s: tensor<2x4xf32>) -> tensor<3x4xf32> {
  %y = kiln.scatter_add %b, %i, %s {dim = 0 : i64} : tensor<3x4xf32>, tensor<2x3xi64>, tensor<2x4xf32>
  return %y : tensor<3x4xf32>
}

// CHECK-LABEL: func.func @index_add_vjp(
// CHECK: %[[S:.*]] = kiln.index_select %arg3, %arg1 {dim = 1 : i64}
// CHECK: return %arg3, %[[S]]
func.func @index_add(%b: tensor<3x4xf32>, %i: tensor<3xi64>, %s: tensor<3x3xf32>) -> tensor<3x4xf32> {
  %y = kiln.index_add %b, %i, %s {dim = 1 : i64} : tensor<3x4xf32>, tensor<3xi64>, tensor<3x3xf32>
  return %y : tensor<3x4xf32>
}

// CHECK-LABEL: func.func @put_vjp(
// Without accumulate the overwritten positions of base get 0.
// CHECK: %[[B:.*]] = kiln.put %arg3, %arg1, %{{.*}} :
// CHECK: %[[S:.*]] = kiln.take %arg3, %arg1
// CHECK: return %[[B]], %[[S]]
func.func @put(%b: tensor<2x3xf32>, %i: tensor<3xi64>, %s: tensor<3xf32>) -> tensor<2x3xf32> {
  %y = kiln.put %b, %i, %s : tensor<2x3xf32>, tensor<3xi64>, tensor<3xf32>
  return %y : tensor<2x3xf32>
}

// CHECK-LABEL: func.func @matmul_vector_vjp(
// A 1-D lhs is promoted to [1, k] and its gradient reshaped back.
// CHECK: %[[A:.*]] = kiln.reshape %arg0 : tensor<4xf32> -> tensor<1x4xf32>
// CHECK: %[[C:.*]] = kiln.reshape %arg2 : tensor<5xf32> -> tensor<1x5xf32>
// CHECK: %[[GA:.*]] = kiln.matmul %[[C]], %{{.*}} : tensor<1x5xf32>, tensor<5x4xf32>
// CHECK: %[[R:.*]] = kiln.reshape %[[GA]] : tensor<1x4xf32> -> tensor<4xf32>
func.func @matmul_vector(%a: tensor<4xf32>, %b: tensor<4x5xf32>) -> tensor<5xf32> {
  %y = kiln.matmul %a, %b : tensor<4xf32>, tensor<4x5xf32>
  return %y : tensor<5xf32>
}
