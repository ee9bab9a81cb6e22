// The tutorial's model (docs/tutorial.md): two-class logistic regression on
// two Gaussian-like clouds, trained with cross_entropy and plain SGD, using
// only the Kiln API. With --explain it first prints what the compiler does
// with the loss's graph (Tensor::explain(); docs/remarks.md).
#include <kiln/kiln.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iostream>

int main(int argc, char **argv) {
  bool explain = argc > 1 && std::strcmp(argv[1], "--explain") == 0;
  using kiln::Tensor;
  // 64 points: class 1 around (1, 1), class 0 around (-1, -1), with a
  // deterministic pseudo-random jitter.
  const int n = 64;
  std::vector<float> points;
  std::vector<int64_t> labels;
  uint32_t state = 12345;
  auto jitter = [&state] {
    state = state * 1664525u + 1013904223u;
    return (static_cast<float>(state >> 8) / (1u << 24) - 0.5f) * 1.6f;
  };
  for (int i = 0; i < n; ++i) {
    int label = i % 2;
    float center = label ? 1.0f : -1.0f;
    points.push_back(center + jitter());
    points.push_back(center + jitter());
    labels.push_back(label);
  }
  Tensor x = Tensor::fromVector(points, {n, 2});
  Tensor y = Tensor::fromVector(labels);

  // Parameters: weights [2 features, 2 classes] and a bias.
  Tensor w = kiln::zeros({2, 2});
  Tensor b = kiln::zeros({2});
  w = w.detach();
  b = b.detach();
  const double learningRate = 0.5;
  float first = 0, last = 0;
  for (int step = 0; step < 50; ++step) {
    w.requiresGrad();
    b.requiresGrad();
    Tensor loss = kiln::cross_entropy(kiln::matmul(x, w) + b, y);
    if (explain && step == 0)
      std::cout << loss.explain();
    // backward() first: the one graph it runs computes the loss too, which
    // item() then reads (the other order runs the forward twice).
    loss.backward();
    float value = loss.item<float>();
    if (step == 0)
      first = value;
    last = value;
    if (step % 10 == 0)
      std::printf("step %2d: loss %.4f\n", step, value);
    w = (w - w.grad() * learningRate).detach();
    b = (b - b.grad() * learningRate).detach();
  }
  Tensor predicted = kiln::argmax(kiln::matmul(x, w) + b, 1);
  float accuracy = (predicted == y).to(kiln::DType::Float32).mean().item<float>();
  std::printf("final loss %.4f (%s than the first, %.4f)\n", last,
              last < first ? "lower" : "NOT lower", first);
  std::printf("accuracy %.4f\n", accuracy);
  kiln::RuntimeStats stats = kiln::runtimeStats();
  std::printf("graphs compiled %lld, reused %lld\n",
              static_cast<long long>(stats.graphsCompiled),
              static_cast<long long>(stats.graphsReused));
  return last < first && accuracy > 0.9f ? 0 : 1;
}
