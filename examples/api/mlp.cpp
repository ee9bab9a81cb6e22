// A two-layer classifier built from PyTorch's building blocks that Kiln
// writes with its ops (docs/api.md): linear, layer_norm and silu, trained
// with cross_entropy and plain SGD on three clouds of points. Every step's
// loss and gradients come from one compiled graph; test/API/examples.test
// compares the printed losses and accuracy with PyTorch's for the same
// data and initial weights.
#include <kiln/kiln.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

namespace {

/// rows x columns values scale * sin(seed + 0.7 i + 1.3 j), row-major: a
/// deterministic initialization that PyTorch's side computes alike.
kiln::Tensor parameter(int64_t rows, int64_t columns, double scale,
                       double seed) {
  std::vector<float> values;
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < columns; ++j)
      values.push_back(
          static_cast<float>(scale * std::sin(seed + 0.7 * i + 1.3 * j)));
  return columns == 1 ? kiln::Tensor::fromVector(values)
                      : kiln::Tensor::fromVector(values, {rows, columns});
}

} // namespace

int main() {
  using kiln::Tensor;
  // 96 points, class k around angle 2 pi k / 3 at radius 1.5, jittered by a
  // linear congruential generator.
  const int n = 96, hidden = 16, classes = 3;
  std::vector<float> points;
  std::vector<int64_t> labels;
  uint32_t state = 2024;
  auto jitter = [&state] {
    state = state * 1664525u + 1013904223u;
    return (static_cast<double>(state >> 8) / (1u << 24) - 0.5) * 1.2;
  };
  for (int i = 0; i < n; ++i) {
    int label = i % classes;
    double angle = 2.0943951023931953 * label;
    points.push_back(static_cast<float>(1.5 * std::cos(angle) + jitter()));
    points.push_back(static_cast<float>(1.5 * std::sin(angle) + jitter()));
    labels.push_back(label);
  }
  Tensor x = Tensor::fromVector(points, {n, 2});
  Tensor y = Tensor::fromVector(labels);

  std::vector<Tensor> params{
      parameter(hidden, 2, 0.5, 0.1),       parameter(hidden, 1, 0.1, 0.2),
      parameter(hidden, 1, 0.2, 0.3) + 1.0, parameter(hidden, 1, 0.1, 0.4),
      parameter(classes, hidden, 0.3, 0.5), parameter(classes, 1, 0.1, 0.6)};
  for (Tensor &p : params)
    p = p.detach();
  auto logits = [&](const Tensor &input) {
    Tensor h = kiln::linear(input, params[0], params[1]);
    h = kiln::silu(kiln::layer_norm(h, {hidden}, params[2], params[3]));
    return kiln::linear(h, params[4], params[5]);
  };
  const double learningRate = 0.3;
  for (int step = 0; step < 30; ++step) {
    for (Tensor &p : params)
      p.requiresGrad();
    Tensor loss = kiln::cross_entropy(logits(x), y);
    loss.backward();
    if (step % 10 == 0 || step == 29)
      std::printf("step %2d: loss %.4f\n", step, loss.item<float>());
    for (Tensor &p : params)
      p = (p - p.grad() * learningRate).detach();
  }
  Tensor predicted = kiln::argmax(logits(x), 1);
  int64_t correct = kiln::sum(predicted == y).item<int64_t>();
  std::printf("accuracy: %lld/%d\n", static_cast<long long>(correct), n);
  // The three most confident points of class 0, by its logit.
  Tensor scores = kiln::narrow(logits(x), 1, 0, 1).squeeze(1);
  std::printf("most class-0 points: %s\n",
              kiln::argsort(scores, 0, /*descending=*/true)
                  .narrow(0, 0, 3)
                  .toString()
                  .c_str());
  return 0;
}
