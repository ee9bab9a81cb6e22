// matmul with broadcast batch dims, norms and statistics.
#include <kiln/kiln.h>

#include <iostream>

int main() {
  using kiln::Tensor;
  Tensor a = kiln::arange(12, 0.0, 1.0, kiln::DType::Float32).reshape({2, 1, 2, 3});
  Tensor b = kiln::arange(6, 0.0, 1.0, kiln::DType::Float32).reshape({3, 2});
  std::cout << "matmul:\n" << kiln::matmul(a, b).toString() << "\n";

  Tensor s = Tensor::fromVector(std::vector<float>{1, 2, 2, 3, 4, 12}, {2, 3});
  std::cout << "norm: " << kiln::norm(s, 2.0, {1}).toString() << "\n";
  std::cout << "mean: " << s.mean({1}).toString() << "\n";
  std::cout << "max: " << kiln::max(s).toString() << "\n";
  std::cout << "sum: " << s.sum().toString() << "\n";
  return 0;
}
