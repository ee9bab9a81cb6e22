func.func @f(%x: tensor<1x2097152xf32>) -> (tensor<1xf32>, tensor<1xi64>) {
  %v, %i = "kiln.kthvalue"(%x) {k = 1048577 : i64, dim = 1 : i64} : (tensor<1x2097152xf32>) -> (tensor<1xf32>, tensor<1xi64>)
  return %v, %i : tensor<1xf32>, tensor<1xi64>
}
