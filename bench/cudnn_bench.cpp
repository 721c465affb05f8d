// tabula's layers on a GPU, one forward and one backward pass per iteration, each where cuDNN
// might win over tabula's own way (issue 7 asks for cuDNN "where it wins"):
// - convolutions (kernel and input gradients): in cuDNN as tabula plans them, against unfolding
//   into cuBLAS GEMMs (the path every device has, and the GPU's wherever cuDNN does not run a
//   geometry); the benchmark CNN's two layers and a few larger ones;
// - batch normalisation of convolutions' outputs (training forward, backward): tabula's kernels
//   against cuDNN's in its two spatial modes, and against the memory's bandwidth;
// - 2x2 max pooling: tabula's kernels against cuDNN's;
// - LSTM layers (training forward, input and weight gradients): tabula's layer against cuDNN's
//   RNN API with the same weights.
// cuDNN's batch normalisation, pooling and LSTM are called as a user of cuDNN would: its own
// handle on tabula's stream, descriptors made once, fp32 arithmetic (no TF32) as tabula's. Their
// rows report the largest difference from tabula's results on the same inputs (max_abs_diff;
// max_rel_diff_* for sums over many rows, relative to their magnitude), so that both are seen to
// compute the same thing. The rows run only where a CUDA device is
// present; scripts/gpu-bundle-run runs them.
//
//   cudnn_bench [--benchmark_filter=...] [--benchmark_format=json]
//
// Counters: samples/s (items_per_second) and GFLOP/s, counting 2 flops per multiply-add in
// each of the three products (forward, kernel gradient, input gradient); for batch
// normalisation GB/s, counting the bytes its passes must move: x read three times and y written
// forward, x and dy read twice and dx written backward (36 bytes per value).

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "tabula/tabula.hpp"

#if TABULA_WITH_CUDA
#include <cuda_runtime.h>

#include "backend/cuda/cuda_convolution_kernels.hpp"
#include "backend/detail/convolution_kernels.hpp"
#include "backend/detail/device_copy.hpp"
#include "backend/detail/normalization_kernels.hpp"
#include "nn/detail/window_geometry.hpp"
#include "session/detail/session_scratch.hpp"
#endif
#if TABULA_BENCH_CUDNN
#include <cudnn.h>
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

// Values in [-0.5, 0.5) from a linear congruential generator started at `seed`.
std::vector<float> values(index_t n, unsigned seed = 12345) {
  std::vector<float> v(static_cast<std::size_t>(n));
  unsigned state = seed;
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

// Values in [-0.5, 0.5) that repeat only every 2^24 elements (i * odd mod 2^24), farther apart
// than any window reaches: no window holds a tie, so every max pooling routes each gradient to
// the same element.
std::vector<float> distinct_values(index_t n) {
  std::vector<float> v(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < v.size(); ++i)
    v[i] = static_cast<float>((i * 2654435761u) & 0xFFFFFFu) / 16777216.0f - 0.5f;
  return v;
}

float* f32(const tb::Tensor& t) { return static_cast<float*>(t.raw_data()); }

// Float32 elements of a buffer of `bytes` (one at least: no tensor is empty).
index_t floats(std::size_t bytes) { return static_cast<index_t>(bytes / sizeof(float)) + 1; }

// The larger of `worst` and `d`, NaN if either is (std::max would drop a NaN `d`, and a NaN
// must read as disagreement).
double worse(double worst, double d) { return d <= worst ? worst : d; }

// The largest |a[i] - b[i]| of two equally long vectors, divided by the largest |a[i]| where
// `relative` and that is above 1 (sums over many rows, whose rounding grows with them).
double max_diff(const std::vector<float>& a, const std::vector<float>& b, bool relative = false) {
  double worst = 0.0, scale = 1.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    worst = worse(worst, std::fabs(static_cast<double>(a[i]) - b[i]));
    if (relative) scale = worse(scale, std::fabs(static_cast<double>(a[i])));
  }
  return worst / scale;
}

// max_diff over pairs of tensors of equal size (copied to the host).
double max_diff(std::initializer_list<std::pair<const tb::Tensor*, const tb::Tensor*>> pairs,
                bool relative = false) {
  double worst = 0.0;
  for (const auto& [a, b] : pairs)
    worst = worse(worst, max_diff(a->to_vector<float>(), b->to_vector<float>(), relative));
  return worst;
}

// Times `pass` (after one untimed call that loads the kernels' modules), waiting for the GPU
// after each; stops at the first error (SkipWithError does not end the loop by itself).
// Returns whether every pass went well.
template <typename Pass>
bool time_passes(benchmark::State& state, const Pass& pass) {
  pass();
  synchronize(state);
  if (state.error_occurred()) return false;
  for (auto _ : state) {
    pass();
    synchronize(state);
    if (state.error_occurred()) break;
  }
  return !state.error_occurred();
}

void BM_Convolution(benchmark::State& state, Layer layer, bool cudnn) {
  const tb::Device gpu = tb::Device::cuda(0);
  tb::Session session({.device = gpu, .name = "cudnn_bench"});
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
  const td::ConvolutionPlan plan =
      cudnn ? convolutions.plan_conv2d(scratch, c, true)
            : convolutions.ConvolutionKernels::plan_conv2d(scratch, c, true);
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
  const tb::Tensor workspace = tb::zeros({floats(plan.workspace_bytes)});
  const bool timed = time_passes(state, [&] {
    convolutions.conv2d_forward(kernels, scratch, plan, c, f32(x), f32(kernel), f32(y),
                                f32(workspace));
    convolutions.conv2d_backward(kernels, scratch, plan, c, f32(x), f32(dy), f32(kernel),
                                 f32(dkernel), f32(dx), f32(workspace));
  });
  if (!timed) return;
  const double flops = 3.0 * 2.0 * static_cast<double>(out) * static_cast<double>(c.patch());
  state.SetItemsProcessed(state.iterations() * layer.batch);
  state.counters["GFLOP/s"] = benchmark::Counter(
      flops * static_cast<double>(state.iterations()) * 1e-9, benchmark::Counter::kIsRate);
  state.SetLabel(cudnn ? "cudnn" : "unfolded (im2col + cuBLAS)");
}

// An NHWC activation: batch x height x width x channels (a dense layer's: height = width = 1).
struct Activation {
  const char* name;
  index_t batch, height, width, channels;

  index_t rows() const { return batch * height * width; }
  index_t numel() const { return rows() * channels; }
};

// A convolution's output of the benchmark CNN (64 x 26 x 26 x 32), ResNet-like stages, and a
// dense layer's (rows of 1024 features).
const Activation kNormalised[] = {
    {"cnn_conv1_out_64x26x26x32", 64, 26, 26, 32},
    {"56x56x64_batch32", 32, 56, 56, 64},
    {"14x14x256_batch32", 32, 14, 14, 256},
    {"dense_256x1024", 256, 1, 1, 1024},
};

// What 2x2 max pooling takes in the benchmark CNN, and a ResNet-like stage.
const Activation kPooled[] = {
    {"cnn_pool1_64x26x26x32", 64, 26, 26, 32},
    {"cnn_pool2_64x11x11x64", 64, 11, 11, 64},
    {"56x56x64_batch32", 32, 56, 56, 64},
};

// The buffers of one batch normalisation, forward and backward, on the current session's GPU.
struct BatchNormBuffers {
  explicit BatchNormBuffers(const Activation& a)
      : x(tb::from_vector(values(a.numel()))),
        // Not x again: a dy equal to x makes dx all but zero, which would hide a wrong dx.
        dy(tb::from_vector(values(a.numel(), 2))),
        y(tb::zeros({a.numel()})),
        dx(tb::zeros({a.numel()})),
        gamma(tb::from_vector(values(a.channels, 3))),
        beta(tb::from_vector(values(a.channels, 4))),
        moving_mean(tb::zeros({a.channels})),
        moving_var(tb::ones({a.channels})),
        saved_mean(tb::zeros({a.channels})),
        saved_inv_std(tb::zeros({a.channels})),
        dgamma(tb::zeros({a.channels})),
        dbeta(tb::zeros({a.channels})) {}

  tb::Tensor x, dy, y, dx, gamma, beta, moving_mean, moving_var, saved_mean, saved_inv_std, dgamma,
      dbeta;
};

constexpr float kMomentum = 0.99f, kEpsilon = 1e-3f;

void set_bandwidth(benchmark::State& state, const Activation& a) {
  state.SetItemsProcessed(state.iterations() * a.rows());
  state.counters["GB/s"] = benchmark::Counter(
      36.0 * static_cast<double>(a.numel()) * static_cast<double>(state.iterations()) * 1e-9,
      benchmark::Counter::kIsRate);
}

// tabula's batch normalisation: one training forward and one backward pass over buffers.
struct TabulaBatchNorm {
  TabulaBatchNorm(tb::Session& session, const Activation& a)
      : shape(a),
        scratch(session.core(), tb::Device::cuda(0)),
        norm(td::normalization_kernels_for(tb::Device::cuda(0))) {
    norm.prepare(scratch);
  }
  void operator()(const BatchNormBuffers& b) {
    norm.batch_norm_forward_training(scratch, f32(b.x), f32(b.gamma), f32(b.beta), f32(b.y),
                                     shape.rows(), shape.channels, kMomentum, kEpsilon,
                                     f32(b.moving_mean), f32(b.moving_var), f32(b.saved_mean),
                                     f32(b.saved_inv_std));
    norm.batch_norm_backward(scratch, f32(b.x), f32(b.dy), f32(b.gamma), f32(b.saved_mean),
                             f32(b.saved_inv_std), shape.rows(), shape.channels, true, f32(b.dx),
                             f32(b.dgamma), f32(b.dbeta));
  }

  Activation shape;
  td::SessionScratch scratch;
  td::NormalizationKernels& norm;
};

void BM_BatchNorm(benchmark::State& state, Activation shape) {
  tb::Session session({.device = tb::Device::cuda(0), .name = "batch_norm_bench"});
  tb::SessionScope scope(session);
  const BatchNormBuffers buffers(shape);
  TabulaBatchNorm batch_norm(session, shape);
  if (!time_passes(state, [&] { batch_norm(buffers); })) return;
  set_bandwidth(state, shape);
  state.SetLabel("tabula");
}

#if TABULA_BENCH_CUDNN
// A cuDNN object destroyed with its owner (cuDNN's create/destroy pairs).
template <typename T, cudnnStatus_t (*Destroy)(T)>
class CudnnOwned {
 public:
  CudnnOwned() = default;
  ~CudnnOwned() {
    if (value) Destroy(value);
  }
  CudnnOwned(const CudnnOwned&) = delete;
  CudnnOwned& operator=(const CudnnOwned&) = delete;

  T value = nullptr;
};
using CudnnHandle = CudnnOwned<cudnnHandle_t, cudnnDestroy>;
using CudnnTensor = CudnnOwned<cudnnTensorDescriptor_t, cudnnDestroyTensorDescriptor>;
using CudnnPooling = CudnnOwned<cudnnPoolingDescriptor_t, cudnnDestroyPoolingDescriptor>;

// cuDNN's calls for one row: the first failure ends the row with cuDNN's message.
class CudnnCalls {
 public:
  explicit CudnnCalls(benchmark::State& state) : state_(state) {}
  bool operator()(cudnnStatus_t status, const char* what) {
    if (status == CUDNN_STATUS_SUCCESS || !ok_) return ok_;
    ok_ = false;
    state_.SkipWithError((std::string(what) + ": " + cudnnGetErrorString(status)).c_str());
    return false;
  }
  /// The same for a CUDA runtime call among them.
  bool operator()(cudaError_t status, const char* what) {
    if (status == cudaSuccess || !ok_) return ok_;
    ok_ = false;
    state_.SkipWithError((std::string(what) + ": " + cudaGetErrorString(status)).c_str());
    return false;
  }
  bool ok() const { return ok_; }

  /// A handle on the stream tabula's CUDA work runs on.
  bool handle(CudnnHandle& h) {
    return (*this)(cudnnCreate(&h.value), "cudnnCreate") &&
           (*this)(cudnnSetStream(h.value, cudaStreamPerThread), "cudnnSetStream");
  }
  /// An NHWC float tensor of n x h x w x c.
  bool nhwc(CudnnTensor& t, index_t n, index_t h, index_t w, index_t c) {
    const auto i = [](index_t v) { return static_cast<int>(v); };
    return (*this)(cudnnCreateTensorDescriptor(&t.value), "cudnnCreateTensorDescriptor") &&
           (*this)(cudnnSetTensor4dDescriptor(t.value, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, i(n),
                                              i(c), i(h), i(w)),
                   "cudnnSetTensor4dDescriptor");
  }

 private:
  benchmark::State& state_;
  bool ok_ = true;
};

// How cuDNN is asked for batch normalisation: the plain calls in its spatial mode or its
// persistent one (faster, with limits on the values' range), or the Ex calls in the persistent
// mode with workspace and reserve space (PyTorch's call for NHWC).
enum class CudnnBatchNormCall { spatial, persistent, persistent_ex };

// cuDNN's batch normalisation called as `how` against tabula's on the same inputs. Counters:
// max_abs_diff over y and dx; max_rel_diff_sums over dgamma and dbeta (sums over every row, so
// relative to their largest magnitude).
void BM_CudnnBatchNorm(benchmark::State& state, Activation shape, CudnnBatchNormCall how) {
  tb::Session session({.device = tb::Device::cuda(0), .name = "batch_norm_bench"});
  tb::SessionScope scope(session);
  const BatchNormBuffers ours(shape), theirs(shape);
  const cudnnBatchNormMode_t mode = how == CudnnBatchNormCall::spatial
                                        ? CUDNN_BATCHNORM_SPATIAL
                                        : CUDNN_BATCHNORM_SPATIAL_PERSISTENT;
  const cudnnBatchNormOps_t ops = CUDNN_BATCHNORM_OPS_BN;
  CudnnCalls call(state);
  CudnnHandle handle;
  CudnnTensor x, per_channel;
  if (!call.handle(handle) ||
      !call.nhwc(x, shape.batch, shape.height, shape.width, shape.channels) ||
      !call(cudnnCreateTensorDescriptor(&per_channel.value), "cudnnCreateTensorDescriptor") ||
      !call(cudnnDeriveBNTensorDescriptor(per_channel.value, x.value, mode),
            "cudnnDeriveBNTensorDescriptor"))
    return;
  std::size_t forward_bytes = 0, backward_bytes = 0, reserve_bytes = 0;
  if (how == CudnnBatchNormCall::persistent_ex &&
      (!call(cudnnGetBatchNormalizationForwardTrainingExWorkspaceSize(
                 handle.value, mode, ops, x.value, nullptr, x.value, per_channel.value, nullptr,
                 &forward_bytes),
             "cudnnGetBatchNormalizationForwardTrainingExWorkspaceSize") ||
       !call(cudnnGetBatchNormalizationBackwardExWorkspaceSize(
                 handle.value, mode, ops, x.value, x.value, x.value, nullptr, x.value,
                 per_channel.value, nullptr, &backward_bytes),
             "cudnnGetBatchNormalizationBackwardExWorkspaceSize") ||
       !call(cudnnGetBatchNormalizationTrainingExReserveSpaceSize(handle.value, mode, ops, nullptr,
                                                                  x.value, &reserve_bytes),
             "cudnnGetBatchNormalizationTrainingExReserveSpaceSize")))
    return;
  const tb::Tensor workspace = tb::zeros({floats(std::max(forward_bytes, backward_bytes))});
  const tb::Tensor reserve = tb::zeros({floats(reserve_bytes)});
  const float one = 1.0f, zero = 0.0f;
  // Keras's momentum m keeps m of the moving average; cuDNN's factor is what it takes anew.
  const double factor = 1.0 - kMomentum;
  const auto plain = [&] {
    if (!call(cudnnBatchNormalizationForwardTraining(
                  handle.value, mode, &one, &zero, x.value, f32(theirs.x), x.value, f32(theirs.y),
                  per_channel.value, f32(theirs.gamma), f32(theirs.beta), factor,
                  f32(theirs.moving_mean), f32(theirs.moving_var), kEpsilon, f32(theirs.saved_mean),
                  f32(theirs.saved_inv_std)),
              "cudnnBatchNormalizationForwardTraining"))
      return;
    call(cudnnBatchNormalizationBackward(handle.value, mode, &one, &zero, &one, &zero, x.value,
                                         f32(theirs.x), x.value, f32(theirs.dy), x.value,
                                         f32(theirs.dx), per_channel.value, f32(theirs.gamma),
                                         f32(theirs.dgamma), f32(theirs.dbeta), kEpsilon,
                                         f32(theirs.saved_mean), f32(theirs.saved_inv_std)),
         "cudnnBatchNormalizationBackward");
  };
  const auto ex = [&] {
    if (!call(cudnnBatchNormalizationForwardTrainingEx(
                  handle.value, mode, ops, &one, &zero, x.value, f32(theirs.x), nullptr, nullptr,
                  x.value, f32(theirs.y), per_channel.value, f32(theirs.gamma), f32(theirs.beta),
                  factor, f32(theirs.moving_mean), f32(theirs.moving_var), kEpsilon,
                  f32(theirs.saved_mean), f32(theirs.saved_inv_std), nullptr, workspace.raw_data(),
                  forward_bytes, reserve.raw_data(), reserve_bytes),
              "cudnnBatchNormalizationForwardTrainingEx"))
      return;
    call(cudnnBatchNormalizationBackwardEx(
             handle.value, mode, ops, &one, &zero, &one, &zero, x.value, f32(theirs.x), x.value,
             f32(theirs.y), x.value, f32(theirs.dy), nullptr, nullptr, x.value, f32(theirs.dx),
             per_channel.value, f32(theirs.gamma), f32(theirs.beta), f32(theirs.dgamma),
             f32(theirs.dbeta), kEpsilon, f32(theirs.saved_mean), f32(theirs.saved_inv_std),
             nullptr, workspace.raw_data(), backward_bytes, reserve.raw_data(), reserve_bytes),
         "cudnnBatchNormalizationBackwardEx");
  };
  const bool timed = how == CudnnBatchNormCall::persistent_ex ? time_passes(state,
                                                                            [&] {
                                                                              if (call.ok()) ex();
                                                                            })
                                                              : time_passes(state, [&] {
                                                                  if (call.ok()) plain();
                                                                });
  if (!timed) return;
  TabulaBatchNorm{session, shape}(ours);
  synchronize(state);
  state.counters["max_abs_diff"] = max_diff({{&ours.y, &theirs.y}, {&ours.dx, &theirs.dx}});
  state.counters["max_rel_diff_sums"] =
      max_diff({{&ours.dgamma, &theirs.dgamma}, {&ours.dbeta, &theirs.dbeta}}, true);
  set_bandwidth(state, shape);
  state.SetLabel(how == CudnnBatchNormCall::spatial      ? "cuDNN, spatial"
                 : how == CudnnBatchNormCall::persistent ? "cuDNN, spatial persistent"
                                                         : "cuDNN Ex, spatial persistent");
}
#endif

// The buffers of one 2x2 max pooling, forward and backward, on the current session's GPU.
struct PoolBuffers {
  explicit PoolBuffers(const Activation& a, const td::Window2d& w)
      : x(tb::from_vector(distinct_values(a.numel()))),
        dx(tb::zeros({a.numel()})),
        y(tb::zeros({w.batch * w.out_h * w.out_w * w.channels})),
        dy(tb::from_vector(values(w.batch * w.out_h * w.out_w * w.channels))),
        argmax(tb::zeros({w.batch * w.out_h * w.out_w * w.channels})) {}

  tb::Tensor x, dx, y, dy, argmax;  // argmax: int32 in float32's room
};

td::Window2d pool_window(const Activation& a) {
  td::Window2d w = td::make_window("MaxPooling2D", a.name, tb::Shape{a.height, a.width, a.channels},
                                   "pool_size", {2, 2}, {2, 2}, false);
  w.batch = a.batch;
  return w;
}

void tabula_max_pool(const td::Window2d& w, const PoolBuffers& b) {
  td::Kernels& kernels = td::kernels_for(tb::Device::cuda(0));
  auto* argmax = static_cast<std::int32_t*>(b.argmax.raw_data());
  kernels.max_pool_forward(w, f32(b.x), f32(b.y), argmax);
  kernels.max_pool_backward(w, f32(b.dy), argmax, f32(b.dx));
}

void BM_MaxPool(benchmark::State& state, Activation shape) {
  tb::Session session({.device = tb::Device::cuda(0), .name = "max_pool_bench"});
  tb::SessionScope scope(session);
  const td::Window2d w = pool_window(shape);
  const PoolBuffers buffers(shape, w);
  if (!time_passes(state, [&] { tabula_max_pool(w, buffers); })) return;
  state.SetItemsProcessed(state.iterations() * shape.batch);
  state.SetLabel("tabula");
}

#if TABULA_BENCH_CUDNN
void BM_CudnnMaxPool(benchmark::State& state, Activation shape) {
  tb::Session session({.device = tb::Device::cuda(0), .name = "max_pool_bench"});
  tb::SessionScope scope(session);
  const td::Window2d w = pool_window(shape);
  const PoolBuffers ours(shape, w), theirs(shape, w);
  CudnnCalls call(state);
  CudnnHandle handle;
  CudnnTensor x, y;
  CudnnPooling pooling;
  if (!call.handle(handle) || !call.nhwc(x, w.batch, w.in_h, w.in_w, w.channels) ||
      !call.nhwc(y, w.batch, w.out_h, w.out_w, w.channels) ||
      !call(cudnnCreatePoolingDescriptor(&pooling.value), "cudnnCreatePoolingDescriptor") ||
      !call(cudnnSetPooling2dDescriptor(pooling.value, CUDNN_POOLING_MAX, CUDNN_NOT_PROPAGATE_NAN,
                                        2, 2, 0, 0, 2, 2),
            "cudnnSetPooling2dDescriptor"))
    return;
  const float one = 1.0f, zero = 0.0f;
  const auto pass = [&] {
    if (call.ok() && call(cudnnPoolingForward(handle.value, pooling.value, &one, x.value,
                                              f32(theirs.x), &zero, y.value, f32(theirs.y)),
                          "cudnnPoolingForward"))
      call(cudnnPoolingBackward(handle.value, pooling.value, &one, y.value, f32(theirs.y), y.value,
                                f32(theirs.dy), x.value, f32(theirs.x), &zero, x.value,
                                f32(theirs.dx)),
           "cudnnPoolingBackward");
  };
  if (!time_passes(state, pass)) return;
  tabula_max_pool(w, ours);
  synchronize(state);
  state.counters["max_abs_diff"] = max_diff({{&ours.y, &theirs.y}, {&ours.dx, &theirs.dx}});
  state.SetItemsProcessed(state.iterations() * shape.batch);
  state.SetLabel("cuDNN");
}
#endif

// An LSTM layer (Keras's LSTM(units), which returns the last h) over batch x timesteps x
// features.
struct Recurrence {
  const char* name;
  index_t batch, timesteps, features, units;
};

// The benchmark LSTM (train_bench --workload lstm), the widest tabula runs in one launch per
// direction, and wider ones it runs step by step (a GEMM and a step kernel per timestep).
const Recurrence kRecurrences[] = {
    {"lstm_workload_64x50x1_u64", 64, 50, 1, 64},
    {"64x50x32_u128", 64, 50, 32, 128},
    {"64x50x64_u256", 64, 50, 64, 256},
    {"256x50x128_u512", 256, 50, 128, 512},
};

// tabula's LSTM layer, built and initialised on the current session's GPU with its batch's
// buffers: one training forward and one backward pass (input and weight gradients) per call.
struct TabulaLstm {
  explicit TabulaLstm(const Recurrence& r)
      : layer(tb::layers::LSTM(r.units)),
        x(tb::from_vector(values(r.batch * r.timesteps * r.features),
                          tb::Shape{r.batch, r.timesteps, r.features})),
        y(tb::zeros({r.batch, r.units})),
        dy(tb::from_vector(values(r.batch * r.units, 2), tb::Shape{r.batch, r.units})),
        dx(tb::zeros({r.batch, r.timesteps, r.features})) {
    layer->build(tb::Shape{r.timesteps, r.features});
    tb::RandomGenerator rng(7);
    layer->initialize(rng);
    layer->allocate_gradients();
    layer->reserve(r.batch);
  }
  void operator()() const {
    layer->forward(x, y, true);
    layer->backward(x, y, dy, &dx);
  }

  tb::Layer layer;
  tb::Tensor x, y, dy, dx;
};

void BM_Lstm(benchmark::State& state, Recurrence r) {
  tb::Session session({.device = tb::Device::cuda(0), .name = "lstm_bench"});
  tb::SessionScope scope(session);
  const TabulaLstm lstm(r);
  if (!time_passes(state, lstm)) return;
  state.SetItemsProcessed(state.iterations() * r.batch);
  state.SetLabel("tabula");
}

#if TABULA_BENCH_CUDNN
using CudnnDropout = CudnnOwned<cudnnDropoutDescriptor_t, cudnnDestroyDropoutDescriptor>;
using CudnnRnn = CudnnOwned<cudnnRNNDescriptor_t, cudnnDestroyRNNDescriptor>;
using CudnnRnnData = CudnnOwned<cudnnRNNDataDescriptor_t, cudnnDestroyRNNDataDescriptor>;

// One float of tabula's LSTM weights and where cuDNN keeps it in its weight space (and its
// gradient in the gradients' space, laid out alike).
struct WeightSlot {
  int parameter;       // tabula's: 0 kernel, 1 recurrent kernel, 2 bias
  std::size_t tabula;  // the float's index in it
  std::size_t cudnn;   // the float's index in the weight space
};

// Every slot of an LSTM of `r`'s geometry in cuDNN's weight space `space` of `rnn` (single
// input bias): gate g's input matrix (linear layer g) and recurrent matrix (4 + g) are
// (units, inputs) as their descriptors' strides say, the transposes of tabula's (inputs,
// 4 units) columns g * units ...; tabula's gate order (i, f, g, o) is cuDNN's. Empty (the row
// ended) where cuDNN's layout is not that.
std::vector<WeightSlot> lstm_weight_slots(CudnnCalls& call, benchmark::State& state,
                                          cudnnHandle_t handle, cudnnRNNDescriptor_t rnn,
                                          std::size_t bytes, const tb::Tensor& space,
                                          const Recurrence& r) {
  CudnnTensor matrix, vector;
  if (!call(cudnnCreateTensorDescriptor(&matrix.value), "cudnnCreateTensorDescriptor") ||
      !call(cudnnCreateTensorDescriptor(&vector.value), "cudnnCreateTensorDescriptor"))
    return {};
  const auto index = [](index_t v) { return static_cast<std::size_t>(v); };
  const index_t U = r.units, G = 4 * r.units;
  auto* base = static_cast<char*>(space.raw_data());
  const auto at = [&](void* p) { return index((static_cast<char*>(p) - base) / 4); };
  std::vector<WeightSlot> slots;
  for (int id = 0; id < 8; ++id) {
    const int gate = id % 4;
    const bool recurrent = id >= 4;
    const index_t inputs = recurrent ? U : r.features;
    void* m = nullptr;
    void* b = nullptr;
    cudnnDataType_t type;
    int rank = 0, dims[3] = {}, strides[3] = {};
    if (!call(cudnnGetRNNWeightParams(handle, rnn, 0, bytes, base, id, matrix.value, &m,
                                      vector.value, &b),
              "cudnnGetRNNWeightParams") ||
        !call(cudnnGetTensorNdDescriptor(matrix.value, 3, &type, &rank, dims, strides),
              "cudnnGetTensorNdDescriptor(matrix)"))
      return {};
    if (!m || rank != 3 || dims[1] != U || dims[2] != inputs) {
      state.SkipWithError("cuDNN's LSTM matrix is not (units, inputs)");
      return {};
    }
    for (index_t u = 0; u < U; ++u)
      for (index_t j = 0; j < inputs; ++j)
        slots.push_back({recurrent ? 1 : 0, index(j * G + gate * U + u),
                         at(m) + index(u * strides[1] + j * strides[2])});
    if (b && !recurrent) {
      if (!call(cudnnGetTensorNdDescriptor(vector.value, 3, &type, &rank, dims, strides),
                "cudnnGetTensorNdDescriptor(bias)"))
        return {};
      for (index_t u = 0; u < U; ++u)
        slots.push_back({2, index(gate * U + u), at(b) + index(u * strides[1])});
    }
  }
  return slots;
}

// The values of `parameters` (kernel, recurrent kernel, bias) or of their gradients, on the
// host.
std::vector<std::vector<float>> lstm_floats(const std::vector<tb::Parameter*>& parameters,
                                            bool gradients) {
  std::vector<std::vector<float>> floats;
  for (const tb::Parameter* p : parameters)
    floats.push_back((gradients ? p->gradient : p->value).to_vector<float>());
  return floats;
}

// cuDNN's LSTM (its RNN API, fp32 arithmetic as tabula's) against tabula's layer with the same
// weights: a training forward over the sequence, then the data and weight gradients, with dL/dh
// at the last step only (what an LSTM that returns the last h receives).
void BM_CudnnLstm(benchmark::State& state, Recurrence r) {
  tb::Session session({.device = tb::Device::cuda(0), .name = "lstm_bench"});
  tb::SessionScope scope(session);
  const TabulaLstm ours(r);
  const auto i = [](index_t v) { return static_cast<int>(v); };
  const int B = i(r.batch), T = i(r.timesteps), F = i(r.features), U = i(r.units);
  const std::vector<int> lengths(static_cast<std::size_t>(B), T);
  CudnnCalls call(state);
  CudnnHandle handle;
  CudnnDropout dropout;
  CudnnRnn rnn;
  CudnnRnnData x, y;
  CudnnTensor h;
  const int h_dims[3] = {1, B, U}, h_strides[3] = {B * U, U, 1};
  if (!call.handle(handle) ||
      !call(cudnnCreateDropoutDescriptor(&dropout.value), "cudnnCreateDropoutDescriptor") ||
      !call(cudnnSetDropoutDescriptor(dropout.value, handle.value, 0.0f, nullptr, 0, 0),
            "cudnnSetDropoutDescriptor") ||
      !call(cudnnCreateRNNDescriptor(&rnn.value), "cudnnCreateRNNDescriptor") ||
      !call(cudnnSetRNNDescriptor_v8(
                rnn.value, CUDNN_RNN_ALGO_STANDARD, CUDNN_LSTM, CUDNN_RNN_SINGLE_INP_BIAS,
                CUDNN_UNIDIRECTIONAL, CUDNN_LINEAR_INPUT, CUDNN_DATA_FLOAT, CUDNN_DATA_FLOAT,
                CUDNN_FMA_MATH, F, U, U, 1, dropout.value, CUDNN_RNN_PADDED_IO_ENABLED),
            "cudnnSetRNNDescriptor_v8") ||
      !call(cudnnCreateRNNDataDescriptor(&x.value), "cudnnCreateRNNDataDescriptor") ||
      !call(cudnnSetRNNDataDescriptor(x.value, CUDNN_DATA_FLOAT,
                                      CUDNN_RNN_DATA_LAYOUT_BATCH_MAJOR_UNPACKED, T, B, F,
                                      lengths.data(), nullptr),
            "cudnnSetRNNDataDescriptor(x)") ||
      !call(cudnnCreateRNNDataDescriptor(&y.value), "cudnnCreateRNNDataDescriptor") ||
      !call(cudnnSetRNNDataDescriptor(y.value, CUDNN_DATA_FLOAT,
                                      CUDNN_RNN_DATA_LAYOUT_BATCH_MAJOR_UNPACKED, T, B, U,
                                      lengths.data(), nullptr),
            "cudnnSetRNNDataDescriptor(y)") ||
      !call(cudnnCreateTensorDescriptor(&h.value), "cudnnCreateTensorDescriptor") ||
      !call(cudnnSetTensorNdDescriptor(h.value, CUDNN_DATA_FLOAT, 3, h_dims, h_strides),
            "cudnnSetTensorNdDescriptor(h)"))
    return;
  std::size_t weight_bytes = 0, work_bytes = 0, reserve_bytes = 0;
  if (!call(cudnnGetRNNWeightSpaceSize(handle.value, rnn.value, &weight_bytes),
            "cudnnGetRNNWeightSpaceSize") ||
      !call(cudnnGetRNNTempSpaceSizes(handle.value, rnn.value, CUDNN_FWD_MODE_TRAINING, x.value,
                                      &work_bytes, &reserve_bytes),
            "cudnnGetRNNTempSpaceSizes"))
    return;
  const tb::Tensor weights = tb::zeros({floats(weight_bytes)});
  const tb::Tensor dweights = tb::zeros({floats(weight_bytes)});
  const tb::Tensor work = tb::zeros({floats(work_bytes)});
  const tb::Tensor reserve = tb::zeros({floats(reserve_bytes)});
  const tb::Tensor sequence_lengths =
      tb::from_vector(std::vector<std::int32_t>(lengths.begin(), lengths.end()));
  const tb::Tensor y_all = tb::zeros({r.batch * r.timesteps * r.units});
  const tb::Tensor dx = tb::zeros({r.batch * r.timesteps * r.features});
  std::vector<float> dy_host(static_cast<std::size_t>(r.batch * r.timesteps * r.units), 0.0f);
  const std::vector<float> dy_last = values(r.batch * r.units, 2);  // as ours.dy
  for (index_t b = 0; b < r.batch; ++b)
    std::copy_n(dy_last.begin() + b * r.units, r.units,
                dy_host.begin() + (b * r.timesteps + r.timesteps - 1) * r.units);
  const tb::Tensor dy_all = tb::from_vector(dy_host);
  const std::vector<WeightSlot> slots =
      lstm_weight_slots(call, state, handle.value, rnn.value, weight_bytes, weights, r);
  if (slots.empty()) return;
  const std::vector<tb::Parameter*> parameters = ours.layer->parameters();
  {
    const std::vector<std::vector<float>> from = lstm_floats(parameters, false);
    std::vector<float> host(weight_bytes / sizeof(float), 0.0f);
    for (const WeightSlot& slot : slots) host[slot.cudnn] = from[slot.parameter][slot.tabula];
    td::copy_bytes(weights.raw_data(), weights.device(), host.data(), tb::Device::cpu(),
                   weight_bytes);
  }
  const auto* lengths_on_gpu = static_cast<const std::int32_t*>(sequence_lengths.raw_data());
  const auto pass = [&] {
    // The weight gradients add up (CUDNN_WGRAD_MODE_ADD): from zero, as tabula's are written.
    if (!call.ok()) return;
    call(cudaMemsetAsync(dweights.raw_data(), 0, weight_bytes, cudaStreamPerThread),
         "cudaMemsetAsync(dweights)");
    call(cudnnRNNForward(handle.value, rnn.value, CUDNN_FWD_MODE_TRAINING, lengths_on_gpu, x.value,
                         ours.x.raw_data(), y.value, y_all.raw_data(), h.value, nullptr, nullptr,
                         h.value, nullptr, nullptr, weight_bytes, weights.raw_data(), work_bytes,
                         work.raw_data(), reserve_bytes, reserve.raw_data()),
         "cudnnRNNForward");
    if (!call.ok()) return;
    call(cudnnRNNBackwardData_v8(handle.value, rnn.value, lengths_on_gpu, y.value, y_all.raw_data(),
                                 dy_all.raw_data(), x.value, dx.raw_data(), h.value, nullptr,
                                 nullptr, nullptr, h.value, nullptr, nullptr, nullptr, weight_bytes,
                                 weights.raw_data(), work_bytes, work.raw_data(), reserve_bytes,
                                 reserve.raw_data()),
         "cudnnRNNBackwardData_v8");
    if (!call.ok()) return;
    call(cudnnRNNBackwardWeights_v8(handle.value, rnn.value, CUDNN_WGRAD_MODE_ADD, lengths_on_gpu,
                                    x.value, ours.x.raw_data(), h.value, nullptr, y.value,
                                    y_all.raw_data(), weight_bytes, dweights.raw_data(), work_bytes,
                                    work.raw_data(), reserve_bytes, reserve.raw_data()),
         "cudnnRNNBackwardWeights_v8");
  };
  if (!time_passes(state, pass)) return;
  ours();
  synchronize(state);
  // cuDNN's h at the last step against tabula's output, both dx, and (relative to their
  // largest magnitude: sums over every row and step) the weight gradients.
  std::vector<float> theirs_h;
  const std::vector<float> theirs_y = y_all.to_vector<float>();
  for (index_t b = 0; b < r.batch; ++b)
    theirs_h.insert(theirs_h.end(),
                    theirs_y.begin() + (b * r.timesteps + r.timesteps - 1) * r.units,
                    theirs_y.begin() + (b * r.timesteps + r.timesteps) * r.units);
  state.counters["max_abs_diff"] =
      worse(max_diff(ours.y.to_vector<float>(), theirs_h),
            max_diff(ours.dx.to_vector<float>(), dx.to_vector<float>()));
  const std::vector<std::vector<float>> ours_dw = lstm_floats(parameters, true);
  std::vector<std::vector<float>> theirs_dw(ours_dw.size());
  for (std::size_t k = 0; k < ours_dw.size(); ++k) theirs_dw[k].resize(ours_dw[k].size());
  const std::vector<float> theirs_space = dweights.to_vector<float>();
  for (const WeightSlot& slot : slots)
    theirs_dw[slot.parameter][slot.tabula] = theirs_space[slot.cudnn];
  double worst = 0.0;
  for (std::size_t k = 0; k < ours_dw.size(); ++k)
    worst = worse(worst, max_diff(ours_dw[k], theirs_dw[k], true));
  state.counters["max_rel_diff_weight_gradients"] = worst;
  state.SetItemsProcessed(state.iterations() * r.batch);
  state.SetLabel("cuDNN");
}
#endif

// Rows named BM_Cuda<what>/<shape>/<whose> (scripts/gpu-bundle-run tabulates them so). A row
// that throws (tabula reports a CUDA error so) ends with the message instead of ending the
// program, whose other rows and JSON would be lost.
template <typename Function, typename... Args>
void add(const std::string& name, Function function, Args... args) {
  benchmark::RegisterBenchmark(name.c_str(),
                               [=](benchmark::State& state) {
                                 try {
                                   function(state, args...);
                                 } catch (const std::exception& e) {
                                   state.SkipWithError(e.what());
                                 }
                               })
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
}

void register_benchmarks() {
  for (const Layer& layer : kLayers)
    for (const bool cudnn : {true, false})
      add(std::string("BM_CudaConvolution/") + layer.name + (cudnn ? "/cudnn" : "/unfolded"),
          BM_Convolution, layer, cudnn);
  for (const Activation& shape : kNormalised) {
    const std::string name = std::string("BM_CudaBatchNorm/") + shape.name;
    add(name + "/tabula", BM_BatchNorm, shape);
#if TABULA_BENCH_CUDNN
    add(name + "/cudnn_spatial", BM_CudnnBatchNorm, shape, CudnnBatchNormCall::spatial);
    add(name + "/cudnn_persistent", BM_CudnnBatchNorm, shape, CudnnBatchNormCall::persistent);
    add(name + "/cudnn_persistent_ex", BM_CudnnBatchNorm, shape, CudnnBatchNormCall::persistent_ex);
#endif
  }
  for (const Activation& shape : kPooled) {
    const std::string name = std::string("BM_CudaMaxPool/") + shape.name;
    add(name + "/tabula", BM_MaxPool, shape);
#if TABULA_BENCH_CUDNN
    add(name + "/cudnn", BM_CudnnMaxPool, shape);
#endif
  }
  for (const Recurrence& r : kRecurrences) {
    const std::string name = std::string("BM_CudaLstm/") + r.name;
    add(name + "/tabula", BM_Lstm, r);
#if TABULA_BENCH_CUDNN
    add(name + "/cudnn", BM_CudnnLstm, r);
#endif
  }
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
    std::fprintf(stderr, "cudnn_bench: no CUDA device present: no rows to run\n");
#else
  std::fprintf(stderr, "cudnn_bench: this build of tabula has no CUDA: no rows to run\n");
#endif
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
