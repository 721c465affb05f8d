// Convolutions on a GPU, one forward and one backward pass (kernel and input gradients) per
// iteration: in cuDNN as tabula plans them, against unfolding into cuBLAS GEMMs (the path every
// device has, and the GPU's wherever cuDNN does not run a geometry). The benchmark CNN's two
// layers and a few larger ones: where cuDNN wins. Then batch normalisation of convolutions'
// outputs, one training forward and one backward pass per iteration, against the memory's
// bandwidth. The rows run only where a CUDA device is present; scripts/gpu-bundle-run runs them.
//
//   conv_bench [--benchmark_filter=...] [--benchmark_format=json]
//
// Counters: samples/s (items_per_second) and GFLOP/s, counting 2 flops per multiply-add in
// each of the three products (forward, kernel gradient, input gradient); for batch
// normalisation GB/s, counting the bytes its passes must move: x read three times and y written
// forward, x and dy read twice and dx written backward (36 bytes per value).

#include <benchmark/benchmark.h>

#include <cstdio>
#include <string>
#include <vector>

#include "tabula/tabula.hpp"

#if TABULA_WITH_CUDA
#include <cuda_runtime.h>

#include "backend/cuda/cuda_convolution_kernels.hpp"
#include "backend/detail/convolution_kernels.hpp"
#include "backend/detail/normalization_kernels.hpp"
#include "nn/detail/window_geometry.hpp"
#include "session/detail/session_scratch.hpp"
#endif

namespace {

#if TABULA_WITH_CUDA
namespace tb = tabula;
namespace td = tabula::detail;
using td::index_t;

struct Layer {
  const char* name;
  index_t batch, height, width, channels, kernel, stride, filters;
  bool same;
};

// The benchmark CNN's layers (train_bench --workload cnn, batch 64), then ResNet-like stages.
const Layer kLayers[] = {
    {"cnn_conv1_28x28x1_k3_f32", 64, 28, 28, 1, 3, 1, 32, false},
    {"cnn_conv2_13x13x32_k3_f64", 64, 13, 13, 32, 3, 1, 64, false},
    {"stem_112x112x3_k3s2_f32", 32, 112, 112, 3, 3, 2, 32, false},
    {"56x56x64_k3_same_f64", 32, 56, 56, 64, 3, 1, 64, true},
    {"28x28x128_k3_same_f128", 32, 28, 28, 128, 3, 1, 128, true},
    {"14x14x256_k3_same_f256", 32, 14, 14, 256, 3, 1, 256, true},
    {"28x28x256_k1_f64", 32, 28, 28, 256, 1, 1, 64, false},
};

std::vector<float> values(index_t n) {
  std::vector<float> v(static_cast<std::size_t>(n));
  unsigned state = 12345;
  for (float& x : v) {
    state = state * 1664525u + 1013904223u;
    x = static_cast<float>(state >> 8) / 16777216.0f - 0.5f;
  }
  return v;
}

void synchronize(benchmark::State& state) {
  // tabula's CUDA work runs on the calling thread's per-thread stream (cuda_stream.hpp).
  const cudaError_t status = cudaStreamSynchronize(cudaStreamPerThread);
  if (status != cudaSuccess) state.SkipWithError(cudaGetErrorString(status));
}

void BM_Convolution(benchmark::State& state, Layer layer, bool cudnn) {
  const tb::Device gpu = tb::Device::cuda(0);
  tb::Session session({.device = gpu, .name = "conv_bench"});
  tb::SessionScope scope(session);
  td::Convolution2d c{
      .window = td::make_window(
          "Conv2D", layer.name, tb::Shape{layer.height, layer.width, layer.channels}, "kernel_size",
          {layer.kernel, layer.kernel}, {layer.stride, layer.stride}, layer.same),
      .filters = layer.filters};
  c.window.batch = layer.batch;
  td::SessionScratch scratch(session.core(), gpu);
  td::ConvolutionKernels& convolutions = td::convolution_kernels_for(gpu);
  td::Kernels& kernels = td::kernels_for(gpu);
  const td::ConvolutionPlan plan = cudnn ? convolutions.plan_conv2d(scratch, c)
                                         : convolutions.ConvolutionKernels::plan_conv2d(scratch, c);
  if (cudnn && plan.unfolds()) {
    state.SkipWithError(
        "cuDNN does not run this geometry here (no cuDNN in this build, or no "
        "deterministic algorithm within the workspace budget)");
    return;
  }
  const index_t in = layer.batch * layer.height * layer.width * layer.channels;
  const index_t out = layer.batch * c.pixels() * c.filters;
  const tb::Tensor x = tb::from_vector(values(in)), dx = tb::from_vector(values(in));
  const tb::Tensor y = tb::from_vector(values(out)), dy = tb::from_vector(values(out));
  const tb::Tensor kernel = tb::from_vector(values(c.patch() * c.filters));
  const tb::Tensor dkernel = tb::from_vector(values(c.patch() * c.filters));
  const tb::Tensor workspace = tb::from_vector(std::vector<float>(plan.workspace_bytes / 4 + 1));
  const auto f = [](const tb::Tensor& t) { return static_cast<float*>(t.raw_data()); };
  const auto pass = [&] {
    convolutions.conv2d_forward(kernels, scratch, plan, c, f(x), f(kernel), f(y), f(workspace));
    convolutions.conv2d_backward(kernels, scratch, plan, c, f(x), f(dy), f(kernel), f(dkernel),
                                 f(dx), f(workspace));
  };
  pass();  // the first call loads the kernels' modules
  synchronize(state);
  for (auto _ : state) {
    pass();
    synchronize(state);
  }
  const double flops = 3.0 * 2.0 * static_cast<double>(out) * static_cast<double>(c.patch());
  state.SetItemsProcessed(state.iterations() * layer.batch);
  state.counters["GFLOP/s"] = benchmark::Counter(
      flops * static_cast<double>(state.iterations()) * 1e-9, benchmark::Counter::kIsRate);
  state.SetLabel(cudnn ? "cudnn" : "unfolded (im2col + cuBLAS)");
}

struct Normalised {
  const char* name;
  index_t rows, channels;
};

// A convolution's output of the benchmark CNN (64 x 26 x 26 x 32), ResNet-like stages, and a
// dense layer's (rows of 1024 features).
const Normalised kNormalised[] = {
    {"cnn_conv1_out_64x26x26x32", 64 * 26 * 26, 32},
    {"56x56x64_batch32", 32 * 56 * 56, 64},
    {"14x14x256_batch32", 32 * 14 * 14, 256},
    {"dense_256x1024", 256, 1024},
};

void BM_BatchNorm(benchmark::State& state, Normalised shape) {
  const tb::Device gpu = tb::Device::cuda(0);
  tb::Session session({.device = gpu, .name = "batch_norm_bench"});
  tb::SessionScope scope(session);
  td::SessionScratch scratch(session.core(), gpu);
  td::NormalizationKernels& norm = td::normalization_kernels_for(gpu);
  norm.prepare(scratch);
  const index_t n = shape.rows * shape.channels, c = shape.channels;
  const tb::Tensor x = tb::from_vector(values(n)), y = tb::from_vector(values(n));
  const tb::Tensor dy = tb::from_vector(values(n)), dx = tb::from_vector(values(n));
  const tb::Tensor gamma = tb::from_vector(values(c)), beta = tb::from_vector(values(c));
  const tb::Tensor moving_mean = tb::from_vector(values(c)), moving_var = tb::ones({c});
  const tb::Tensor dgamma = tb::from_vector(values(c)), dbeta = tb::from_vector(values(c));
  const tb::Tensor saved = tb::from_vector(values(2 * c));
  const auto f = [](const tb::Tensor& t) { return static_cast<float*>(t.raw_data()); };
  const auto pass = [&] {
    norm.batch_norm_forward_training(scratch, f(x), f(gamma), f(beta), f(y), shape.rows, c, 0.99f,
                                     1e-3f, f(moving_mean), f(moving_var), f(saved), f(saved) + c);
    norm.batch_norm_backward(scratch, f(x), f(dy), f(gamma), f(saved), f(saved) + c, shape.rows, c,
                             true, f(dx), f(dgamma), f(dbeta));
  };
  pass();  // the first call loads the kernels' modules
  synchronize(state);
  for (auto _ : state) {
    pass();
    synchronize(state);
  }
  state.SetItemsProcessed(state.iterations() * shape.rows);
  state.counters["GB/s"] = benchmark::Counter(
      36.0 * static_cast<double>(n) * static_cast<double>(state.iterations()) * 1e-9,
      benchmark::Counter::kIsRate);
  state.SetLabel("batch normalisation, training forward + backward");
}

void register_benchmarks() {
  for (const Layer& layer : kLayers)
    for (const bool cudnn : {true, false})
      benchmark::RegisterBenchmark(
          (std::string("BM_CudaConvolution/") + layer.name + (cudnn ? "/cudnn" : "/unfolded"))
              .c_str(),
          BM_Convolution, layer, cudnn)
          ->UseRealTime()
          ->Unit(benchmark::kMicrosecond);
  for (const Normalised& shape : kNormalised)
    benchmark::RegisterBenchmark((std::string("BM_CudaBatchNorm/") + shape.name).c_str(),
                                 BM_BatchNorm, shape)
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
}
#endif

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
#if TABULA_WITH_CUDA
  benchmark::AddCustomContext("convolutions", tabula::detail::CudaConvolutionKernels::library());
  if (tabula::cuda_device_count() > 0)
    register_benchmarks();
  else
    std::fprintf(stderr, "conv_bench: no CUDA device present: no rows to run\n");
#else
  std::fprintf(stderr, "conv_bench: this build of tabula has no CUDA: no rows to run\n");
#endif
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
