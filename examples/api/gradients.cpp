// Gradients people check by hand: softmax, mse, topk backward, max with
// ties, clip.
#include <kiln/kiln.h>

#include <iostream>

int main() {
  using kiln::Tensor;
  Tensor z = Tensor::fromVector(std::vector<float>{1, 2, 3});
  z.requiresGrad();
  // d softmax(z)[2] / dz
  kiln::softmax(z, 0).backward(Tensor::fromVector(std::vector<float>{0, 0, 1}));
  std::cout << "softmax grad: " << z.grad().toString() << "\n";

  Tensor p = Tensor::fromVector(std::vector<float>{1, 2, 3});
  p.requiresGrad();
  Tensor target = Tensor::fromVector(std::vector<float>{1, 1, 1});
  kiln::mse_loss(p, target).backward();
  std::cout << "mse grad: " << p.grad().toString() << "\n";

  Tensor x = Tensor::fromVector(std::vector<float>{3, 1, 4, 2});
  x.requiresGrad();
  kiln::topk(x, 2).values.backward(
      Tensor::fromVector(std::vector<float>{0.1f, 0.2f}));
  std::cout << "topk grad: " << x.grad().toString() << "\n";

  Tensor m = Tensor::fromVector(std::vector<float>{1, 2, 3, 4, 4, 0});
  m.requiresGrad();
  kiln::max(m).backward();
  std::cout << "max grad: " << m.grad().toString() << "\n";

  Tensor c = Tensor::fromVector(std::vector<float>{1, 2, 3, 4, 5, 6, 7});
  c.requiresGrad();
  c.clamp(1.5, 5.5).sum().backward();
  std::cout << "clip grad: " << c.grad().toString() << "\n";
  return 0;
}
