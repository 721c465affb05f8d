// tabula side of the training benchmark: the workloads of bench/peers/torch_train.py.
//
// Prints one JSON line: {"library", "workload", "samples_per_s", "seconds", "samples",
// "peak_rss_bytes", "final_loss", "threads", "version", "train_flops_per_sample"}.
//
//   build-bench/train_bench --workload mlp_small --threads 2 [--samples N]
//   build-bench/train_bench --sgemm-peak --threads 2   (the machine's limit: one JSON line)
// (--samples N: train on the first N samples only, for a quick check of the harness.)
// (--threads: tabula::set_num_threads, the threads of tabula's CPU kernels.)

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <cblas.h>

#include "tabula/data/fashion_mnist.hpp"
#include "tabula/tabula.hpp"

namespace tb = tabula;

namespace {

std::size_t peak_rss_bytes() { return tb::process_memory().peak_rss; }

// Window i of the sine series starts at phase 0.37 * i (the same formula as the peer).
std::pair<tb::Tensor, tb::Tensor> sine_windows(std::int64_t n, std::int64_t steps) {
  std::vector<float> x(static_cast<std::size_t>(n * steps)), y(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t t = 0; t <= steps; ++t) {
      const float v = static_cast<float>(std::sin(0.3 * static_cast<double>(t) + 0.37 * static_cast<double>(i)));
      if (t < steps) x[i * steps + t] = v;
      else y[i] = v;
    }
  }
  return {tb::from_vector(x, tb::Shape{n, steps, 1}), tb::from_vector(y, tb::Shape{n, 1})};
}

// The first n rows of t (all of them for n <= 0), sharing its storage.
tb::Tensor first_rows(const tb::Tensor& t, std::int64_t n) {
  std::vector<std::int64_t> dims = t.shape().dims();
  if (n <= 0 || n >= dims[0]) return t;
  dims[0] = n;
  return tb::Tensor(t.storage(), tb::Shape(std::move(dims)), t.dtype());
}

struct Workload {
  tb::Sequential model;
  tb::Tensor x, y;
  std::string loss;
  std::int64_t batch;
  tb::Tensor test_x = {}, test_y = {};  // Fashion-MNIST's test split, for --evaluate
};

Workload make(const std::string& name) {
  using namespace tb::layers;
  if (name == "lstm") {
    auto [x, y] = sine_windows(20000, 50);
    return {tb::Sequential({Input({50, 1}), LSTM(64), Dense(1)}), x, y, "mse", 64};
  }
  auto [train, test] = tb::datasets::fashion_mnist::load_data();
  if (name == "mlp_small")
    return {tb::Sequential({Input({28, 28}), Flatten(), Dense(128, "relu"), Dense(10, "softmax")}),
            train.x, train.y, "sparse_categorical_crossentropy", 128, test.x, test.y};
  if (name == "mlp_large")
    return {tb::Sequential({Input({28, 28}), Flatten(), Dense(1024, "relu"), Dense(1024, "relu"),
                            Dense(10, "softmax")}),
            train.x, train.y, "sparse_categorical_crossentropy", 256, test.x, test.y};
  if (name == "cnn")
    return {tb::Sequential({Input({28, 28, 1}), Conv2D(32, {3, 3}, "relu"), MaxPooling2D({2, 2}),
                            Conv2D(64, {3, 3}, "relu"), MaxPooling2D({2, 2}), Flatten(),
                            Dense(128, "relu"), Dense(10, "softmax")}),
            train.x.reshape({60000, 28, 28, 1}), train.y, "sparse_categorical_crossentropy", 64,
            test.x.reshape({10000, 28, 28, 1}), test.y};
  throw tb::InvalidArgument("unknown workload '" + name + "' (mlp_small, mlp_large, cnn, lstm)");
}

// Multiply-adds of one sample's forward pass, from the layers' kernels and output shapes:
// Dense in*units, Conv2D out_h*out_w*(kh*kw*cin*filters), LSTM steps*(in+units)*4*units.
double forward_macs(const tb::Sequential& model) {
  double macs = 0;
  for (const tb::Layer& layer : model.layers()) {
    tb::LayerImpl& l = layer.impl();
    const std::string type = l.type_name();
    double kernels = 0;
    for (tb::Parameter* p : l.parameters())
      if (p->name == "kernel" || p->name == "recurrent_kernel") kernels += static_cast<double>(p->value.numel());
    if (type == "Dense") macs += kernels;
    else if (type == "Conv2D") macs += kernels * static_cast<double>(l.output_shape()[0] * l.output_shape()[1]);
    else if (type == "LSTM") macs += kernels * static_cast<double>(l.input_shape()[0]);
  }
  return macs;
}

// The best single-precision GEMM rate OpenBLAS reaches here on `threads` threads: the
// machine's practical limit for these workloads (square 2048 matrices, best of 5).
double sgemm_peak_gflops() {
  const int n = 2048;
  std::vector<float> a(static_cast<std::size_t>(n) * n, 0.5f), b(a.size(), 0.25f), c(a.size());
  double best = 0;
  for (int rep = 0; rep < 6; ++rep) {
    const auto start = std::chrono::steady_clock::now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data(), n, b.data(), n,
                0.0f, c.data(), n);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (rep > 0) best = std::max(best, 2.0 * n * n * static_cast<double>(n) / s / 1e9);  // first: warm-up
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  std::string workload;
  int threads = 2, epochs = 1;
  std::int64_t samples_limit = 0;
  bool evaluate = false;
  bool sgemm_peak = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--evaluate")) evaluate = true;
    if (!std::strcmp(argv[i], "--sgemm-peak")) sgemm_peak = true;
  }
  for (int i = 1; i + 1 < argc; ++i)
    if (!std::strcmp(argv[i], "--threads")) threads = std::stoi(argv[i + 1]);
  if (sgemm_peak) {
    openblas_set_num_threads(threads);  // OpenBLAS's own threads: the machine's limit
    // The kernels OpenBLAS picked for this CPU: on some virtual CPUs its detection falls back
    // to Prescott's SSE3 kernels (a 4-5x slower sgemm), which OPENBLAS_CORETYPE corrects.
    std::printf("{\"library\": \"tabula\", \"sgemm_gflops\": %.2f, \"threads\": %d, "
                "\"blas_core\": \"%s\", \"version\": \"%s\"}\n",
                sgemm_peak_gflops(), threads, openblas_get_corename(), TABULA_VERSION_STRING);
    return 0;
  }
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--workload")) workload = argv[i + 1];
    else if (!std::strcmp(argv[i], "--threads")) threads = std::stoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--epochs")) epochs = std::stoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--samples")) samples_limit = std::stoll(argv[i + 1]);
  }
  if (workload.empty()) {
    std::fprintf(stderr, "usage: train_bench --workload mlp_small|mlp_large|cnn|lstm "
                         "[--threads N] [--epochs N] [--samples N] [--evaluate]\n");
    return 2;
  }
  tb::set_num_threads(threads);
  try {
    tb::Session session({.name = "bench", .seed = 0});
    tb::SessionScope use(session);
    Workload w = make(workload);
    w.x = first_rows(w.x, samples_limit);
    w.y = first_rows(w.y, samples_limit);
    // --evaluate adds the accuracy metric (a little work per step): use it for accuracy runs,
    // not for throughput comparisons.
    w.model.compile(tb::optimizers::Adam(1e-3), w.loss,
                    evaluate ? std::vector<std::string>{"accuracy"} : std::vector<std::string>{});
    const auto start = std::chrono::steady_clock::now();
    tb::History h = w.model.fit(w.x, w.y, {.epochs = epochs, .batch_size = w.batch, .verbose = 0});
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double samples = static_cast<double>(w.x.shape()[0]) * epochs;
    // Outside the timed region: test accuracy after training (Fashion-MNIST workloads).
    double test_accuracy = -1.0;
    if (evaluate && w.test_x.defined())
      test_accuracy = w.model.evaluate(w.test_x, w.test_y).at("accuracy");
    std::printf("{\"library\": \"tabula\", \"workload\": \"%s\", \"samples\": %.0f, "
                "\"seconds\": %.4f, \"samples_per_s\": %.1f, \"peak_rss_bytes\": %zu, "
                "\"final_loss\": %.6f, \"threads\": %d, \"version\": \"%s\", "
                "\"train_flops_per_sample\": %.0f%s}\n",
                workload.c_str(), samples, seconds, samples / seconds, peak_rss_bytes(),
                h.history["loss"].back(), threads, TABULA_VERSION_STRING,
                // forward 2 flops per multiply-add, backward about twice the forward
                6.0 * forward_macs(w.model),
                test_accuracy < 0 ? ""
                                  : (", \"test_accuracy\": " + std::to_string(test_accuracy)).c_str());
  } catch (const tb::Error& e) {
    std::fprintf(stderr, "train_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
