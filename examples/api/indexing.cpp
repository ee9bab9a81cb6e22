// Indexing a [batch, elements, features] tensor: index_select, gather and
// take; where; zeros_like and ones_like.
#include <kiln/kiln.h>

#include <iostream>

int main() {
  using kiln::Tensor;
  Tensor b = kiln::arange(24, 0.0, 1.0, kiln::DType::Float32).reshape({2, 3, 4});
  Tensor rows = Tensor::fromVector(std::vector<int64_t>{2, 0});
  std::cout << "index_select:\n"
            << kiln::index_select(b, 1, rows).toString() << "\n";
  Tensor feature = Tensor::fromVector(std::vector<int64_t>{3, 0, 1, 2, 2, 0},
                                      {2, 3, 1});
  std::cout << "gather:\n" << kiln::gather(b, 2, feature).toString() << "\n";
  Tensor flat = Tensor::fromVector(std::vector<int64_t>{0, 5, -1});
  std::cout << "take: " << kiln::take(b, flat).toString() << "\n";

  Tensor x = Tensor::fromVector(
      std::vector<float>{0.1f, 0.9f, 0.3f, 0.7f, 0.8f, 0.2f, 0.6f, 0.4f},
      {2, 4});
  std::cout << "where:\n"
            << kiln::where(x > 0.5, x, kiln::zeros({})).toString() << "\n";
  std::cout << "zeros_like:\n" << kiln::zeros_like(x).toString() << "\n";
  std::cout << "ones_like: "
            << kiln::ones_like(kiln::zeros({4})).toString() << "\n";
  return 0;
}
