// tabula's packed GEMM against OpenBLAS on the GEMMs of the training workloads, side by side in
// one program: both on one thread (the kernels themselves), then tabula on its pool against
// OpenBLAS's own threads (TABULA_NUM_THREADS / OPENBLAS_NUM_THREADS, else every core).
//   build-bench/gemm_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
// GFLOP/s is 2 m n k per call.

#include <benchmark/benchmark.h>
#include <cblas.h>

#include <random>
#include <vector>

#include "backend/cpu/cpu_kernels.hpp"
#include "backend/cpu/gemm/packed_gemm.hpp"
#include "session/detail/session_scratch.hpp"
#include "tabula/core/threads.hpp"
#include "tabula/session/session.hpp"

namespace {

using tabula::detail::index_t;

struct Shape {
  const char* name;
  bool ta, tb;
  index_t m, n, k;
};

// The large MLP's 784-1024 and 1024-1024 layers (forward, weight gradient, input gradient) at
// batch 128 (the small MLP's batch; the large one trains at 256), the CNN's second convolution
// as one GEMM over its batch of 64 (64 x 11 x 11 pixels, 3x3x32 patches, 64 filters), a 10-way
// output layer at batch 128, a square one.
const Shape kShapes[] = {
    {"dense_784_1024_forward", false, false, 128, 1024, 784},
    {"dense_784_1024_weight_grad", true, false, 784, 1024, 128},
    {"dense_1024_1024_input_grad", false, true, 128, 1024, 1024},
    {"conv_288_64_forward", false, false, 7744, 64, 288},
    {"conv_288_64_weight_grad", true, false, 288, 64, 7744},
    {"conv_288_64_input_grad", false, true, 7744, 288, 64},
    {"dense_1024_10_forward", false, false, 128, 10, 1024},
    {"square_1024", false, false, 1024, 1024, 1024},
};

struct Operands {
  explicit Operands(const Shape& s)
      : a(static_cast<std::size_t>(s.m * s.k)),
        b(static_cast<std::size_t>(s.k * s.n)),
        c(static_cast<std::size_t>(s.m * s.n)) {
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (float& x : a) x = u(rng);
    for (float& x : b) x = u(rng);
  }
  std::vector<float> a, b, c;
};

void set_rate(benchmark::State& state, const Shape& s) {
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * static_cast<double>(s.m * s.n * s.k) / 1e9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

// Through CpuKernels::gemm, as the layers call it: packing buffers from a session's scratch.
void tabula_gemm(benchmark::State& state, const Shape& s, int threads) {
  tabula::set_num_threads(threads);
  Operands o(s);
  tabula::Session session;
  tabula::detail::CpuKernels kernels;
  for (auto _ : state) {
    tabula::detail::SessionScratch scratch(session.core(), tabula::Device::cpu());
    kernels.gemm(scratch, s.ta, s.tb, s.m, s.n, s.k, 1.0f, o.a.data(), s.ta ? s.m : s.k, o.b.data(),
                 s.tb ? s.k : s.n, 0.0f, o.c.data(), s.n);
    benchmark::ClobberMemory();
  }
  set_rate(state, s);
  state.SetLabel(tabula::detail::best_gemm_kernel().isa);
}

void openblas_gemm(benchmark::State& state, const Shape& s, int threads) {
  openblas_set_num_threads(threads);
  Operands o(s);
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, s.ta ? CblasTrans : CblasNoTrans, s.tb ? CblasTrans : CblasNoTrans,
                static_cast<blasint>(s.m), static_cast<blasint>(s.n), static_cast<blasint>(s.k),
                1.0f, o.a.data(), static_cast<blasint>(s.ta ? s.m : s.k), o.b.data(),
                static_cast<blasint>(s.tb ? s.k : s.n), 0.0f, o.c.data(),
                static_cast<blasint>(s.n));
    benchmark::ClobberMemory();
  }
  set_rate(state, s);
}

const int kPoolThreads = tabula::get_num_threads();  // before anything resizes the pool

const bool kRegistered = [] {
  for (const Shape& s : kShapes) {
    benchmark::RegisterBenchmark((std::string("tabula/1_thread/") + s.name).c_str(),
                                 [s](benchmark::State& st) { tabula_gemm(st, s, 1); })
        ->UseRealTime();
    benchmark::RegisterBenchmark((std::string("openblas/1_thread/") + s.name).c_str(),
                                 [s](benchmark::State& st) { openblas_gemm(st, s, 1); })
        ->UseRealTime();
  }
  for (const Shape& s : kShapes) {
    const std::string threads = std::to_string(kPoolThreads) + "_threads/";
    benchmark::RegisterBenchmark(("tabula/" + threads + s.name).c_str(), [s](benchmark::State& st) {
      tabula_gemm(st, s, kPoolThreads);
    })->UseRealTime();
    benchmark::RegisterBenchmark(("openblas/" + threads + s.name).c_str(),
                                 [s](benchmark::State& st) { openblas_gemm(st, s, kPoolThreads); })
        ->UseRealTime();
  }
  return true;
}();

}  // namespace

BENCHMARK_MAIN();
