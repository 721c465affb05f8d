// Allocation costs: the session pool against glibc malloc/free and mmap/munmap, and the cost
// of clearing a session that holds many tensors.
//
// Run: make bench (or build-bench/alloc_bench --benchmark_repetitions=5
//      --benchmark_report_aggregates_only=true)

#include <benchmark/benchmark.h>
#include <sys/mman.h>

#include <cstdlib>
#include <random>
#include <vector>

#include "tabula/tabula.hpp"

namespace tb = tabula;

namespace {

// Mixed sizes, 64 B .. 64 KiB, log-uniform: the shapes of biases, small kernels, batches.
std::vector<std::size_t> mixed_sizes(std::size_t count, std::size_t max_bytes) {
  std::mt19937 rng(42);
  std::uniform_real_distribution<double> exponent(6.0, std::log2(static_cast<double>(max_bytes)));
  std::vector<std::size_t> sizes(count);
  for (auto& s : sizes) s = static_cast<std::size_t>(std::exp2(exponent(rng)));
  return sizes;
}

constexpr std::size_t kSizes = 1024;

// One allocate+free pair per iteration, sizes cycling through a fixed mixed list, with a
// working set of 64 live blocks so that the allocator sees a realistic free structure.
template <typename Allocate, typename Free>
void pairs(benchmark::State& state, std::size_t max_bytes, Allocate allocate, Free release) {
  const auto sizes = mixed_sizes(kSizes, max_bytes);
  std::vector<std::pair<void*, std::size_t>> working;
  for (std::size_t i = 0; i < 64; ++i) working.emplace_back(allocate(sizes[i]), sizes[i]);
  std::size_t i = 0;
  for (auto _ : state) {
    const std::size_t n = sizes[i++ % kSizes];
    void* p = allocate(n);
    benchmark::DoNotOptimize(p);
    release(p, n);
  }
  for (auto [p, n] : working) release(p, n);
  state.SetItemsProcessed(state.iterations());
}

void BM_PoolPair(benchmark::State& state) {
  tb::HostResource host;
  tb::PoolResource pool(host);
  pairs(
      state, static_cast<std::size_t>(state.range(0)), [&](std::size_t n) { return pool.allocate(n); },
      [&](void* p, std::size_t n) { pool.deallocate(p, n); });
}

void BM_MallocPair(benchmark::State& state) {
  pairs(
      state, static_cast<std::size_t>(state.range(0)), [](std::size_t n) { return std::malloc(n); },
      [](void* p, std::size_t) { std::free(p); });
}

void BM_MmapPair(benchmark::State& state) {
  pairs(
      state, static_cast<std::size_t>(state.range(0)),
      [](std::size_t n) {
        void* p = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        static_cast<char*>(p)[0] = 1;  // a mapping is only real once touched
        return p;
      },
      [](void* p, std::size_t n) { munmap(p, n); });
}

// Large blocks (1-16 MiB): what a pool saves over asking the kernel every time.
void BM_PoolLargePair(benchmark::State& state) {
  tb::HostResource host;
  tb::PoolResource pool(host);
  const std::size_t n = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    void* p = pool.allocate(n);
    static_cast<char*>(p)[0] = 1;
    benchmark::DoNotOptimize(p);
    pool.deallocate(p, n);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_MmapLargePair(benchmark::State& state) {
  const std::size_t n = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    void* p = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    static_cast<char*>(p)[0] = 1;
    benchmark::DoNotOptimize(p);
    munmap(p, n);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_MallocLargePair(benchmark::State& state) {
  const std::size_t n = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    void* p = std::malloc(n);
    static_cast<char*>(p)[0] = 1;
    benchmark::DoNotOptimize(p);
    std::free(p);
  }
  state.SetItemsProcessed(state.iterations());
}

// Session::clear() with N live tensors of mixed sizes (the tensors are made outside the
// timed region).
void BM_SessionClear(benchmark::State& state) {
  const auto count = static_cast<std::size_t>(state.range(0));
  const auto sizes = mixed_sizes(count, 64 * 1024);
  tb::Session session({.name = "bench"});
  std::vector<tb::Tensor> tensors;
  tensors.reserve(count);
  for (auto _ : state) {
    state.PauseTiming();
    {
      tb::SessionScope use(session);
      for (std::size_t i = 0; i < count; ++i)
        tensors.push_back(tb::empty({static_cast<std::int64_t>(sizes[i] / 4 + 1)}));
    }
    state.ResumeTiming();
    session.clear();
    state.PauseTiming();
    tensors.clear();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(count));
}

}  // namespace

BENCHMARK(BM_PoolPair)->Arg(64 << 10);
BENCHMARK(BM_MallocPair)->Arg(64 << 10);
BENCHMARK(BM_MmapPair)->Arg(64 << 10);
BENCHMARK(BM_PoolLargePair)->Arg(1 << 20)->Arg(16 << 20);
BENCHMARK(BM_MallocLargePair)->Arg(1 << 20)->Arg(16 << 20);
BENCHMARK(BM_MmapLargePair)->Arg(1 << 20)->Arg(16 << 20);
BENCHMARK(BM_SessionClear)->Arg(10000)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
