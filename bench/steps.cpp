//===- steps.cpp - Per-step time of small graphs through the C++ API ------===//
//
// `kiln-bench-steps NAME ITERATIONS` builds and runs one small graph
// ITERATIONS times through the embedding API, the way a training loop or an
// inference server does (a new graph every step, the same shapes), and
// prints the best per-step time in microseconds of five rounds. bench/run.py
// runs the same steps in PyTorch eager next to it. At these sizes the time
// is the framework's own overhead (recording, compiling or finding the
// compiled graph, launching kernels), not arithmetic.
//
//===----------------------------------------------------------------------===//

#include <kiln/kiln.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

using kiln::Tensor;

namespace {

std::vector<float> pseudoRandom(size_t n, uint32_t seed) {
  std::vector<float> values(n);
  for (float &v : values) {
    seed = seed * 1664525u + 1013904223u;
    v = static_cast<float>(seed >> 8) / (1u << 24) - 0.5f;
  }
  return values;
}

/// Ten blocks of softmax(y * 1.01 + 0.5) over a rows x cols tensor, then
/// the sum as a number: 31 ops.
std::function<float()> softmaxBlocks(int64_t rows, int64_t cols) {
  Tensor x = Tensor::fromVector(pseudoRandom(rows * cols, 1), {rows, cols});
  return [x] {
    Tensor y = x;
    for (int block = 0; block < 10; ++block)
      y = kiln::softmax(y * 1.01f + 0.5f, 1);
    return y.sum().item<float>();
  };
}

/// One SGD step of a two-layer perceptron (`batch` samples, `inputs` ->
/// `hidden` -> 10, relu, cross_entropy): forward, backward, update.
std::function<float()> mlpStep(int64_t batch, int64_t inputs, int64_t hidden) {
  Tensor x =
      Tensor::fromVector(pseudoRandom(batch * inputs, 2), {batch, inputs});
  std::vector<int64_t> labels(batch);
  for (size_t i = 0; i < labels.size(); ++i)
    labels[i] = static_cast<int64_t>(i % 10);
  Tensor y = Tensor::fromVector(labels);
  auto w1 = std::make_shared<Tensor>(
      Tensor::fromVector(pseudoRandom(inputs * hidden, 3), {inputs, hidden}) *
      0.3f);
  auto b1 = std::make_shared<Tensor>(kiln::zeros({hidden}));
  auto w2 = std::make_shared<Tensor>(
      Tensor::fromVector(pseudoRandom(hidden * 10, 4), {hidden, 10}) * 0.3f);
  auto b2 = std::make_shared<Tensor>(kiln::zeros({10}));
  for (auto *p : {w1.get(), b1.get(), w2.get(), b2.get()})
    *p = p->detach();
  return [=] {
    for (auto *p : {w1.get(), b1.get(), w2.get(), b2.get()})
      p->requiresGrad();
    Tensor hidden = kiln::relu(kiln::matmul(x, *w1) + *b1);
    Tensor loss = kiln::cross_entropy(kiln::matmul(hidden, *w2) + *b2, y);
    loss.backward();
    float value = loss.item<float>();
    for (auto *p : {w1.get(), b1.get(), w2.get(), b2.get()})
      *p = (*p - p->grad() * 0.1f).detach();
    for (auto *p : {w1.get(), b1.get(), w2.get(), b2.get()})
      p->realize();
    return value;
  };
}

} // namespace

int main(int argc, char **argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: kiln-bench-steps "
                         "softmax-blocks[-256x512]|mlp-step[-256x512] "
                         "ITERATIONS\n");
    return 1;
  }
  std::function<float()> step;
  if (std::strcmp(argv[1], "softmax-blocks") == 0)
    step = softmaxBlocks(10, 100);
  else if (std::strcmp(argv[1], "softmax-blocks-256x512") == 0)
    step = softmaxBlocks(256, 512);
  else if (std::strcmp(argv[1], "mlp-step") == 0)
    step = mlpStep(64, 32, 64);
  else if (std::strcmp(argv[1], "mlp-step-256x512") == 0)
    step = mlpStep(256, 512, 512);
  else {
    std::fprintf(stderr, "kiln-bench-steps: unknown workload '%s'\n", argv[1]);
    return 1;
  }
  int iterations = std::max(1, std::atoi(argv[2]));
  float sink = step(); // compiles (or loads from the cache)
  double best = 1e300;
  for (int round = 0; round < 5; ++round) {
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < iterations; ++i)
      sink += step();
    std::chrono::duration<double, std::micro> elapsed =
        std::chrono::steady_clock::now() - start;
    best = std::min(best, elapsed.count() / iterations);
  }
  std::printf("{\"us_per_step\": %.3f, \"check\": %g}\n", best, sink);
  return 0;
}
