// Every CUDA kernel against the CPU's, in the style of ggml's test-backend-ops: the same
// random operands on both devices, the results within rounding of each other. Skipped, with
// the reason, where no CUDA device is present.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "backend/cpu/cpu_kernels.hpp"
#include "backend/cpu/cpu_normalization_kernels.hpp"
#include "backend/cpu/cpu_recurrent_kernels.hpp"
#include "backend/cuda/cuda_convolution_kernels.hpp"
#include "backend/cuda/cuda_recurrent_kernels.hpp"
#include "backend/detail/convolution_kernels.hpp"
#include "backend/detail/kernels.hpp"
#include "backend/detail/normalization_kernels.hpp"
#include "backend/detail/recurrent_kernels.hpp"
#include "backend/lstm_sequence_case.hpp"
#include "backend/random_floats.hpp"
#include "nn/detail/batch_score.hpp"
#include "nn/detail/loss.hpp"
#include "nn/detail/metric.hpp"
#include "session/detail/session_scratch.hpp"
#include "support/cuda_device.hpp"
#include "tabula/core/errors.hpp"
#include "tabula/core/tensor.hpp"
#include "tabula/session/session.hpp"
#include "tabula/session/session_scope.hpp"

namespace tabula::detail {
namespace {

using testing::random_floats;

// Whether CUDA convolutions plan in cuDNN now (a build without CUDA has none, nor the
// function that says so).
bool cudnn_plans_convolutions() {
#if TABULA_WITH_CUDA
  return CudaConvolutionKernels::cudnn_enabled();
#else
  return false;
#endif
}

// A CUDA session made current, and device copies of host vectors.
class CudaKernelsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TABULA_REQUIRE_CUDA_DEVICE();
    session_ = std::make_unique<Session>(SessionOptions{.device = Device::cuda(0), .name = "gpu"});
    scope_ = std::make_unique<SessionScope>(*session_);
  }
  void TearDown() override {
    scope_.reset();
    session_.reset();
  }

  Kernels& gpu() { return kernels_for(Device::cuda(0)); }
  Tensor put(const std::vector<float>& v) { return from_vector(v); }
  static float* at(const Tensor& t) { return static_cast<float*>(t.raw_data()); }
  static std::vector<float> get(const Tensor& t) { return t.to_vector<float>(); }

  std::unique_ptr<Session> session_;
  std::unique_ptr<SessionScope> scope_;
  CpuKernels cpu_;
};

// Within `tolerance` of the CPU, relative to the CPU's magnitude where it is above 1.
void expect_close(const std::vector<float>& got, const std::vector<float>& expected,
                  float tolerance, const std::string& what) {
  ASSERT_EQ(got.size(), expected.size()) << what;
  int reported = 0;
  for (std::size_t i = 0; i < got.size() && reported < 5; ++i) {
    const float bound = tolerance * std::max(1.0f, std::fabs(expected[i]));
    if (!(std::fabs(got[i] - expected[i]) <= bound)) {
      ADD_FAILURE() << what << " at " << i << ": CUDA " << got[i] << ", CPU " << expected[i];
      ++reported;
    }
  }
}

// Sets an environment variable for the scope of a test, and restores it after.
class ScopedEnvironment {
 public:
  explicit ScopedEnvironment(const char* name) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
  }
  ~ScopedEnvironment() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }
  void set(const char* value) const { setenv(name_, value, 1); }
  void unset() const { unsetenv(name_); }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// No device needed: the switch is read before any plan asks cuDNN anything. A build without
// CUDA has no CUDA convolutions to switch.
TEST(CudnnSwitch, TabulaCudnnOffMakesConvolutionsUnfoldAndAnUnknownValueIsRefused) {
#if !TABULA_WITH_CUDA
  GTEST_SKIP() << "skipped: this build of tabula has no CUDA";
#else
  const ScopedEnvironment env("TABULA_CUDNN");
  env.unset();
  EXPECT_EQ(CudaConvolutionKernels::cudnn_enabled(), CudaConvolutionKernels::has_cudnn());
  for (const char* on : {"on", "1"}) {
    env.set(on);
    EXPECT_EQ(CudaConvolutionKernels::cudnn_enabled(), CudaConvolutionKernels::has_cudnn()) << on;
  }
  for (const char* off : {"off", "0"}) {
    env.set(off);
    EXPECT_FALSE(CudaConvolutionKernels::cudnn_enabled()) << off;
  }
  env.set("maybe");
  try {
    (void)CudaConvolutionKernels::cudnn_enabled();
    FAIL() << "TABULA_CUDNN=maybe was taken";
  } catch (const InvalidArgument& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("TABULA_CUDNN"), std::string::npos) << what;
    EXPECT_NE(what.find("'maybe'"), std::string::npos) << what;
  }
  if (CudaConvolutionKernels::has_cudnn()) {
    // A description reports the bad value instead of refusing to describe.
    std::string described;
    EXPECT_NO_THROW(described = CudaConvolutionKernels::library());
    EXPECT_NE(described.find("TABULA_CUDNN"), std::string::npos) << described;
  }
#endif
}

TEST_F(CudaKernelsTest, GemmMatchesTheCpuForEveryTransposition) {
  SessionScratch gpu_scratch(session_->core(), Device::cuda(0));
  Session host;
  SessionScratch cpu_scratch(host.core(), Device::cpu());
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (index_t k : {index_t{0}, index_t{1}, index_t{300}}) {
        const index_t m = 129, n = 70;
        const auto a = random_floats(static_cast<std::size_t>(std::max<index_t>(m * k, 1)), 1);
        const auto b = random_floats(static_cast<std::size_t>(std::max<index_t>(k * n, 1)), 2);
        const auto c0 = random_floats(static_cast<std::size_t>(m * n), 3);
        const index_t lda = ta ? m : std::max<index_t>(k, 1),
                      ldb = tb ? std::max<index_t>(k, 1) : n;
        auto c_cpu = c0;
        cpu_.gemm(cpu_scratch, ta, tb, m, n, k, 1.5f, a.data(), lda, b.data(), ldb, 0.5f,
                  c_cpu.data(), n);
        const Tensor da = put(a), db = put(b), dc = put(c0);
        gpu().gemm(gpu_scratch, ta, tb, m, n, k, 1.5f, at(da), lda, at(db), ldb, 0.5f, at(dc), n);
        expect_close(get(dc), c_cpu, 1e-4f,
                     "gemm " + std::to_string(k) + (ta ? " A^T" : "") + (tb ? " B^T" : ""));
      }
}

TEST_F(CudaKernelsTest, DenseLayerKernelsMatchTheCpu) {
  const index_t rows = 64, cols = 33, n = rows * cols;
  const auto x = random_floats(n, 4), bias = random_floats(cols, 5), dy = random_floats(n, 6);
  auto y_cpu = x;
  cpu_.add_bias(y_cpu.data(), bias.data(), rows, cols);
  const Tensor y = put(x), b = put(bias);
  gpu().add_bias(at(y), at(b), rows, cols);
  expect_close(get(y), y_cpu, 1e-6f, "add_bias");

  SessionScratch gpu_scratch(session_->core(), Device::cuda(0));
  Session host;
  SessionScratch cpu_scratch(host.core(), Device::cpu());
  // One pass (few rows), and parts first: a convolution's bias at batch 64, an LSTM's gates.
  for (const auto& [r, c] : {std::pair<index_t, index_t>{rows, cols}, {43264, 32}, {3200, 256}}) {
    const auto g = random_floats(static_cast<std::size_t>(r * c), 7);
    std::vector<float> db_cpu(static_cast<std::size_t>(c));
    cpu_.sum_rows(cpu_scratch, g.data(), db_cpu.data(), r, c);
    const Tensor d = put(g), db = put(std::vector<float>(static_cast<std::size_t>(c), 9.0f));
    gpu().sum_rows(gpu_scratch, at(d), at(db), r, c);
    expect_close(get(db), db_cpu, 2e-4f,
                 "sum_rows of " + std::to_string(r) + " x " + std::to_string(c));
  }

  for (Activation f : {Activation::linear, Activation::relu, Activation::sigmoid, Activation::tanh,
                       Activation::softmax}) {
    auto biased_cpu = x;
    cpu_.bias_activation(biased_cpu.data(), bias.data(), f, rows, cols);
    const Tensor biased = put(x);
    gpu().bias_activation(at(biased), at(b), f, rows, cols);
    expect_close(get(biased), biased_cpu, 1e-6f, std::string(name_of(f)) + " after a bias");

    std::vector<float> out_cpu(n), dx_cpu(n);
    cpu_.activation_forward(f, x.data(), out_cpu.data(), rows, cols);
    cpu_.activation_backward(f, out_cpu.data(), dy.data(), dx_cpu.data(), rows, cols);
    const Tensor in = put(x), out = put(std::vector<float>(n)), g = put(dy),
                 dx = put(std::vector<float>(n));
    gpu().activation_forward(f, at(in), at(out), rows, cols);
    gpu().activation_backward(f, at(out), at(g), at(dx), rows, cols);
    expect_close(get(out), out_cpu, 1e-6f, std::string(name_of(f)) + " forward");
    expect_close(get(dx), dx_cpu, 1e-5f, std::string(name_of(f)) + " backward");
  }
}

TEST_F(CudaKernelsTest, DropoutMasksDropTheRateAndScaleTheKeptValues) {
  const index_t n = 1 << 20;
  const Tensor mask = put(std::vector<float>(n)), ones = put(std::vector<float>(n, 1.0f)),
               y = put(std::vector<float>(n));
  RandomGenerator rng(7);
  gpu().dropout_mask(at(mask), n, 0.25f, rng);
  gpu().multiply(at(ones), at(mask), 2.0f, at(y), n);
  const auto m = get(mask), out = get(y);
  double kept = 0;
  for (index_t i = 0; i < n; ++i) {
    ASSERT_TRUE(m[i] == 0.0f || m[i] == 1.0f) << i;
    ASSERT_EQ(out[i], 2.0f * m[i]) << i;
    kept += m[i];
  }
  EXPECT_NEAR(kept / static_cast<double>(n), 0.75, 0.002);
}

Window2d same_window(index_t batch, index_t h, index_t w, index_t c, index_t k, index_t stride) {
  const index_t oh = (h + stride - 1) / stride, ow = (w + stride - 1) / stride;
  const index_t ph = std::max<index_t>((oh - 1) * stride + k - h, 0);
  const index_t pw = std::max<index_t>((ow - 1) * stride + k - w, 0);
  return {batch, h, w, c, k, k, stride, stride, ph / 2, pw / 2, oh, ow};
}

TEST_F(CudaKernelsTest, ConvolutionAndPoolingKernelsMatchTheCpu) {
  for (const Window2d& w : {same_window(4, 28, 28, 3, 3, 1), same_window(3, 13, 11, 8, 2, 2),
                            Window2d{2, 9, 9, 5, 3, 3, 2, 2, 0, 0, 4, 4}}) {
    const index_t in = w.batch * w.in_h * w.in_w * w.channels;
    const index_t out = w.batch * w.out_h * w.out_w * w.channels;
    const index_t cols = w.batch * w.out_h * w.out_w * w.kernel_h * w.kernel_w * w.channels;
    const auto x = random_floats(in, 7), dy = random_floats(out, 8), dcols = random_floats(cols, 9);
    const std::string where = std::to_string(w.in_h) + "x" + std::to_string(w.in_w) + " k" +
                              std::to_string(w.kernel_h) + " s" + std::to_string(w.stride_h);
    const Tensor gx = put(x), gdy = put(dy), gcols = put(dcols);

    std::vector<float> c_cpu(cols), dx_cpu(in);
    cpu_.im2col(w, x.data(), 0, w.batch, c_cpu.data());
    cpu_.col2im(w, dcols.data(), 0, w.batch, dx_cpu.data());
    const Tensor gc = put(std::vector<float>(cols)), gdx = put(std::vector<float>(in));
    gpu().im2col(w, at(gx), 0, w.batch, at(gc));
    gpu().col2im(w, at(gcols), 0, w.batch, at(gdx));
    expect_close(get(gc), c_cpu, 0.0f, "im2col " + where);
    expect_close(get(gdx), dx_cpu, 1e-6f, "col2im " + where);

    std::vector<float> y_cpu(out), back_cpu(in);
    std::vector<std::int32_t> arg_cpu(out);
    cpu_.max_pool_forward(w, x.data(), y_cpu.data(), arg_cpu.data());
    cpu_.max_pool_backward(w, dy.data(), arg_cpu.data(), back_cpu.data());
    const Tensor gy = put(std::vector<float>(out)), gback = put(std::vector<float>(in));
    const Tensor garg = from_vector(std::vector<std::int32_t>(out));
    gpu().max_pool_forward(w, at(gx), at(gy), static_cast<std::int32_t*>(garg.raw_data()));
    gpu().max_pool_backward(w, at(gdy), static_cast<const std::int32_t*>(garg.raw_data()),
                            at(gback));
    expect_close(get(gy), y_cpu, 0.0f, "max_pool forward " + where);
    EXPECT_EQ(garg.to_vector<std::int32_t>(), arg_cpu) << "max_pool argmax " << where;
    expect_close(get(gback), back_cpu, 1e-6f, "max_pool backward " + where);

    cpu_.avg_pool_forward(w, x.data(), y_cpu.data());
    cpu_.avg_pool_backward(w, dy.data(), back_cpu.data());
    gpu().avg_pool_forward(w, at(gx), at(gy));
    gpu().avg_pool_backward(w, at(gdy), at(gback));
    expect_close(get(gy), y_cpu, 1e-6f, "avg_pool forward " + where);
    expect_close(get(gback), back_cpu, 1e-6f, "avg_pool backward " + where);
  }
}

// Every parameter's update in one launch per 32 tensors: 40 tensors of sizes around the 4096-
// element chunks (one empty), each rule with and without its optional state (SGD's velocity,
// RMSprop's momentum: null), against the CPU's update of each tensor alone.
TEST_F(CudaKernelsTest, BatchedOptimizerUpdatesMatchTheCpuTensorByTensor) {
  std::vector<index_t> sizes;
  for (int i = 0; i < 40; ++i) sizes.push_back(i == 7 ? 0 : (i * 1543) % 9000 + 1);
  sizes[3] = 4096;
  sizes[4] = 4097;
  struct Buffers {
    std::vector<float> w, g, s0, s1;
    Tensor gw, gg, gs0, gs1;
  };
  for (const std::string rule : {"sgd", "plain sgd", "adam", "rmsprop", "plain rmsprop"}) {
    const bool plain = rule.starts_with("plain");
    std::vector<Buffers> all;
    std::vector<UpdateTensor> cpu_tensors, gpu_tensors;
    all.reserve(sizes.size());
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      const auto n = static_cast<std::size_t>(sizes[i]);
      Buffers& b = all.emplace_back();
      b.w = random_floats(n, 20 + unsigned(i));
      b.g = random_floats(n, 80 + unsigned(i));
      b.s0 = random_floats(n, 140 + unsigned(i));
      b.s1 = random_floats(n, 200 + unsigned(i));
      for (float& v : b.s1) v = std::fabs(v);  // Adam's v, RMSprop's mean square: not negative
      if (rule.ends_with("rmsprop")) std::swap(b.s0, b.s1);
      b.gw = put(b.w), b.gg = put(b.g), b.gs0 = put(b.s0), b.gs1 = put(b.s1);
      UpdateTensor on_cpu{b.w.data(), b.g.data(), b.s0.data(), b.s1.data(), sizes[i]};
      UpdateTensor on_gpu{at(b.gw), at(b.gg), at(b.gs0), at(b.gs1), sizes[i]};
      if (rule == "plain sgd") on_cpu.state0 = on_gpu.state0 = nullptr;      // no velocity
      if (rule == "plain rmsprop") on_cpu.state1 = on_gpu.state1 = nullptr;  // no momentum
      cpu_tensors.push_back(on_cpu);
      gpu_tensors.push_back(on_gpu);
    }
    if (rule.ends_with("sgd")) {
      const float momentum = plain ? 0.0f : 0.9f;
      for (const UpdateTensor& t : cpu_tensors)
        cpu_.sgd_update(t.w, t.g, t.state0, t.n, 0.1f, momentum, !plain);
      gpu().sgd_update_many(gpu_tensors, 0.1f, momentum, !plain);
    } else if (rule == "adam") {
      for (const UpdateTensor& t : cpu_tensors)
        cpu_.adam_update(t.w, t.g, t.state0, t.state1, t.n, 0.01f, 0.9f, 0.999f, 1e-7f, 0.004f);
      gpu().adam_update_many(gpu_tensors, 0.01f, 0.9f, 0.999f, 1e-7f, 0.004f);
    } else {
      const float momentum = plain ? 0.0f : 0.5f;
      for (const UpdateTensor& t : cpu_tensors)
        cpu_.rmsprop_update(t.w, t.g, t.state0, t.state1, t.n, 0.001f, 0.9f, momentum, 1e-7f);
      gpu().rmsprop_update_many(gpu_tensors, 0.001f, 0.9f, momentum, 1e-7f);
    }
    for (std::size_t i = 0; i < all.size(); ++i) {
      const std::string what =
          rule + " tensor " + std::to_string(i) + " of " + std::to_string(sizes[i]);
      expect_close(get(all[i].gw), all[i].w, 1e-5f, what + ": weights");
      expect_close(get(all[i].gs0), all[i].s0, 1e-5f, what + ": first state");
      expect_close(get(all[i].gs1), all[i].s1, 1e-5f, what + ": second state");
    }
  }
}

// Whole convolutions, forward and backward, on the GPU against the CPU's unfolding: in cuDNN
// where the build has it and the padding is symmetric, else unfolded into cuBLAS GEMMs; at the
// plan's batch and at a smaller one (a last batch).
TEST_F(CudaKernelsTest, ConvolutionsMatchTheCpuInCudnnOrUnfolded) {
  SessionScratch gpu_scratch(session_->core(), Device::cuda(0));
  Session host;
  SessionScratch cpu_scratch(host.core(), Device::cpu());
  ConvolutionKernels& cpu_conv = convolution_kernels_for(Device::cpu());
  ConvolutionKernels& gpu_conv = convolution_kernels_for(Device::cuda(0));
  // Whether cuDNN has a deterministic float32 algorithm for odd channel counts is its own
  // affair (those may unfold); for the benchmark CNN's second layer it must have one.
  enum Expect { unfolds, cudnn, either };
  const struct {
    Window2d window;
    index_t filters;
    Expect expect;
  } cases[] = {{{4, 13, 13, 32, 3, 3, 1, 1, 0, 0, 11, 11}, 64, cudnn},  // the CNN's conv2
               {{5, 12, 10, 3, 3, 3, 1, 1, 0, 0, 10, 8}, 7, either},    // valid 3x3
               {same_window(4, 9, 9, 4, 3, 1), 6, either},              // same 3x3: 1 each side
               {same_window(3, 13, 11, 2, 2, 2), 4, unfolds},           // same 2x2: 1 after only
               {{2, 15, 15, 3, 5, 5, 2, 2, 0, 0, 6, 6}, 5, either},     // valid 5x5, stride 2
               {{3, 6, 6, 8, 1, 1, 1, 1, 0, 0, 6, 6}, 5, either}};      // 1x1
  for (const auto& test : cases) {
    Convolution2d c{.window = test.window, .filters = test.filters};
    const std::string what =
        std::to_string(c.window.in_h) + "x" + std::to_string(c.window.in_w) + "x" +
        std::to_string(c.window.channels) + " k" + std::to_string(c.window.kernel_h) + " s" +
        std::to_string(c.window.stride_h) + " filters " + std::to_string(c.filters);
    const ConvolutionPlan cpu_plan = cpu_conv.plan_conv2d(cpu_scratch, c, true);
    const ConvolutionPlan gpu_plan = gpu_conv.plan_conv2d(gpu_scratch, c, true);
    if (test.expect == unfolds) {
      EXPECT_TRUE(gpu_plan.unfolds()) << what << ": cuDNN cannot pad one side only";
    } else if (test.expect == cudnn && cudnn_plans_convolutions()) {
      EXPECT_FALSE(gpu_plan.unfolds()) << what << ": cuDNN found no deterministic algorithm";
    }
    const Tensor gpu_workspace = put(std::vector<float>(gpu_plan.workspace_bytes / 4 + 1));
    std::vector<float> cpu_workspace(cpu_plan.workspace_bytes / 4 + 1);

    for (index_t batch : {c.window.batch, c.window.batch - 1}) {
      c.window.batch = batch;
      const std::string where = what + ", batch " + std::to_string(batch);
      const index_t in = batch * c.window.in_h * c.window.in_w * c.window.channels;
      const index_t out = batch * c.pixels() * c.filters;
      const auto x = random_floats(in, 11), dy = random_floats(out, 12),
                 kernel = random_floats(c.patch() * c.filters, 13);
      std::vector<float> y(out), dkernel(kernel.size()), dx(in);
      cpu_conv.conv2d_forward(cpu_, cpu_scratch, cpu_plan, c, x.data(), kernel.data(), y.data(),
                              cpu_workspace.data());
      cpu_conv.conv2d_backward(cpu_, cpu_scratch, cpu_plan, c, x.data(), dy.data(), kernel.data(),
                               dkernel.data(), dx.data(), cpu_workspace.data());
      const Tensor gx = put(x), gdy = put(dy), gkernel = put(kernel);
      const Tensor gy = put(std::vector<float>(out, 9.0f)),
                   gdkernel = put(std::vector<float>(kernel.size(), 9.0f)),
                   gdx = put(std::vector<float>(in, 9.0f));
      gpu_conv.conv2d_forward(gpu(), gpu_scratch, gpu_plan, c, at(gx), at(gkernel), at(gy),
                              at(gpu_workspace));
      gpu_conv.conv2d_backward(gpu(), gpu_scratch, gpu_plan, c, at(gx), at(gdy), at(gkernel),
                               at(gdkernel), at(gdx), at(gpu_workspace));
      expect_close(get(gy), y, 1e-4f, "convolution " + where);
      expect_close(get(gdkernel), dkernel, 1e-4f, "kernel gradient " + where);
      expect_close(get(gdx), dx, 1e-4f, "input gradient " + where);
    }
  }
}

TEST_F(CudaKernelsTest, OptimizerUpdatesMatchTheCpu) {
  const index_t n = 10007;
  const auto w0 = random_floats(n, 10), g = random_floats(n, 11), s0 = random_floats(n, 12);
  std::vector<float> sq(s0);
  for (float& v : sq) v = std::fabs(v);
  const Tensor gg = put(g);
  {
    auto w = w0, v = s0;
    cpu_.sgd_update(w.data(), g.data(), v.data(), n, 0.1f, 0.9f, true);
    const Tensor gw = put(w0), gv = put(s0);
    gpu().sgd_update(at(gw), at(gg), at(gv), n, 0.1f, 0.9f, true);
    expect_close(get(gw), w, 1e-6f, "sgd nesterov weights");
    expect_close(get(gv), v, 1e-6f, "sgd velocity");
  }
  {
    auto w = w0, m = s0, v = sq;
    cpu_.adam_update(w.data(), g.data(), m.data(), v.data(), n, 0.01f, 0.9f, 0.999f, 1e-7f, 0.004f);
    const Tensor gw = put(w0), gm = put(s0), gv = put(sq);
    gpu().adam_update(at(gw), at(gg), at(gm), at(gv), n, 0.01f, 0.9f, 0.999f, 1e-7f, 0.004f);
    expect_close(get(gw), w, 1e-5f, "adamw weights");
    expect_close(get(gm), m, 1e-6f, "adam m");
    expect_close(get(gv), v, 1e-6f, "adam v");
  }
  {
    auto w = w0, ms = sq, mom = s0;
    cpu_.rmsprop_update(w.data(), g.data(), ms.data(), mom.data(), n, 0.001f, 0.9f, 0.5f, 1e-7f);
    const Tensor gw = put(w0), gms = put(sq), gmom = put(s0);
    gpu().rmsprop_update(at(gw), at(gg), at(gms), at(gmom), n, 0.001f, 0.9f, 0.5f, 1e-7f);
    expect_close(get(gw), w, 1e-5f, "rmsprop weights");
    expect_close(get(gms), ms, 1e-6f, "rmsprop mean square");
  }
}

TEST_F(CudaKernelsTest, BatchNormalizationMatchesTheCpuForwardAndBackward) {
  CpuNormalizationKernels cpu;
  NormalizationKernels& gpu_norm = normalization_kernels_for(Device::cuda(0));
  Session host({.name = "host"});
  SessionScratch gpu_scratch(session_->core(), Device::cuda(0));
  SessionScratch cpu_scratch(host.core(), Device::cpu());
  // Rows summed in parts (a convolution's shape), few rows (a thread per channel), channels
  // enough to fill the GPU (a thread per channel, no buffer).
  const struct { index_t rows, channels; } shapes[] = {{3000, 19}, {60, 5}, {200, 33000}};
  for (const auto& s : shapes) {
    const index_t rows = s.rows, channels = s.channels, n = rows * channels;
    const std::string shape = " (" + std::to_string(rows) + " x " + std::to_string(channels) + ")";
    const auto x = random_floats(n, 13), dy = random_floats(n, 14);
    const auto gamma = random_floats(channels, 15), beta = random_floats(channels, 16);
    std::vector<float> mm(channels, 0.1f), mv(channels, 0.9f), mean(channels), inv(channels), y(n);
    const Tensor gx = put(x), gdy = put(dy), ggamma = put(gamma), gbeta = put(beta), gmm = put(mm),
                 gmv = put(mv), gmean = put(mean), ginv = put(inv), gy = put(y);
    cpu.batch_norm_forward_training(cpu_scratch, x.data(), gamma.data(), beta.data(), y.data(),
                                    rows, channels, 0.99f, 1e-3f, mm.data(), mv.data(), mean.data(),
                                    inv.data());
    gpu_norm.batch_norm_forward_training(gpu_scratch, at(gx), at(ggamma), at(gbeta), at(gy), rows,
                                         channels, 0.99f, 1e-3f, at(gmm), at(gmv), at(gmean),
                                         at(ginv));
    expect_close(get(gy), y, 1e-5f, "batch norm y" + shape);
    expect_close(get(gmm), mm, 1e-6f, "moving mean" + shape);
    expect_close(get(gmv), mv, 1e-6f, "moving variance" + shape);
    expect_close(get(gmean), mean, 1e-6f, "saved mean" + shape);
    expect_close(get(ginv), inv, 1e-5f, "saved inverse deviation" + shape);
    // In place, as the layer may run it: y over x, then dx over dy.
    const Tensor gxy = put(x), gmm2 = put(std::vector<float>(channels, 0.1f)),
                 gmv2 = put(std::vector<float>(channels, 0.9f));
    gpu_norm.batch_norm_forward_training(gpu_scratch, at(gxy), at(ggamma), at(gbeta), at(gxy), rows,
                                         channels, 0.99f, 1e-3f, at(gmm2), at(gmv2), at(gmean),
                                         at(ginv));
    expect_close(get(gxy), y, 1e-5f, "batch norm y in place" + shape);

    for (bool through : {true, false}) {
      std::vector<float> dx(n), dgamma(channels), dbeta(channels);
      cpu.batch_norm_backward(cpu_scratch, x.data(), dy.data(), gamma.data(), mean.data(),
                              inv.data(), rows, channels, through, dx.data(), dgamma.data(),
                              dbeta.data());
      const Tensor gdx = put(std::vector<float>(n)), gdg = put(std::vector<float>(channels)),
                   gdb = put(std::vector<float>(channels));
      gpu_norm.batch_norm_backward(gpu_scratch, at(gx), at(gdy), at(ggamma), at(gmean), at(ginv),
                                   rows, channels, through, at(gdx), at(gdg), at(gdb));
      const std::string mode = shape + (through ? " (batch statistics)" : " (constant statistics)");
      expect_close(get(gdx), dx, 1e-4f, "batch norm dx" + mode);
      expect_close(get(gdg), dgamma, 1e-4f, "dgamma" + mode);
      expect_close(get(gdb), dbeta, 1e-4f, "dbeta" + mode);
      const Tensor gdxy = put(dy);
      gpu_norm.batch_norm_backward(gpu_scratch, at(gx), at(gdxy), nullptr, at(gmean), at(ginv),
                                   rows, channels, through, at(gdxy), nullptr, nullptr);
      std::vector<float> dx_plain(n);
      cpu.batch_norm_backward(cpu_scratch, x.data(), dy.data(), nullptr, mean.data(), inv.data(),
                              rows, channels, through, dx_plain.data(), nullptr, nullptr);
      expect_close(get(gdxy), dx_plain, 1e-4f, "dx in place, no gamma" + mode);
    }

    std::vector<float> yi(n), mean_i(channels), inv_i(channels);
    cpu.batch_norm_forward_inference(x.data(), gamma.data(), beta.data(), mm.data(), mv.data(),
                                     1e-3f, yi.data(), rows, channels, mean_i.data(), inv_i.data());
    const Tensor gyi = put(std::vector<float>(n)), gmi = put(std::vector<float>(channels)),
                 gii = put(std::vector<float>(channels)), gmm_cpu = put(mm), gmv_cpu = put(mv);
    gpu_norm.batch_norm_forward_inference(at(gx), at(ggamma), at(gbeta), at(gmm_cpu), at(gmv_cpu),
                                          1e-3f, at(gyi), rows, channels, at(gmi), at(gii));
    expect_close(get(gyi), yi, 1e-5f, "batch norm inference y" + shape);
    expect_close(get(gmi), mean_i, 0.0f, "inference saved mean" + shape);
    expect_close(get(gii), inv_i, 1e-6f, "inference saved inverse deviation" + shape);
  }
}

TEST_F(CudaKernelsTest, LstmStepsMatchTheCpuForwardAndBackward) {
  CpuRecurrentKernels cpu;
  RecurrentKernels& gpu_rec = recurrent_kernels_for(Device::cuda(0));
  LstmStep s;
  s.batch = 32;
  s.units = 48;
  s.gates_ld = 4 * s.units;
  s.cell_ld = s.units;
  s.h_ld = s.units;
  s.dy_ld = s.units;
  const index_t gates_n = s.batch * s.gates_ld, cells = s.batch * s.units;
  const auto gates0 = random_floats(gates_n, 17), c_prev = random_floats(cells, 18);
  const auto dh = random_floats(cells, 19), dy = random_floats(cells, 20),
             dc0 = random_floats(cells, 21);
  auto gates = gates0, dc = dc0;
  std::vector<float> c(cells), h(cells);
  cpu.lstm_forward_step(s, gates.data(), c_prev.data(), c.data(), h.data());
  const Tensor gg = put(gates0), gcp = put(c_prev), gc = put(std::vector<float>(cells)),
               gh = put(std::vector<float>(cells)), gdh = put(dh), gdy = put(dy), gdc = put(dc0);
  gpu_rec.lstm_forward_step(s, at(gg), at(gcp), at(gc), at(gh));
  expect_close(get(gg), gates, 1e-5f, "lstm gate activations");
  expect_close(get(gc), c, 1e-5f, "lstm cell");
  expect_close(get(gh), h, 1e-5f, "lstm hidden");
  cpu.lstm_backward_step(s, gates.data(), c_prev.data(), c.data(), dh.data(), dy.data(), dc.data());
  gpu_rec.lstm_backward_step(s, at(gg), at(gcp), at(gc), at(gdh), at(gdy), at(gdc));
  expect_close(get(gg), gates, 1e-5f, "lstm gate gradients");
  expect_close(get(gdc), dc, 1e-5f, "lstm cell gradient");
}

// Whole sequences, forward and backward, on the GPU against the CPU's step-by-step recurrence:
// in one launch, and past kMaxSequenceUnits in a gemm and a step kernel per timestep.
TEST_F(CudaKernelsTest, LstmSequencesMatchTheCpuInOneLaunchAndStepByStep) {
  using testing::HostLstmSequence;
  using testing::LstmSequenceCase;
  SessionScratch gpu_scratch(session_->core(), Device::cuda(0));
  Session host;
  SessionScratch cpu_scratch(host.core(), Device::cpu());
  CpuRecurrentKernels cpu;
  RecurrentKernels& gpu_rec = recurrent_kernels_for(Device::cuda(0));
  std::vector<LstmSequenceCase> cases = testing::lstm_sequence_cases();
  cases.push_back({70, 12, 64, false});  // the benchmark's LSTM(64), at a batch of 70
  // Blocks of 8 samples (past 8 per multiprocessor) and of 1024 threads, a last block of 4.
  cases.push_back({1100, 3, CudaRecurrentKernels::kMaxSequenceUnits, true});
  cases.push_back({6, 3, CudaRecurrentKernels::kMaxSequenceUnits + 2, true});
  for (const LstmSequenceCase& c : cases) {
    HostLstmSequence expected(c);
    const Tensor gates = put(expected.gates), cells = put(expected.cells),
                 recurrent = put(expected.recurrent), hidden = put(expected.hidden),
                 last = put(expected.last), dy = put(expected.dy), dh = put(expected.dh),
                 dc = put(expected.dc);
    const std::size_t workspace_bytes = gpu_rec.lstm_workspace_bytes(c.units);
    const Tensor workspace = put(std::vector<float>(workspace_bytes / sizeof(float)));
    const LstmSequence s = c.over(at(gates), at(cells), at(recurrent), at(hidden), at(last), at(dy),
                                  at(dh), at(dc), workspace_bytes > 0 ? at(workspace) : nullptr);
    cpu.lstm_forward_sequence(cpu_, cpu_scratch, expected.sequence);
    gpu_rec.lstm_forward_sequence(gpu(), gpu_scratch, s);
    expect_close(get(gates), expected.gates, 1e-4f, c.str() + ": gate activations");
    expect_close(get(cells), expected.cells, 1e-4f, c.str() + ": cells");
    expect_close(get(hidden), expected.hidden, 1e-4f, c.str() + ": hidden states");
    if (!c.every_step) expect_close(get(last), expected.last, 1e-4f, c.str() + ": last state");
    cpu.lstm_backward_sequence(cpu_, cpu_scratch, expected.sequence);
    gpu_rec.lstm_backward_sequence(gpu(), gpu_scratch, s);
    expect_close(get(gates), expected.gates, 1e-4f, c.str() + ": gate gradients");
    expect_close(get(dh), expected.dh, 1e-4f, c.str() + ": dL/dh_0");
    expect_close(get(dc), expected.dc, 1e-4f, c.str() + ": dL/dc_-1");
  }
  // Inference's layout, each step over the one before: forward only.
  for (const LstmSequenceCase& kept : cases) {
    const LstmSequenceCase c = kept.keeping_latest_only(true);
    HostLstmSequence expected(c);
    const Tensor gates = put(expected.gates), cells = put(expected.cells),
                 recurrent = put(expected.recurrent), hidden = put(expected.hidden),
                 last = put(expected.last);
    const LstmSequence s = c.over(at(gates), at(cells), at(recurrent), at(hidden), at(last),
                                  nullptr, nullptr, nullptr, nullptr);
    cpu.lstm_forward_sequence(cpu_, cpu_scratch, expected.sequence);
    gpu_rec.lstm_forward_sequence(gpu(), gpu_scratch, s);
    expect_close(get(gates), expected.gates, 1e-4f, c.str() + ": gate activations");
    expect_close(get(cells), expected.cells, 1e-4f, c.str() + ": last cell state");
    if (c.every_step) expect_close(get(hidden), expected.hidden, 1e-4f, c.str() + ": hidden");
    if (!c.every_step) expect_close(get(last), expected.last, 1e-4f, c.str() + ": last state");
  }
}

// Every loss (fused and not, with its gradient) and every metric, scored on the GPU and read
// back in one copy, against the same batch scored on the CPU.
TEST_F(CudaKernelsTest, LossesGradientsAndMetricsMatchTheCpu) {
  const index_t rows = 300, classes = 7;
  std::vector<float> p = random_floats(static_cast<std::size_t>(rows * classes), 20);
  for (index_t r = 0; r < rows; ++r) {  // rows of probabilities
    float sum = 0.0f;
    for (index_t c = 0; c < classes; ++c)
      sum += (p[r * classes + c] = std::fabs(p[r * classes + c]) + 0.01f);
    for (index_t c = 0; c < classes; ++c) p[r * classes + c] /= sum;
  }
  std::vector<float> one_hot(p.size(), 0.0f);
  std::vector<std::int64_t> labels(static_cast<std::size_t>(rows));
  for (index_t r = 0; r < rows; ++r) {
    labels[r] = (r * 5) % classes;
    one_hot[r * classes + labels[r]] = 1.0f;
  }
  Session host({.name = "cpu"});
  for (const char* name : {"categorical_crossentropy", "sparse_categorical_crossentropy",
                           "binary_crossentropy", "mse", "mae"}) {
    const Loss loss = Loss::from_name(name);
    const bool sparse = loss.kind() == LossKind::sparse_categorical_crossentropy;
    for (bool fused : {false, true}) {
      const std::vector<Metric> metrics{Metric::resolve("accuracy", loss, Shape{classes})};
      BatchScore on_cpu, on_gpu;
      std::vector<float> cpu_grad, gpu_grad;
      {
        SessionScope scope(host);
        const Tensor tp = from_vector(p, Shape{rows, classes});
        const Tensor ty = sparse ? from_vector(labels) : from_vector(one_hot, Shape{rows, classes});
        const Tensor grad = zeros({rows, classes});
        on_cpu = score_batch(&loss, metrics, tp, ty, &grad, fused);
        cpu_grad = grad.to_vector<float>();
      }
      const Tensor tp = from_vector(p, Shape{rows, classes});
      const Tensor ty = sparse ? from_vector(labels) : from_vector(one_hot, Shape{rows, classes});
      const Tensor grad = zeros({rows, classes});
      on_gpu = score_batch(&loss, metrics, tp, ty, &grad, fused);
      gpu_grad = grad.to_vector<float>();
      const std::string what = std::string(name) + (fused ? " fused" : "");
      EXPECT_NEAR(on_gpu.loss, on_cpu.loss, 1e-6 * std::max(1.0, std::fabs(on_cpu.loss))) << what;
      expect_close(gpu_grad, cpu_grad, 1e-5f, what + " gradient");
      EXPECT_EQ(on_gpu.correct, on_cpu.correct) << what;
      EXPECT_EQ(on_gpu.counted, on_cpu.counted) << what;
    }
  }
  // A class index out of range is found on the device and named from the host.
  labels[17] = classes;
  const Loss sparse = Loss::from_name("sparse_categorical_crossentropy");
  try {
    (void)sparse.compute(from_vector(p, Shape{rows, classes}), from_vector(labels), nullptr, false);
    ADD_FAILURE() << "an out-of-range label was scored";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("sample 17"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tabula::detail
