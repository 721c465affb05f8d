// The CUDA kernels' bodies (src/backend/cuda/kernel_bodies.hpp), run on the host over every
// index, against the CPU kernels: the GPU kernels' index arithmetic is checked on machines
// without a GPU. Sums the CPU makes in a fixed order are compared bitwise.

#include "backend/cuda/kernel_bodies.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <barrier>
#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "backend/cpu/cpu_kernels.hpp"
#include "backend/cpu/cpu_normalization_kernels.hpp"
#include "backend/cpu/cpu_recurrent_kernels.hpp"
#include "backend/cuda/batch_norm_passes.hpp"
#include "backend/cuda/cuda_reduction.hpp"
#include "backend/cuda/lstm_sequence_bodies.hpp"
#include "backend/cuda/tensor_chunks.hpp"
#include "backend/lstm_sequence_case.hpp"
#include "backend/random_floats.hpp"
#include "session/detail/session_scratch.hpp"
#include "tabula/session/session.hpp"

namespace tabula::detail {
namespace {

using testing::HostLstmSequence;
using testing::LstmSequenceCase;
using testing::random_floats;

template <typename F>
void each(index_t n, F&& f) {
  for (index_t i = 0; i < n; ++i) f(i);
}

// A window as Keras's "valid" or "same" padding lays it out.
Window2d window(index_t batch, index_t h, index_t w, index_t c, index_t k, index_t stride,
                bool same) {
  const index_t out_h = same ? (h + stride - 1) / stride : (h - k) / stride + 1;
  const index_t out_w = same ? (w + stride - 1) / stride : (w - k) / stride + 1;
  const index_t pad_h = same ? std::max<index_t>((out_h - 1) * stride + k - h, 0) : 0;
  const index_t pad_w = same ? std::max<index_t>((out_w - 1) * stride + k - w, 0) : 0;
  return {batch, h, w, c, k, k, stride, stride, pad_h / 2, pad_w / 2, out_h, out_w};
}

std::string describe(const Window2d& w) {
  return std::to_string(w.in_h) + "x" + std::to_string(w.in_w) + "x" + std::to_string(w.channels) +
         " kernel " + std::to_string(w.kernel_h) + " stride " + std::to_string(w.stride_h) +
         " pad " + std::to_string(w.pad_top) + "," + std::to_string(w.pad_left);
}

// Valid and same padding, overlapping windows, stride equal to and larger than the kernel.
std::vector<Window2d> windows() {
  return {window(2, 7, 6, 3, 3, 1, false), window(2, 7, 6, 3, 3, 1, true),
          window(3, 8, 8, 2, 2, 2, false), window(2, 9, 7, 4, 3, 2, true),
          window(2, 9, 9, 1, 2, 3, false), window(1, 5, 5, 5, 5, 1, true),
          // More channels than one AVX-512 vector holds, and a remainder: the CPU's channel
          // loops run their vector bodies and their tails.
          window(2, 7, 6, 37, 3, 2, true)};
}

index_t input_size(const Window2d& w) { return w.batch * w.in_h * w.in_w * w.channels; }
index_t output_size(const Window2d& w) { return w.batch * w.out_h * w.out_w * w.channels; }
index_t columns_size(const Window2d& w, index_t samples) {
  return samples * w.out_h * w.out_w * w.kernel_h * w.kernel_w * w.channels;
}

TEST(KernelBodies, Im2colUnfoldsEveryPatchAsTheCpuDoes) {
  CpuKernels cpu;
  for (const Window2d& w : windows()) {
    const auto x = random_floats(static_cast<std::size_t>(input_size(w)), 1);
    const index_t first = w.batch - 1, count = 1;  // a later sample: the offset counts
    std::vector<float> expected(static_cast<std::size_t>(columns_size(w, count)), -7.0f);
    std::vector<float> got(expected.size(), -9.0f);
    cpu.im2col(w, x.data(), first, count, expected.data());
    each(columns_size(w, count),
         [&](index_t i) { bodies::im2col(i, w, x.data(), first, got.data()); });
    EXPECT_EQ(got, expected) << describe(w);
  }
}

TEST(KernelBodies, Col2imFoldsPatchesBackBitwiseAsTheCpuDoes) {
  CpuKernels cpu;
  for (const Window2d& w : windows()) {
    const index_t first = 1, count = w.batch - 1;
    const auto columns = random_floats(static_cast<std::size_t>(columns_size(w, count)), 2);
    std::vector<float> expected(static_cast<std::size_t>(input_size(w)), 5.0f);
    std::vector<float> got = expected;  // sample 0 is not the call's: both must leave it
    cpu.col2im(w, columns.data(), first, count, expected.data());
    each(count * w.in_h * w.in_w * w.channels,
         [&](index_t i) { bodies::col2im(i, w, columns.data(), first, got.data()); });
    EXPECT_EQ(got, expected) << describe(w);
  }
}

// x has ties: the CPU and the device keep the first of equal maxima alike.
void expect_max_pooling_matches(const Window2d& w, const std::vector<float>& x) {
  CpuKernels cpu;
  const auto dy = random_floats(static_cast<std::size_t>(output_size(w)), 4);
  std::vector<float> y_cpu(static_cast<std::size_t>(output_size(w))), y(y_cpu.size());
  std::vector<std::int32_t> arg_cpu(y.size()), arg(y.size());
  cpu.max_pool_forward(w, x.data(), y_cpu.data(), arg_cpu.data());
  each(output_size(w),
       [&](index_t i) { bodies::max_pool_forward(i, w, x.data(), y.data(), arg.data()); });
  EXPECT_EQ(y, y_cpu) << describe(w);
  EXPECT_EQ(arg, arg_cpu) << describe(w);

  std::vector<float> dx_cpu(x.size(), 3.0f), dx(x.size(), 4.0f);
  cpu.max_pool_backward(w, dy.data(), arg_cpu.data(), dx_cpu.data());
  each(input_size(w),
       [&](index_t i) { bodies::max_pool_backward(i, w, dy.data(), arg.data(), dx.data()); });
  EXPECT_EQ(dx, dx_cpu) << describe(w);

  // An inference pass keeps no positions and finds the same maxima.
  std::vector<float> y_inference(y.size());
  cpu.max_pool_forward(w, x.data(), y_inference.data(), nullptr);
  EXPECT_EQ(y_inference, y_cpu) << describe(w);
}

TEST(KernelBodies, MaxPoolingFindsTheSameMaximaAndRoutesGradientsBitwise) {
  for (const Window2d& w : windows()) {
    auto x = random_floats(static_cast<std::size_t>(input_size(w)), 3);
    x[1] = x[0];           // equal channels
    x[w.channels] = x[0];  // equal neighbours in one window
    expect_max_pooling_matches(w, x);
  }
}

TEST(KernelBodies, MaxPoolingKeepsTheFirstOfEqualMaximaInEveryChannel) {
  for (const Window2d& w : windows()) {
    // Three levels only: most windows hold their maximum more than once.
    auto x = random_floats(static_cast<std::size_t>(input_size(w)), 5);
    for (float& v : x) v = std::round(v);
    expect_max_pooling_matches(w, x);
  }
}

TEST(KernelBodies, AveragePoolingAveragesAndSpreadsGradientsBitwise) {
  CpuKernels cpu;
  for (const Window2d& w : windows()) {
    const auto x = random_floats(static_cast<std::size_t>(input_size(w)), 5);
    const auto dy = random_floats(static_cast<std::size_t>(output_size(w)), 6);
    std::vector<float> y_cpu(static_cast<std::size_t>(output_size(w))), y(y_cpu.size());
    cpu.avg_pool_forward(w, x.data(), y_cpu.data());
    each(output_size(w), [&](index_t i) { bodies::avg_pool_forward(i, w, x.data(), y.data()); });
    EXPECT_EQ(y, y_cpu) << describe(w);

    std::vector<float> dx_cpu(x.size(), 1.0f), dx(x.size(), 2.0f);
    cpu.avg_pool_backward(w, dy.data(), dx_cpu.data());
    each(input_size(w), [&](index_t i) { bodies::avg_pool_backward(i, w, dy.data(), dx.data()); });
    EXPECT_EQ(dx, dx_cpu) << describe(w);
  }
}

TEST(KernelBodies, BiasAndItsGradientMatchTheCpu) {
  CpuKernels cpu;
  const index_t rows = 37, cols = 23;
  const auto bias = random_floats(cols, 7);
  auto y_cpu = random_floats(static_cast<std::size_t>(rows * cols), 8);
  auto y = y_cpu;
  cpu.add_bias(y_cpu.data(), bias.data(), rows, cols);
  each(rows * cols, [&](index_t i) { bodies::add_bias(i, y.data(), bias.data(), cols); });
  EXPECT_EQ(y, y_cpu);

  Session session({.name = "bias"});
  SessionScratch scratch(session.core(), Device::cpu());
  std::vector<float> db_cpu(cols), db(cols, 1.0f);
  cpu.sum_rows(scratch, y.data(), db_cpu.data(), rows, cols);
  each(cols, [&](index_t j) { bodies::sum_column(j, y.data(), db.data(), rows, cols); });
  EXPECT_EQ(db, db_cpu);
}

TEST(KernelBodies, BiasAndActivationInOnePassMatchTheCpusTwoBitwise) {
  CpuKernels cpu;
  const index_t rows = 11, cols = 17, n = rows * cols;
  const auto bias = random_floats(static_cast<std::size_t>(cols), 13);
  auto x = random_floats(static_cast<std::size_t>(n), 14);
  for (float& v : x) v *= 4.0f;
  for (Activation f :
       {Activation::linear, Activation::relu, Activation::sigmoid, Activation::tanh}) {
    auto expected = x, got = x;
    cpu.bias_activation(expected.data(), bias.data(), f, rows, cols);
    each(n, [&](index_t i) { bodies::bias_activation(i, f, got.data(), bias.data(), cols); });
    EXPECT_EQ(got, expected) << name_of(f);
  }
}

TEST(KernelBodies, ColumnSumsInPartsAddUpToTheCpusSums) {
  CpuKernels cpu;
  Session session({.name = "bias"});
  SessionScratch scratch(session.core(), Device::cpu());
  // Few columns of many rows, parts that do not divide the rows, a partial buffer that limits
  // the parts, and rows too few to split.
  const struct {
    index_t rows, cols, capacity;
  } cases[] = {{5000, 7, 1 << 18}, {1001, 3, 1 << 18}, {4096, 40, 200}, {100, 5, 1 << 18}};
  for (const auto& c : cases) {
    const index_t parts = bodies::column_sum_parts(c.rows, c.cols, c.capacity);
    EXPECT_LE(parts * c.cols, std::max(c.capacity, c.cols));
    EXPECT_GE(parts, 1);
    const auto dy = random_floats(static_cast<std::size_t>(c.rows * c.cols), 12);
    std::vector<float> expected(static_cast<std::size_t>(c.cols));
    cpu.sum_rows(scratch, dy.data(), expected.data(), c.rows, c.cols);
    const index_t span = (c.rows + parts - 1) / parts;
    std::vector<float> partial(static_cast<std::size_t>(parts * c.cols), -1.0f),
        db(expected.size());
    each(parts * c.cols, [&](index_t i) {
      bodies::sum_column_part(i, dy.data(), partial.data(), c.rows, c.cols, span);
    });
    each(c.cols,
         [&](index_t j) { bodies::sum_column(j, partial.data(), db.data(), parts, c.cols); });
    for (std::size_t j = 0; j < db.size(); ++j)
      EXPECT_NEAR(db[j], expected[j], 1e-5 * static_cast<double>(c.rows))
          << c.rows << " x " << c.cols << " in " << parts << " parts, column " << j;
  }
  EXPECT_GT(bodies::column_sum_parts(43264, 32, 1 << 18), 64) << "a convolution's bias is split";
  EXPECT_EQ(bodies::column_sum_parts(128, 128, 1 << 18), 2);
  EXPECT_EQ(bodies::column_sum_parts(0, 10, 1 << 18), 1);
}

TEST(KernelBodies, ActivationsAndTheirGradientsMatchTheCpu) {
  CpuKernels cpu;
  const index_t rows = 9, cols = 13, n = rows * cols;
  auto x = random_floats(static_cast<std::size_t>(n), 9);
  for (float& v : x) v *= 6.0f;  // past the saturation of sigmoid and tanh
  const auto dy = random_floats(static_cast<std::size_t>(n), 10);
  for (Activation f : {Activation::linear, Activation::relu, Activation::sigmoid, Activation::tanh,
                       Activation::softmax}) {
    std::vector<float> y_cpu(x.size()), y(x.size()), dx_cpu(x.size()), dx(x.size());
    cpu.activation_forward(f, x.data(), y_cpu.data(), rows, cols);
    cpu.activation_backward(f, y_cpu.data(), dy.data(), dx_cpu.data(), rows, cols);
    if (f == Activation::softmax) {
      each(rows, [&](index_t r) { bodies::softmax_row(r, x.data(), y.data(), cols); });
      each(rows, [&](index_t r) {
        bodies::softmax_backward_row(r, y_cpu.data(), dy.data(), dx.data(), cols);
      });
    } else {
      each(n, [&](index_t i) { bodies::activation_forward(i, f, x.data(), y.data()); });
      each(n, [&](index_t i) {
        bodies::activation_backward(i, f, y_cpu.data(), dy.data(), dx.data());
      });
    }
    for (index_t i = 0; i < n; ++i) {
      EXPECT_NEAR(y[i], y_cpu[i], 1e-6f) << name_of(f) << " forward at " << i;
      EXPECT_NEAR(dx[i], dx_cpu[i], 1e-6f) << name_of(f) << " backward at " << i;
    }
  }
}

TEST(KernelBodies, OptimizerUpdatesFollowTheCpuFormulas) {
  CpuKernels cpu;
  const index_t n = 101;
  const auto g = random_floats(n, 11);
  const auto w0 = random_floats(n, 12);
  const auto state0 = random_floats(n, 13);
  std::vector<float> v_abs(state0);
  for (float& v : v_abs) v = std::fabs(v);  // second moments are never negative

  const auto expect_near = [](const std::vector<float>& a, const std::vector<float>& b,
                              const char* what) {
    for (std::size_t i = 0; i < a.size(); ++i)
      EXPECT_NEAR(a[i], b[i], 1e-6f) << what << " at " << i;
  };
  for (bool nesterov : {false, true}) {
    auto w_cpu = w0, w = w0, vel_cpu = state0, vel = state0;
    cpu.sgd_update(w_cpu.data(), g.data(), vel_cpu.data(), n, 0.1f, 0.9f, nesterov);
    each(n, [&](index_t i) {
      bodies::sgd_update(i, w.data(), g.data(), vel.data(), 0.1f, 0.9f, nesterov);
    });
    expect_near(w, w_cpu, "sgd with momentum");
    expect_near(vel, vel_cpu, "sgd velocity");
  }
  {
    auto w_cpu = w0, w = w0;
    cpu.sgd_update(w_cpu.data(), g.data(), nullptr, n, 0.1f, 0.0f, false);
    each(n,
         [&](index_t i) { bodies::sgd_update(i, w.data(), g.data(), nullptr, 0.1f, 0.0f, false); });
    expect_near(w, w_cpu, "plain sgd");
  }
  {
    auto w_cpu = w0, w = w0, m_cpu = state0, m = state0, v_cpu = v_abs, v = v_abs;
    cpu.adam_update(w_cpu.data(), g.data(), m_cpu.data(), v_cpu.data(), n, 0.01f, 0.9f, 0.999f,
                    1e-7f, 0.004f);
    each(n, [&](index_t i) {
      bodies::adam_update(i, w.data(), g.data(), m.data(), v.data(), 0.01f, 0.9f, 0.999f, 1e-7f,
                          0.004f);
    });
    expect_near(w, w_cpu, "adamw");
    expect_near(m, m_cpu, "adam m");
    expect_near(v, v_cpu, "adam v");
  }
  for (float momentum : {0.0f, 0.5f}) {
    auto w_cpu = w0, w = w0, ms_cpu = v_abs, ms = v_abs, mom_cpu = state0, mom = state0;
    float* mom_cpu_p = momentum > 0 ? mom_cpu.data() : nullptr;
    float* mom_p = momentum > 0 ? mom.data() : nullptr;
    cpu.rmsprop_update(w_cpu.data(), g.data(), ms_cpu.data(), mom_cpu_p, n, 0.001f, 0.9f, momentum,
                       1e-7f);
    each(n, [&](index_t i) {
      bodies::rmsprop_update(i, w.data(), g.data(), ms.data(), mom_p, 0.001f, 0.9f, momentum,
                             1e-7f);
    });
    expect_near(w, w_cpu, "rmsprop");
    expect_near(ms, ms_cpu, "rmsprop mean square");
  }
}

// The batch normalisation passes launched one after the other on the host, each over its
// whole range, as the stream runs them on a GPU.
struct HostLaunch {
  template <typename F>
  void operator()(index_t n, F f, const char*) const {
    each(n, f);
  }
};

void expect_all_near(const std::vector<float>& got, const std::vector<float>& expected, float tol,
                     const std::string& what) {
  ASSERT_EQ(got.size(), expected.size()) << what;
  for (std::size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], expected[i], tol) << what << " at " << i;
}

TEST(KernelBodies, BatchNormPassesMatchTheCpuInPartsAndByChannel) {
  CpuNormalizationKernels cpu;
  Session session({.name = "batch-norm"});
  SessionScratch scratch(session.core(), Device::cpu());
  // Parts that divide the rows and parts that do not, a buffer that limits the parts, rows too
  // few to split, channels enough to fill a GPU (a thread per channel), a constant channel.
  constexpr index_t kGpu = CudaReduction::kFloats;  // the buffer the GPU sums in
  const struct {
    index_t rows, channels, capacity;
  } cases[] = {{3000, 19, kGpu}, {5000, 2, kGpu},    {1001, 3, kGpu},
               {4096, 40, 900},  {100, 6, kGpu},     {60, 5, kGpu},
               {3, 33000, kGpu}, {200, 33000, kGpu}, {777, 1, kGpu}};
  for (const auto& k : cases) {
    const auto parts = bodies::BatchNormParts::of(k.rows, k.channels, k.capacity);
    const std::string shape = std::to_string(k.rows) + " x " + std::to_string(k.channels) + " in " +
                              std::to_string(parts.count) + " parts";
    if (parts.count > 1) {
      EXPECT_LE(4 * parts.count * k.channels + 2 * k.channels, k.capacity) << shape;
    }
    const index_t n = k.rows * k.channels;
    auto x = random_floats(static_cast<std::size_t>(n), 14);
    if (k.channels == 1) std::fill(x.begin(), x.end(), 0.25f);  // zero variance
    const auto dy = random_floats(static_cast<std::size_t>(n), 15);
    const auto gamma = random_floats(static_cast<std::size_t>(k.channels), 16);
    const auto beta = random_floats(static_cast<std::size_t>(k.channels), 17);
    // The buffer starts as NaN, so a sum read before it is written shows.
    std::vector<double> buffer_store(static_cast<std::size_t>(k.capacity / 2), std::nan(""));
    float* buffer = reinterpret_cast<float*>(buffer_store.data());
    const auto channels_of = [&](float v) {
      return std::vector<float>(static_cast<std::size_t>(k.channels), v);
    };

    auto mm_cpu = channels_of(0.1f), mv_cpu = channels_of(0.9f), mean_cpu = channels_of(0.0f),
         inv_cpu = mean_cpu;
    std::vector<float> y_cpu(x.size());
    cpu.batch_norm_forward_training(scratch, x.data(), gamma.data(), beta.data(), y_cpu.data(),
                                    k.rows, k.channels, 0.99f, 1e-3f, mm_cpu.data(), mv_cpu.data(),
                                    mean_cpu.data(), inv_cpu.data());
    auto mm = channels_of(0.1f), mv = channels_of(0.9f), mean = channels_of(-7.0f), inv = mean;
    auto y = x;  // in place: y aliases x
    bodies::batch_norm_training_passes(HostLaunch{}, buffer, k.capacity, y.data(), gamma.data(),
                                       beta.data(), y.data(), k.rows, k.channels, 0.99f, 1e-3f,
                                       mm.data(), mv.data(), mean.data(), inv.data());
    expect_all_near(y, y_cpu, 1e-5f, "y of " + shape);
    expect_all_near(mm, mm_cpu, 1e-6f, "moving mean of " + shape);
    expect_all_near(mv, mv_cpu, 1e-6f, "moving variance of " + shape);
    expect_all_near(mean, mean_cpu, 1e-6f, "saved mean of " + shape);
    expect_all_near(inv, inv_cpu, 1e-4f, "saved inverse deviation of " + shape);

    for (const bool through : {true, false}) {
      const std::string mode = shape + (through ? " (batch statistics)" : " (constants)");
      std::vector<float> dx_cpu(x.size()), dg_cpu(gamma.size()), db_cpu(gamma.size());
      cpu.batch_norm_backward(scratch, x.data(), dy.data(), gamma.data(), mean_cpu.data(),
                              inv_cpu.data(), k.rows, k.channels, through, dx_cpu.data(),
                              dg_cpu.data(), db_cpu.data());
      auto dx = dy;  // in place: dx aliases dy
      auto dg = channels_of(-7.0f), db = dg;
      bodies::batch_norm_backward_passes(HostLaunch{}, buffer, k.capacity, x.data(), dx.data(),
                                         gamma.data(), mean_cpu.data(), inv_cpu.data(), k.rows,
                                         k.channels, through, dx.data(), dg.data(), db.data());
      expect_all_near(dx, dx_cpu, 1e-4f, "dx of " + mode);
      expect_all_near(dg, dg_cpu, 1e-5f * static_cast<float>(k.rows), "dgamma of " + mode);
      expect_all_near(db, db_cpu, 1e-5f * static_cast<float>(k.rows), "dbeta of " + mode);
    }
    // Parameter gradients alone (no dx wanted), as for a first layer.
    std::vector<float> dg_cpu(gamma.size()), db_cpu(gamma.size());
    cpu.batch_norm_backward(scratch, x.data(), dy.data(), nullptr, mean_cpu.data(), inv_cpu.data(),
                            k.rows, k.channels, true, nullptr, dg_cpu.data(), db_cpu.data());
    auto dg = channels_of(-7.0f), db = dg;
    bodies::batch_norm_backward_passes(HostLaunch{}, buffer, k.capacity, x.data(), dy.data(),
                                       nullptr, mean_cpu.data(), inv_cpu.data(), k.rows, k.channels,
                                       true, nullptr, dg.data(), db.data());
    expect_all_near(dg, dg_cpu, 1e-5f * static_cast<float>(k.rows), "dgamma alone of " + shape);
    expect_all_near(db, db_cpu, 1e-5f * static_cast<float>(k.rows), "dbeta alone of " + shape);
  }
  EXPECT_GT(bodies::BatchNormParts::of(43264, 32, kGpu).count, 64)
      << "a convolution's channels are summed in parts";
  EXPECT_EQ(bodies::BatchNormParts::of(60, 5, kGpu).count, 1) << "rows too few to split";
  EXPECT_EQ(bodies::BatchNormParts::of(200, 33000, kGpu).count, 1)
      << "channels enough to fill a GPU";
  EXPECT_EQ(bodies::BatchNormParts::of(1000, 20000, kGpu).count, 2);
  EXPECT_EQ(bodies::BatchNormParts::of(1000, 30000, kGpu).count, 1)
      << "two parts' sums would not fit the buffer";
}

TEST(KernelBodies, BatchNormGradientsOfNoRowsAreZero) {
  std::vector<float> dg{5.0f, 5.0f}, db{5.0f, 5.0f};
  const float mean[] = {0.0f, 0.0f}, inv_std[] = {1.0f, 1.0f};
  bodies::batch_norm_backward_passes(HostLaunch{}, nullptr, CudaReduction::kFloats, nullptr,
                                     nullptr, nullptr, mean, inv_std, 0, 2, true, nullptr,
                                     dg.data(), db.data());
  EXPECT_EQ(dg, (std::vector<float>{0.0f, 0.0f}));
  EXPECT_EQ(db, (std::vector<float>{0.0f, 0.0f}));
}

TEST(KernelBodies, LstmStepsMatchTheCpuForwardAndBackward) {
  CpuRecurrentKernels cpu;
  LstmStep s;
  s.batch = 3;
  s.units = 5;
  s.gates_ld = 4 * s.units + 2;  // strided rows, as inside a sequence
  s.cell_ld = s.units + 1;
  s.h_ld = s.units + 3;
  s.dy_ld = s.units + 2;
  const auto gates0 = random_floats(static_cast<std::size_t>(s.batch * s.gates_ld), 18);
  const auto c_prev = random_floats(static_cast<std::size_t>(s.batch * s.cell_ld), 19);
  const auto dh = random_floats(static_cast<std::size_t>(s.batch * s.units), 20);
  const auto dy = random_floats(static_cast<std::size_t>(s.batch * s.dy_ld), 21);
  const auto dc0 = random_floats(static_cast<std::size_t>(s.batch * s.units), 22);
  const auto near = [](const std::vector<float>& a, const std::vector<float>& b, const char* what) {
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t i = 0; i < a.size(); ++i)
      EXPECT_NEAR(a[i], b[i], 2e-6f) << what << " at " << i;
  };
  for (bool first_step : {false, true}) {
    const float* cp = first_step ? nullptr : c_prev.data();
    auto gates_cpu = gates0, gates = gates0;
    std::vector<float> c_cpu(c_prev.size(), 0.0f), c = c_cpu;
    std::vector<float> h_cpu(static_cast<std::size_t>(s.batch * s.h_ld), 0.0f), h = h_cpu;
    cpu.lstm_forward_step(s, gates_cpu.data(), cp, c_cpu.data(), h_cpu.data());
    each(s.batch * s.units,
         [&](index_t i) { bodies::lstm_forward(i, s, gates.data(), cp, c.data(), h.data()); });
    near(gates, gates_cpu, "gate activations");
    near(c, c_cpu, "cell state");
    near(h, h_cpu, "hidden state");

    auto dc_cpu = dc0, dc = dc0;
    cpu.lstm_backward_step(s, gates_cpu.data(), cp, c_cpu.data(), dh.data(), dy.data(),
                           dc_cpu.data());
    each(s.batch * s.units, [&](index_t i) {
      bodies::lstm_backward(i, s, gates.data(), cp, c.data(), dh.data(), dy.data(), dc.data());
    });
    near(gates, gates_cpu, "gate gradients");
    near(dc, dc_cpu, "cell gradient");
  }
}

// Runs a block program as a CUDA launch would: `rows_per_block` samples per block, each block
// by `threads` host threads that meet at a std::barrier where the kernel calls __syncthreads.
template <typename Program>
void launch_on_host(const LstmSequence& s, index_t rows_per_block, index_t threads,
                    Program program) {
  for (index_t b0 = 0; b0 < s.step.batch; b0 += rows_per_block) {
    const index_t rows = std::min(rows_per_block, s.step.batch - b0);
    std::barrier barrier(static_cast<std::ptrdiff_t>(threads));
    std::vector<std::thread> block;
    for (index_t thread = 0; thread < threads; ++thread)
      block.emplace_back([&, thread] {
        program(s, b0, rows, thread, threads, [&] { barrier.arrive_and_wait(); });
      });
    for (std::thread& t : block) t.join();
  }
}

void expect_near(const std::vector<float>& got, const std::vector<float>& expected,
                 const std::string& what) {
  ASSERT_EQ(got.size(), expected.size()) << what;
  int reported = 0;
  for (std::size_t i = 0; i < got.size() && reported < 5; ++i)
    if (!(std::fabs(got[i] - expected[i]) <= 2e-5f * std::max(1.0f, std::fabs(expected[i])))) {
      ADD_FAILURE() << what << " at " << i << ": block program " << got[i] << ", steps "
                    << expected[i];
      ++reported;
    }
}

// The CPU's step-by-step recurrence, the reference of the block programs, and the launches
// they run in: blocks of one sample and of several (a last block with fewer), one thread and a
// few that do not divide the work evenly.
class LstmSequenceBlocks : public ::testing::Test {
 protected:
  struct Launch {
    index_t rows_per_block, threads;
  };
  static constexpr Launch kLaunches[] = {{1, 1}, {2, 3}, {bodies::kMaxSequenceRows, 5}};

  Session session{{.name = "lstm_sequence"}};
  SessionScratch scratch{session.core(), Device::cpu()};
  CpuKernels cpu;
  CpuRecurrentKernels cpu_recurrent;
};

TEST_F(LstmSequenceBlocks, ComputeWhatTheStepByStepRecurrenceDoes) {
  for (const LstmSequenceCase& c : testing::lstm_sequence_cases()) {
    for (const Launch& launch : kLaunches) {
      const std::string what = c.str() + ", " + std::to_string(launch.rows_per_block) +
                               " rows per block, " + std::to_string(launch.threads) + " threads";
      HostLstmSequence steps(c), blocks(c);
      cpu_recurrent.lstm_forward_sequence(cpu, scratch, steps.sequence);
      launch_on_host(blocks.sequence, launch.rows_per_block, launch.threads,
                     [](auto&&... a) { bodies::lstm_forward_block(a...); });
      expect_near(blocks.gates, steps.gates, what + ": gate activations");
      expect_near(blocks.cells, steps.cells, what + ": cells");
      expect_near(blocks.hidden, steps.hidden, what + ": hidden states");
      expect_near(blocks.last, steps.last, what + ": last hidden state");

      cpu_recurrent.lstm_backward_sequence(cpu, scratch, steps.sequence);
      const index_t U = c.units;
      float* recurrent_t = blocks.workspace.data();
      each(4 * U * U, [&](index_t i) {
        bodies::transpose(i, blocks.recurrent.data(), U, 4 * U, recurrent_t);
      });
      launch_on_host(blocks.sequence, launch.rows_per_block, launch.threads,
                     [&](const LstmSequence& s, auto&&... a) {
                       bodies::lstm_backward_block(s, recurrent_t, a...);
                     });
      expect_near(blocks.gates, steps.gates, what + ": gate gradients");
      expect_near(blocks.dh, steps.dh, what + ": dL/dh_0");
      expect_near(blocks.dc, steps.dc, what + ": dL/dc_-1");
    }
  }
}

// Inference's layout, each step writing c_t and h_t over c_{t-1} and h_{t-1}: step by step and
// in blocks, the same gate activations and the same last states as with every state kept.
TEST_F(LstmSequenceBlocks, KeepingTheLatestStateOnlyEndInTheStatesOfFullSequences) {
  for (const LstmSequenceCase& kept_case : testing::lstm_sequence_cases()) {
    const LstmSequenceCase c = kept_case.keeping_latest_only(true);
    HostLstmSequence kept(kept_case), steps(c);
    cpu_recurrent.lstm_forward_sequence(cpu, scratch, kept.sequence);
    cpu_recurrent.lstm_forward_sequence(cpu, scratch, steps.sequence);
    ASSERT_TRUE(kept.sequence.keeps_every_state()) << kept_case.str();
    ASSERT_EQ(steps.sequence.keeps_every_state(), c.timesteps == 1) << c.str();
    const std::vector<float> last_cells = testing::last_cells(c, kept.cells);
    expect_near(steps.gates, kept.gates, c.str() + ", step by step: gate activations");
    expect_near(steps.cells, last_cells, c.str() + ", step by step: last cell state");
    if (c.every_step)
      expect_near(steps.hidden, kept.hidden, c.str() + ", step by step: every hidden state");
    expect_near(steps.last, kept.last, c.str() + ", step by step: last hidden state");
    for (const Launch& launch : kLaunches) {
      const std::string what = c.str() + ", " + std::to_string(launch.rows_per_block) +
                               " rows per block, " + std::to_string(launch.threads) + " threads";
      HostLstmSequence blocks(c);
      launch_on_host(blocks.sequence, launch.rows_per_block, launch.threads,
                     [](auto&&... a) { bodies::lstm_forward_block(a...); });
      expect_near(blocks.gates, kept.gates, what + ": gate activations");
      expect_near(blocks.cells, last_cells, what + ": last cell state");
      if (c.every_step) expect_near(blocks.hidden, kept.hidden, what + ": every hidden state");
      expect_near(blocks.last, kept.last, what + ": last hidden state");
    }
  }
}

TEST(KernelBodies, TensorChunksVisitEveryElementOfEveryTensorOnce) {
  // Sizes below, at and past a chunk, and a list filled to its last place.
  std::vector<index_t> sizes = {1, TensorChunks::kChunkElements, TensorChunks::kChunkElements + 1,
                                3 * TensorChunks::kChunkElements - 5};
  while (sizes.size() < TensorChunks::kTensorsPerLaunch) sizes.push_back(sizes.size() * 37 + 3);
  std::vector<std::vector<int>> visits(sizes.size());
  TensorChunks list;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    visits[i].assign(static_cast<std::size_t>(sizes[i]), 0);
    // The element buffers' addresses say which tensor a visit is for.
    ASSERT_TRUE(list.add({.w = reinterpret_cast<float*>(&visits[i]), .n = sizes[i]}));
  }
  EXPECT_FALSE(list.add({.n = 1})) << "a full list takes no more tensors";
  auto visit = [&](const UpdateTensor& t, index_t e) {
    ++reinterpret_cast<std::vector<int>*>(t.w)->at(static_cast<std::size_t>(e));
  };
  const index_t threads = 3;  // a block of 3 threads, one after the other
  for (index_t chunk = 0; chunk < list.chunks(); ++chunk)
    for (index_t thread = 0; thread < threads; ++thread)
      list.run_chunk(chunk, thread, threads, visit);
  for (std::size_t i = 0; i < sizes.size(); ++i)
    for (std::size_t e = 0; e < visits[i].size(); ++e)
      ASSERT_EQ(visits[i][e], 1) << "tensor " << i << " of " << sizes[i] << ", element " << e;
}

TEST(KernelBodies, DropoutMasksDropTheirRateAndDependOnlyOnTheSeed) {
  const index_t n = 100000;
  std::vector<float> a(n), b(n), other(n);
  each(n, [&](index_t i) { bodies::dropout_mask(i, a.data(), 0.3f, 42); });
  each(n, [&](index_t i) { bodies::dropout_mask(i, b.data(), 0.3f, 42); });
  each(n, [&](index_t i) { bodies::dropout_mask(i, other.data(), 0.3f, 43); });
  EXPECT_EQ(a, b) << "the same seed must give the same mask";
  EXPECT_NE(a, other) << "another seed must give another mask";
  double kept = 0;
  for (float v : a) {
    ASSERT_TRUE(v == 0.0f || v == 1.0f);
    kept += v;
  }
  EXPECT_NEAR(kept / n, 0.7, 0.005);  // 0.7 +- 3.5 standard deviations (0.00145)
}

TEST(KernelBodies, GemmWithNothingToSumScalesOrZeroesC) {
  const index_t m = 3, n = 4, ldc = 6;
  std::vector<float> c(m * ldc, 2.0f), zeroed(m * ldc, std::nanf(""));
  each(m * n, [&](index_t i) { bodies::scale_matrix(i, c.data(), n, ldc, 0.5f); });
  each(m * n, [&](index_t i) { bodies::scale_matrix(i, zeroed.data(), n, ldc, 0.0f); });
  for (index_t r = 0; r < m; ++r)
    for (index_t j = 0; j < ldc; ++j) {
      EXPECT_EQ(c[r * ldc + j], j < n ? 1.0f : 2.0f) << r << "," << j;
      if (j < n) {
        EXPECT_EQ(zeroed[r * ldc + j], 0.0f) << "beta 0 must not read C (NaN) at " << r;
      }
    }
}

}  // namespace
}  // namespace tabula::detail
