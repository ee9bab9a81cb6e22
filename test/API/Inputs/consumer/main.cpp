#include <kiln/kiln.h>

#include <iostream>

int main() {
  kiln::Tensor x = kiln::Tensor::fromVector(std::vector<float>{3, 1, 4, 2});
  x.requiresGrad();
  auto best = kiln::topk(x, 2);
  best.values.sum().backward();
  std::cout << best.values.toString() << " " << x.grad().toString() << "\n";
  try {
    kiln::topk(x, 5);
  } catch (const kiln::Error &error) {
    std::cout << "caught: " << error.what() << "\n";
  }
}
