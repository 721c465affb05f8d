// Allocation costs: the session pool against glibc malloc/free and mmap/munmap, and the cost
// of clearing a session that holds many tensors. On a GPU (issue 7; built with CUDA, run where
// a device is present): the pool over CudaResource against cudaMalloc/cudaFree and the
// driver's stream-ordered cudaMallocAsync/cudaFreeAsync (BM_Cuda*).
//
// Run: make bench (or build-bench/alloc_bench --benchmark_repetitions=5
//      --benchmark_report_aggregates_only=true)

#include <benchmark/benchmark.h>
#include <sys/mman.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "tabula/tabula.hpp"

#if TABULA_WITH_CUDA
// Only here, to hold the pool against the runtime's own allocators.
#include <cuda_runtime.h>
#endif

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
      state, static_cast<std::size_t>(state.range(0)),
      [&](std::size_t n) { return pool.allocate(n); },
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

#if TABULA_WITH_CUDA
// GPU rows: registered in main only when a device is present. Device memory is never touched
// (cudaMalloc maps it when it returns). A failing CUDA call ends the row with its error.

bool cuda_ok(benchmark::State& state, cudaError_t status, const char* what) {
  if (status == cudaSuccess) return true;
  state.SkipWithError((std::string(what) + ": " + cudaGetErrorString(status)).c_str());
  return false;
}

void BM_CudaPoolPair(benchmark::State& state) {
  tb::CudaResource cuda(tb::Device::cuda(0));
  tb::PoolResource pool(cuda);
  pairs(
      state, static_cast<std::size_t>(state.range(0)),
      [&](std::size_t n) { return pool.allocate(n); },
      [&](void* p, std::size_t n) { pool.deallocate(p, n); });
}

void BM_CudaMallocPair(benchmark::State& state) {
  bool ok = true;
  pairs(
      state, static_cast<std::size_t>(state.range(0)),
      [&](std::size_t n) {
        void* p = nullptr;
        ok = ok && cuda_ok(state, cudaMalloc(&p, n), "cudaMalloc");
        return p;
      },
      [](void* p, std::size_t) { cudaFree(p); });
}

// Stream-ordered allocation from the device's default memory pool (release threshold 0, the
// default: memory goes back to the driver at a synchronisation, which this loop never makes,
// so the pool reuses it); the stream is synchronised once at the end.
void BM_CudaMallocAsyncPair(benchmark::State& state) {
  cudaStream_t stream = nullptr;
  if (!cuda_ok(state, cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking),
               "cudaStreamCreate"))
    return;
  bool ok = true;
  pairs(
      state, static_cast<std::size_t>(state.range(0)),
      [&](std::size_t n) {
        void* p = nullptr;
        ok = ok && cuda_ok(state, cudaMallocAsync(&p, n, stream), "cudaMallocAsync");
        return p;
      },
      [&](void* p, std::size_t) { cudaFreeAsync(p, stream); });
  cudaStreamSynchronize(stream);
  cudaStreamDestroy(stream);
}

void BM_CudaPoolLargePair(benchmark::State& state) {
  tb::CudaResource cuda(tb::Device::cuda(0));
  tb::PoolResource pool(cuda);
  const std::size_t n = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    void* p = pool.allocate(n);
    benchmark::DoNotOptimize(p);
    pool.deallocate(p, n);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_CudaMallocLargePair(benchmark::State& state) {
  const std::size_t n = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    void* p = nullptr;
    if (!cuda_ok(state, cudaMalloc(&p, n), "cudaMalloc")) break;
    benchmark::DoNotOptimize(p);
    cudaFree(p);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_CudaMallocAsyncLargePair(benchmark::State& state) {
  cudaStream_t stream = nullptr;
  if (!cuda_ok(state, cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking),
               "cudaStreamCreate"))
    return;
  const std::size_t n = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    void* p = nullptr;
    if (!cuda_ok(state, cudaMallocAsync(&p, n, stream), "cudaMallocAsync")) break;
    benchmark::DoNotOptimize(p);
    cudaFreeAsync(p, stream);
  }
  cudaStreamSynchronize(stream);
  cudaStreamDestroy(stream);
  state.SetItemsProcessed(state.iterations());
}

void register_cuda_benchmarks() {
  benchmark::RegisterBenchmark("BM_CudaPoolPair", BM_CudaPoolPair)->Arg(64 << 10);
  benchmark::RegisterBenchmark("BM_CudaMallocPair", BM_CudaMallocPair)->Arg(64 << 10);
  benchmark::RegisterBenchmark("BM_CudaMallocAsyncPair", BM_CudaMallocAsyncPair)->Arg(64 << 10);
  benchmark::RegisterBenchmark("BM_CudaPoolLargePair", BM_CudaPoolLargePair)
      ->Arg(1 << 20)
      ->Arg(16 << 20);
  benchmark::RegisterBenchmark("BM_CudaMallocLargePair", BM_CudaMallocLargePair)
      ->Arg(1 << 20)
      ->Arg(16 << 20);
  benchmark::RegisterBenchmark("BM_CudaMallocAsyncLargePair", BM_CudaMallocAsyncLargePair)
      ->Arg(1 << 20)
      ->Arg(16 << 20);
}
#endif

}  // namespace

BENCHMARK(BM_PoolPair)->Arg(64 << 10);
BENCHMARK(BM_MallocPair)->Arg(64 << 10);
BENCHMARK(BM_MmapPair)->Arg(64 << 10);
BENCHMARK(BM_PoolLargePair)->Arg(1 << 20)->Arg(16 << 20);
BENCHMARK(BM_MallocLargePair)->Arg(1 << 20)->Arg(16 << 20);
BENCHMARK(BM_MmapLargePair)->Arg(1 << 20)->Arg(16 << 20);
BENCHMARK(BM_SessionClear)->Arg(10000)->Unit(benchmark::kMillisecond);

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
#if TABULA_WITH_CUDA
  if (tb::cuda_device_count() > 0)
    register_cuda_benchmarks();
  else
    std::fprintf(stderr, "alloc_bench: no CUDA device present: the BM_Cuda* rows are not run\n");
#endif
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
