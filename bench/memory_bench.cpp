// Memory given back (issue 6, tabula's side): RSS before, at peak and after clearing a trained
// model, and RSS over 100 build / fit 20 batches / clear cycles with widths varying per cycle.
//
//   build-bench/memory_bench [--cycles 100] [--threads 2]
// Prints JSON lines: {"library": "tabula", "test": "clear", ...} and {"test": "cycles", ...}.

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "tabula/data/fashion_mnist.hpp"
#include "tabula/tabula.hpp"

namespace tb = tabula;

namespace {

std::size_t rss_bytes() { return tb::process_memory().rss; }

tb::Sequential mlp(std::int64_t width) {
  using namespace tb::layers;
  return tb::Sequential({Input({784}), Dense(width, "relu"), Dense(width, "relu"),
                         Dense(10, "softmax")});
}

}  // namespace

int main(int argc, char** argv) {
  int cycles = 100, threads = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--cycles")) cycles = std::stoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--threads")) threads = std::stoi(argv[i + 1]);
  }
  if (cycles < 1) {
    std::fprintf(stderr, "usage: memory_bench [--cycles N >= 1] [--threads N]\n");
    return 2;
  }
  try {
    tb::set_num_threads(threads);
    // The data lives in its own session for the whole run, as a user's dataset would.
    tb::Session data_session({.name = "data"});
    tb::Tensor x, y;
    {
      tb::SessionScope use(data_session);
      auto [train, test] = tb::datasets::fashion_mnist::load_data();
      x = train.x.reshape({60000, 784});
      y = train.y;
    }
    tb::Tensor x20 = tb::Tensor(x.storage(), tb::Shape{20 * 128, 784}, x.dtype());
    tb::Tensor y20 = tb::Tensor(y.storage(), tb::Shape{20 * 128}, y.dtype());

    // 1. build + fit one epoch of 784-1024-1024-10, then clear_session().
    const std::size_t before = rss_bytes();
    std::size_t peak = 0;
    const auto t0 = std::chrono::steady_clock::now();
    double clear_seconds = 0;
    {
      tb::Session session({.name = "trial"});
      tb::SessionScope use(session);
      tb::Sequential model = mlp(1024);
      model.compile(tb::optimizers::Adam(1e-3), "sparse_categorical_crossentropy");
      model.fit(x, y, {.epochs = 1, .batch_size = 256, .verbose = 0});
      peak = rss_bytes();
      const auto c0 = std::chrono::steady_clock::now();
      tb::clear_session();
      clear_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - c0).count();
    }
    const std::size_t after = rss_bytes();
    std::printf("{\"library\": \"tabula\", \"threads\": %d, \"version\": \"%s\", "
                "\"test\": \"clear\", \"rss_before\": %zu, "
                "\"rss_peak\": %zu, \"rss_after\": %zu, \"retained\": %lld, "
                "\"clear_seconds\": %.6f, \"seconds\": %.2f}\n",
                threads, TABULA_VERSION_STRING, before, peak, after,
                static_cast<long long>(after) - static_cast<long long>(before), clear_seconds,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());

    // 2. cycles of build / fit 20 batches / clear with widths varying per cycle.
    std::vector<std::size_t> rss;
    for (int c = 0; c < cycles; ++c) {
      tb::Session session({.name = "cycle"});
      tb::SessionScope use(session);
      tb::Sequential model = mlp(64 + 64 * (c % 16));
      model.compile(tb::optimizers::Adam(1e-3), "sparse_categorical_crossentropy");
      model.fit(x20, y20, {.epochs = 1, .batch_size = 128, .verbose = 0});
      tb::clear_session();
      rss.push_back(rss_bytes());
    }
    // Least-squares slope of RSS over cycles, in bytes per cycle.
    double mean_c = (cycles - 1) / 2.0, mean_r = 0;
    for (auto r : rss) mean_r += static_cast<double>(r) / cycles;
    double num = 0, den = 0;
    for (int c = 0; c < cycles; ++c) {
      num += (c - mean_c) * (static_cast<double>(rss[c]) - mean_r);
      den += (c - mean_c) * (c - mean_c);
    }
    std::printf("{\"library\": \"tabula\", \"threads\": %d, \"version\": \"%s\", "
                "\"test\": \"cycles\", \"cycles\": %d, "
                "\"rss_first\": %zu, \"rss_last\": %zu, \"growth\": %lld, "
                "\"slope_bytes_per_cycle\": %.1f}\n",
                threads, TABULA_VERSION_STRING, cycles, rss.front(), rss.back(),
                static_cast<long long>(rss.back()) - static_cast<long long>(rss.front()),
                den > 0 ? num / den : 0.0);
  } catch (const tb::Error& e) {
    std::fprintf(stderr, "memory_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
