// tabula side of the training benchmark: the workloads of bench/peers/torch_train.py.
//
// Prints one JSON line: {"library", "workload", "samples_per_s", "seconds", "samples",
// "peak_rss_bytes", "final_loss", "threads", "version", "train_flops_per_sample", "device"},
// and "peak_device_bytes" on a GPU.
//
//   build-bench/train_bench --workload mlp_small --threads 2 [--samples N] [--device cuda]
//   build-bench/train_bench --sgemm-peak --threads 2   (the machine's limit: one JSON line)
// (--samples N: train on the first N samples only, for a quick check of the harness.)
// (--threads: tabula::set_num_threads, the threads of tabula's CPU kernels.)
// (--device cuda: train on cuda:0; the data is loaded on the host and copied to the GPU once,
// before the timed region, as the PyTorch peer does. peak_device_bytes is tabula's peak on the
// GPU over every session, the data's copy included, as torch.cuda.max_memory_allocated counts.)

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#if TABULA_BENCH_OPENBLAS
#include <cblas.h>
#endif

#include "cuda_unusable.hpp"
#include "tabula/data/fashion_mnist.hpp"
#include "tabula/tabula.hpp"
#include "workloads.hpp"

namespace tb = tabula;

namespace {

std::size_t peak_rss_bytes() { return tb::process_memory().peak_rss; }

// The first n rows of t (all of them for n <= 0), sharing its storage.
tb::Tensor first_rows(const tb::Tensor& t, std::int64_t n) {
  std::vector<std::int64_t> dims = t.shape().dims();
  if (n <= 0 || n >= dims[0]) return t;
  dims[0] = n;
  return tb::Tensor(t.storage(), tb::Shape(std::move(dims)), t.dtype());
}

struct Workload {
  tb::Tensor x, y;
  std::string loss;
  std::int64_t batch;
  tb::Tensor test_x = {}, test_y = {};  // Fashion-MNIST's test split, for --evaluate
};

// The workload's data, in the current session.
Workload make(const std::string& name) {
  if (name == "lstm") {
    auto [x, y] = tb::bench::sine_windows(20000, 50);
    return {x, y, "mse", 64};
  }
  auto [train, test] = tb::datasets::fashion_mnist::load_data();
  if (name == "mlp_small")
    return {train.x, train.y, "sparse_categorical_crossentropy", 128, test.x, test.y};
  if (name == "mlp_large")
    return {train.x, train.y, "sparse_categorical_crossentropy", 256, test.x, test.y};
  if (name == "cnn")
    return {train.x.reshape({60000, 28, 28, 1}), train.y, "sparse_categorical_crossentropy", 64,
            test.x.reshape({10000, 28, 28, 1}),  test.y};
  throw tb::InvalidArgument("unknown workload '" + name + "' (mlp_small, mlp_large, cnn, lstm)");
}

// Flops of one sample's training step as the kernels compute them: 2 per multiply-add forward,
// 2 for the weight gradient, and 2 for the input gradient except in the first layer with
// weights (nothing upstream learns, so it is skipped). Multiply-adds per layer: Dense
// in*units, Conv2D out_h*out_w*(kh*kw*cin*filters), LSTM steps*(in+units)*4*units (its
// input kernel's share is the part the first layer skips).
double train_flops(const tb::Sequential& model) {
  double flops = 0;
  bool first = true;
  for (const tb::Layer& layer : model.layers()) {
    tb::LayerImpl& l = layer.impl();
    const std::string type = l.type_name();
    double input_kernel = 0, recurrent_kernel = 0;
    for (tb::Parameter* p : l.parameters()) {
      if (p->name == "kernel") input_kernel += static_cast<double>(p->value.numel());
      if (p->name == "recurrent_kernel") recurrent_kernel += static_cast<double>(p->value.numel());
    }
    double per_kernel_use = 0;
    if (type == "Dense")
      per_kernel_use = 1;
    else if (type == "Conv2D")
      per_kernel_use = static_cast<double>(l.output_shape()[0] * l.output_shape()[1]);
    else if (type == "LSTM")
      per_kernel_use = static_cast<double>(l.input_shape()[0]);
    else
      continue;
    const double input_macs = input_kernel * per_kernel_use;
    const double macs = input_macs + recurrent_kernel * per_kernel_use;
    flops += 6.0 * macs - (first ? 2.0 * input_macs : 0.0);
    first = false;
  }
  return flops;
}

#if TABULA_BENCH_OPENBLAS
// The best single-precision GEMM rate reachable here on `threads` threads: the machine's
// practical limit for these workloads. Square 2048 matrices, best of 5 after a warm-up, each
// way a GEMM can use the cores: OpenBLAS's own threads, and one OpenBLAS thread per core each
// on its block of rows (how tabula's kernels run); the better of the two.
double sgemm_peak_gflops(int threads) {
  const int n = 2048;
  std::vector<float> a(static_cast<std::size_t>(n) * n, 0.5f), b(a.size(), 0.25f), c(a.size());
  const auto rows = [&](int first, int count) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, count, n, n, 1.0f,
                a.data() + static_cast<std::size_t>(first) * n, n, b.data(), n, 0.0f,
                c.data() + static_cast<std::size_t>(first) * n, n);
  };
  const auto best_of = [&](auto&& gemm) {
    double best = 0;
    for (int rep = 0; rep < 6; ++rep) {
      const auto start = std::chrono::steady_clock::now();
      gemm();
      const double s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (rep > 0) best = std::max(best, 2.0 * n * n * static_cast<double>(n) / s / 1e9);
    }
    return best;
  };
  openblas_set_num_threads(threads);
  const double openblas_threads = best_of([&] { rows(0, n); });
  openblas_set_num_threads(1);
  const double row_blocks = best_of([&] {
    std::vector<std::thread> workers;
    const int step = (n + threads - 1) / threads;
    for (int t = 0; t < threads; ++t)
      workers.emplace_back([&, t] { rows(t * step, std::min(n, (t + 1) * step) - t * step); });
    for (auto& w : workers) w.join();
  });
  return std::max(openblas_threads, row_blocks);
}
#endif

// Waits for the GPU's queued work: the last parameter the optimizer updated is read back,
// which waits on the thread's stream, behind every kernel of the last step.
void wait_for_training(const tb::Sequential& model) {
  const std::vector<tb::Layer> layers = model.layers();
  for (auto layer = layers.rbegin(); layer != layers.rend(); ++layer) {
    const std::vector<tb::Parameter*> parameters = layer->impl().parameters();
    if (parameters.empty()) continue;
    (void)parameters.back()->value.to_vector<float>();
    return;
  }
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
#if !TABULA_BENCH_OPENBLAS
    std::fprintf(stderr,
                 "train_bench: --sgemm-peak needs OpenBLAS, and this build has none "
                 "(configured with -DTABULA_BENCH_WITH_OPENBLAS=OFF)\n");
    return 2;
#else
    // The kernels OpenBLAS picked for this CPU: on some virtual CPUs its detection falls back
    // to Prescott's SSE3 kernels (a 4-5x slower sgemm), which OPENBLAS_CORETYPE corrects.
    std::printf(
        "{\"library\": \"tabula\", \"sgemm_gflops\": %.2f, \"threads\": %d, "
        "\"blas_core\": \"%s\", \"version\": \"%s\"}\n",
        sgemm_peak_gflops(threads), threads, openblas_get_corename(), TABULA_VERSION_STRING);
    return 0;
#endif
  }
  std::string device_name = "cpu";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--workload"))
      workload = argv[i + 1];
    else if (!std::strcmp(argv[i], "--threads"))
      threads = std::stoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--epochs"))
      epochs = std::stoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--samples"))
      samples_limit = std::stoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--device"))
      device_name = argv[i + 1];
  }
  if (workload.empty() || (device_name != "cpu" && device_name != "cuda")) {
    std::fprintf(stderr,
                 "usage: train_bench --workload mlp_small|mlp_large|cnn|lstm "
                 "[--threads N] [--epochs N] [--samples N] [--evaluate] "
                 "[--device cpu|cuda]\n");
    return 2;
  }
  const bool on_gpu = device_name == "cuda";
  if (on_gpu) {
    if (const std::string why = tb::bench::cuda_unusable(); !why.empty()) {
      std::fprintf(stderr, "train_bench: --device cuda: %s\n", why.c_str());
      return 1;
    }
  }
  tb::set_num_threads(threads);
  try {
    const tb::Device device = on_gpu ? tb::Device::cuda(0) : tb::Device::cpu();
    // On the CPU one session holds data and model, as before; on a GPU the data is read into a
    // host session and copied to the device once (the copy stays in that session).
    std::optional<tb::Session> data_session;
    if (on_gpu) data_session.emplace(tb::SessionOptions{.name = "data"});
    tb::Session session({.device = device, .name = "bench", .seed = 0});
    Workload w = [&] {
      tb::SessionScope use_data(on_gpu ? *data_session : session);
      Workload loaded = make(workload);
      loaded.x = first_rows(loaded.x, samples_limit).to(device);
      loaded.y = first_rows(loaded.y, samples_limit).to(device);
      if (evaluate && loaded.test_x.defined()) {
        loaded.test_x = loaded.test_x.to(device);
        loaded.test_y = loaded.test_y.to(device);
      }
      return loaded;
    }();
    tb::SessionScope use(session);
    tb::Sequential model = tb::bench::workload_model(workload);  // in the model's session
    // --evaluate adds the accuracy metric (a little work per step): use it for accuracy runs,
    // not for throughput comparisons.
    model.compile(tb::optimizers::Adam(1e-3), w.loss,
                  evaluate ? std::vector<std::string>{"accuracy"} : std::vector<std::string>{});
    const auto start = std::chrono::steady_clock::now();
    tb::History h = model.fit(w.x, w.y, {.epochs = epochs, .batch_size = w.batch, .verbose = 0});
    if (on_gpu) wait_for_training(model);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double samples = static_cast<double>(w.x.shape()[0]) * epochs;
    // Outside the timed region: test accuracy after training (Fashion-MNIST workloads).
    double test_accuracy = -1.0;
    if (evaluate && w.test_x.defined())
      test_accuracy = model.evaluate(w.test_x, w.test_y).at("accuracy");
    std::string extra = ", \"device\": \"" + device.str() + "\"";
    if (on_gpu) extra += ", \"peak_device_bytes\": " + std::to_string(tb::memory_info(device).peak);
    if (test_accuracy >= 0) extra += ", \"test_accuracy\": " + std::to_string(test_accuracy);
    std::printf(
        "{\"library\": \"tabula\", \"workload\": \"%s\", \"samples\": %.0f, "
        "\"seconds\": %.4f, \"samples_per_s\": %.1f, \"peak_rss_bytes\": %zu, "
        "\"final_loss\": %.6f, \"threads\": %d, \"version\": \"%s\", "
        "\"train_flops_per_sample\": %.0f%s}\n",
        workload.c_str(), samples, seconds, samples / seconds, peak_rss_bytes(),
        h.history["loss"].back(), threads, TABULA_VERSION_STRING, train_flops(model),
        extra.c_str());
  } catch (const tb::Error& e) {
    std::fprintf(stderr, "train_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
