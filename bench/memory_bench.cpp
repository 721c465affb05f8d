// Memory given back (issue 6, tabula's side): RSS before, at peak and after clearing a trained
// model, and RSS over 100 build / fit 20 batches / clear cycles with widths varying per cycle.
//
//   build-bench/memory_bench [--cycles 100] [--threads 2] [--device cpu|cuda]
// Prints JSON lines: {"library": "tabula", "test": "clear", ...} and {"test": "cycles", ...}.
//
//   build-bench/memory_bench --test predict [--workload cnn|lstm] [--threads 2]
// Inference memory, in a process of its own (CPU): the training benchmark's workload (cnn by
// default), untrained, predicts in batches of 1,000 (cnn: the 10,000 Fashion-MNIST test images;
// lstm: its 20,000 sine windows of 50 steps), after a warm-up of 10 samples in a session of its
// own; prints {"test": "predict", "workload", "rss_before", "rss_peak", "rss_after",
// "peak_increase" (VmHWM, reset just before, minus rss_before), "accounted_peak" (the session's
// own peak, weights included), "rss_released" (after release_cached_memory(): the session's
// pool keeps the batch buffers' segments for its next call until then), "seconds"}.
//
// --device cuda (issue 7): the same runs on cuda:0, the figures being the driver's used bytes
// (total - free, cudaMemGetInfo; every process on the GPU) in place of RSS: used_before,
// used_peak, used_after, retained; used_first, used_last, growth, slope. The data is copied to
// the GPU once, and a warm-up (a small fit and clear) first loads what stays for the process
// (CUDA context, cuBLAS, the kernels' modules), so "before" is the warm figure and retained is
// what the clearing idiom fails to give back beyond the context. used_context is the first
// reading, just after the context was made.

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "cuda_unusable.hpp"
#include "tabula/data/fashion_mnist.hpp"
#include "tabula/tabula.hpp"
#include "workloads.hpp"

namespace tb = tabula;

namespace {

std::size_t rss_bytes() { return tb::process_memory().rss; }

// Bytes of `device` in use now: the process's RSS on the CPU, the driver's total - free on a
// GPU.
std::size_t used_bytes(tb::Device device) {
  if (device.is_cpu()) return rss_bytes();
  const tb::DeviceMemory m = tb::device_memory(device);
  return m.total - m.free;
}

tb::Sequential mlp(std::int64_t width) {
  using namespace tb::layers;
  return tb::Sequential(
      {Input({784}), Dense(width, "relu"), Dense(width, "relu"), Dense(10, "softmax")});
}

// Makes the kernel's high-water mark (VmHWM) the current RSS, so that the next peak read is of
// what follows (Linux: "5" to /proc/self/clear_refs).
void reset_peak_rss() {
  std::FILE* f = std::fopen("/proc/self/clear_refs", "w");
  if (f == nullptr || std::fputs("5", f) < 0 || std::fclose(f) != 0)
    throw tb::Error("memory_bench: cannot reset the peak RSS through /proc/self/clear_refs");
}

constexpr std::int64_t kPredictBatch = 1000;

// The inputs the predict test's `workload` predicts (see the top of this file).
tb::Tensor predict_inputs(const std::string& workload) {
  if (workload == "lstm") return tb::bench::sine_windows(20000, 50).first;
  auto [train, test] = tb::datasets::fashion_mnist::load_data();
  return test.x.reshape({10000, 28, 28, 1});
}

// The predict test (see the top of this file).
void predict_test(const std::string& workload, int threads) {
  tb::set_num_threads(threads);
  tb::Session data_session({.name = "data"});
  tb::Tensor x;
  {
    tb::SessionScope use(data_session);
    x = predict_inputs(workload);
  }
  {
    tb::Session warm({.name = "warm-up"});
    tb::SessionScope use(warm);
    std::vector<std::int64_t> first_ten = x.shape().dims();
    first_ten[0] = 10;
    (void)tb::bench::workload_model(workload).predict(
        tb::Tensor(x.storage(), tb::Shape(std::move(first_ten)), x.dtype()), {.batch_size = 10});
  }
  tb::Session session({.name = "trial"});
  tb::SessionScope use(session);
  tb::Sequential model = tb::bench::workload_model(workload);
  const std::size_t before = rss_bytes();
  reset_peak_rss();
  const auto t0 = std::chrono::steady_clock::now();
  const tb::Tensor p = model.predict(x, {.batch_size = kPredictBatch});
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const tb::ProcessMemory after = tb::process_memory();
  const std::size_t accounted_peak = session.memory_info().peak;
  session.release_cached_memory();
  const std::size_t released = rss_bytes();
  std::printf(
      "{\"library\": \"tabula\", \"threads\": %d, \"version\": \"%s\", \"device\": \"cpu\", "
      "\"test\": \"predict\", \"workload\": \"%s\", \"batch\": %lld, \"samples\": %lld, "
      "\"rss_before\": %zu, "
      "\"rss_peak\": %zu, \"rss_after\": %zu, \"peak_increase\": %lld, "
      "\"accounted_peak\": %zu, \"rss_released\": %zu, \"seconds\": %.3f}\n",
      threads, TABULA_VERSION_STRING, workload.c_str(), static_cast<long long>(kPredictBatch),
      static_cast<long long>(p.shape()[0]), before, after.peak_rss, after.rss,
      static_cast<long long>(after.peak_rss) - static_cast<long long>(before), accounted_peak,
      released, seconds);
}

}  // namespace

int main(int argc, char** argv) {
  int cycles = 100, threads = 2;
  std::string device_name = "cpu", test = "clear", workload = "cnn";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--cycles"))
      cycles = std::stoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--threads"))
      threads = std::stoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--device"))
      device_name = argv[i + 1];
    else if (!std::strcmp(argv[i], "--test"))
      test = argv[i + 1];
    else if (!std::strcmp(argv[i], "--workload"))
      workload = argv[i + 1];
  }
  if (cycles < 1 || (device_name != "cpu" && device_name != "cuda") ||
      (test != "clear" && test != "predict") || (test == "predict" && device_name != "cpu") ||
      (workload != "cnn" && workload != "lstm")) {
    std::fprintf(stderr,
                 "usage: memory_bench [--cycles N >= 1] [--threads N] [--device cpu|cuda]\n"
                 "       memory_bench --test predict [--workload cnn|lstm] [--threads N]"
                 "   (the CPU)\n");
    return 2;
  }
  if (test == "predict") {
    try {
      predict_test(workload, threads);
    } catch (const tb::Error& e) {
      std::fprintf(stderr, "memory_bench: %s\n", e.what());
      return 1;
    }
    return 0;
  }
  const bool on_gpu = device_name == "cuda";
  if (on_gpu) {
    if (const std::string why = tb::bench::cuda_unusable(); !why.empty()) {
      std::fprintf(stderr, "memory_bench: --device cuda: %s\n", why.c_str());
      return 1;
    }
  }
  // The names of the figures: RSS on the CPU, the driver's used bytes on a GPU.
  const char* figure = on_gpu ? "used" : "rss";
  try {
    const tb::Device device = on_gpu ? tb::Device::cuda(0) : tb::Device::cpu();
    const std::size_t context = on_gpu ? used_bytes(device) : 0;
    tb::set_num_threads(threads);
    // The data lives in its own session for the whole run, as a user's dataset would.
    tb::Session data_session({.name = "data"});
    tb::Tensor x, y;
    {
      tb::SessionScope use(data_session);
      auto [train, test] = tb::datasets::fashion_mnist::load_data();
      x = train.x.reshape({60000, 784}).to(device);
      y = train.y.to(device);
    }
    tb::Tensor x20 = tb::Tensor(x.storage(), tb::Shape{20 * 128, 784}, x.dtype());
    tb::Tensor y20 = tb::Tensor(y.storage(), tb::Shape{20 * 128}, y.dtype());
    if (on_gpu) {
      tb::Session warm({.device = device, .name = "warm-up"});
      tb::SessionScope use(warm);
      tb::Sequential model = mlp(64);
      model.compile(tb::optimizers::Adam(1e-3), "sparse_categorical_crossentropy");
      model.fit(x20, y20, {.epochs = 1, .batch_size = 128, .verbose = 0});
      tb::clear_session();
    }
    const std::string common = "\"library\": \"tabula\", \"threads\": " + std::to_string(threads) +
                               ", \"version\": \"" + TABULA_VERSION_STRING + "\", \"device\": \"" +
                               device.str() + "\"" +
                               (on_gpu ? ", \"used_context\": " + std::to_string(context) : "");

    // 1. build + fit one epoch of 784-1024-1024-10, then clear_session().
    const std::size_t before = used_bytes(device);
    std::size_t peak = 0;
    const auto t0 = std::chrono::steady_clock::now();
    double clear_seconds = 0;
    {
      tb::Session session({.device = device, .name = "trial"});
      tb::SessionScope use(session);
      tb::Sequential model = mlp(1024);
      model.compile(tb::optimizers::Adam(1e-3), "sparse_categorical_crossentropy");
      model.fit(x, y, {.epochs = 1, .batch_size = 256, .verbose = 0});
      peak = used_bytes(device);
      const auto c0 = std::chrono::steady_clock::now();
      tb::clear_session();
      clear_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - c0).count();
    }
    const std::size_t after = used_bytes(device);
    std::printf(
        "{%s, \"test\": \"clear\", \"%s_before\": %zu, \"%s_peak\": %zu, "
        "\"%s_after\": %zu, \"retained\": %lld, \"clear_seconds\": %.6f, "
        "\"seconds\": %.2f}\n",
        common.c_str(), figure, before, figure, peak, figure, after,
        static_cast<long long>(after) - static_cast<long long>(before), clear_seconds,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());

    // 2. cycles of build / fit 20 batches / clear with widths varying per cycle.
    std::vector<std::size_t> rss;
    for (int c = 0; c < cycles; ++c) {
      tb::Session session({.device = device, .name = "cycle"});
      tb::SessionScope use(session);
      tb::Sequential model = mlp(64 + 64 * (c % 16));
      model.compile(tb::optimizers::Adam(1e-3), "sparse_categorical_crossentropy");
      model.fit(x20, y20, {.epochs = 1, .batch_size = 128, .verbose = 0});
      tb::clear_session();
      rss.push_back(used_bytes(device));
    }
    // Least-squares slope of RSS over cycles, in bytes per cycle.
    double mean_c = (cycles - 1) / 2.0, mean_r = 0;
    for (auto r : rss) mean_r += static_cast<double>(r) / cycles;
    double num = 0, den = 0;
    for (int c = 0; c < cycles; ++c) {
      num += (c - mean_c) * (static_cast<double>(rss[c]) - mean_r);
      den += (c - mean_c) * (c - mean_c);
    }
    std::printf(
        "{%s, \"test\": \"cycles\", \"cycles\": %d, \"%s_first\": %zu, "
        "\"%s_last\": %zu, \"growth\": %lld, \"slope_bytes_per_cycle\": %.1f}\n",
        common.c_str(), cycles, figure, rss.front(), figure, rss.back(),
        static_cast<long long>(rss.back()) - static_cast<long long>(rss.front()),
        den > 0 ? num / den : 0.0);
  } catch (const tb::Error& e) {
    std::fprintf(stderr, "memory_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
