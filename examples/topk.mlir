// The top 3 scores of each row and their positions, and the softmax of the
// winners: `torch.topk(x, 3, dim=1)` then `F.softmax(values, dim=1)`.
func.func @top3(%scores: tensor<4x10xf32>) -> (tensor<4x3xf32>, tensor<4x3xi64>) {
  %values, %indices = "kiln.topk"(%scores) {k = 3 : i64, dim = 1 : i64}
      : (tensor<4x10xf32>) -> (tensor<4x3xf32>, tensor<4x3xi64>)
  %probs = kiln.softmax %values {dim = 1 : i64} : tensor<4x3xf32>
  return %probs, %indices : tensor<4x3xf32>, tensor<4x3xi64>
}
