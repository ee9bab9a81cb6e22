// topk and kthvalue the way PyTorch users write them: the best two scores
// of each row, the two smallest, the k-th smallest, and the labels of the
// best scores (gather by the topk indices).
#include <kiln/kiln.h>

#include <iostream>

int main() {
  using kiln::Tensor;
  Tensor scores = Tensor::fromVector(
      std::vector<float>{0.1f, 0.9f, 0.3f, 0.7f, 0.8f, 0.2f, 0.6f, 0.4f},
      {2, 4});
  auto best = kiln::topk(scores, 2);
  std::cout << "topk values: " << best.values.toString() << "\n";
  std::cout << "topk indices: " << best.indices.toString() << "\n";
  auto smallest = kiln::topk(scores, 2, /*dim=*/1, /*largest=*/false);
  std::cout << "smallest values: " << smallest.values.toString() << "\n";
  std::cout << "smallest indices: " << smallest.indices.toString() << "\n";

  Tensor x = Tensor::fromVector(std::vector<float>{3, 1, 4, 1.5f, 5});
  auto second = kiln::kthvalue(x, 2);
  std::cout << "kthvalue: " << second.values.toString() << " at "
            << second.indices.toString() << "\n";

  Tensor labels = Tensor::fromVector(std::vector<int64_t>{10, 20, 30, 40});
  Tensor perRow = labels.expand({2, 4});
  std::cout << "labels of the best: "
            << kiln::gather(perRow, 1, best.indices).toString() << "\n";
  return 0;
}
