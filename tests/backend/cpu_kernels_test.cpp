#include "backend/cpu/cpu_kernels.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "backend/cpu/thread_pool.hpp"
#include "backend/random_floats.hpp"
#include "session/detail/session_scratch.hpp"
#include "tabula/core/threads.hpp"
#include "tabula/session/session.hpp"

namespace tabula::detail {
namespace {

using testing::random_floats;

struct GemmCase {
  bool ta, tb;
  index_t m, n, k;
  std::vector<float> a, b;
};

// Forward, weight gradient and input gradient of a 784-128 layer at batch 128 (rows split),
// a wide output (columns split), and extents that do not divide evenly.
std::vector<GemmCase> gemm_cases() {
  std::vector<GemmCase> cases = {{false, false, 128, 128, 784, {}, {}},
                                 {true, false, 784, 128, 128, {}, {}},
                                 {false, true, 128, 784, 128, {}, {}},
                                 {false, false, 40, 1000, 300, {}, {}},
                                 {true, true, 333, 97, 211, {}, {}}};
  for (GemmCase& c : cases) {
    c.a = random_floats(static_cast<std::size_t>(c.m * c.k), 7);
    c.b = random_floats(static_cast<std::size_t>(c.k * c.n), 8);
  }
  return cases;
}

// C = 1.5 op(A) op(B) + 0.5 C on the pool as it is now.
std::vector<float> gemm(const GemmCase& c) {
  std::vector<float> out(static_cast<std::size_t>(c.m * c.n), 0.25f);
  Session session;
  SessionScratch scratch(session.core(), Device::cpu());
  CpuKernels kernels;
  kernels.gemm(scratch, c.ta, c.tb, c.m, c.n, c.k, 1.5f, c.a.data(), c.ta ? c.m : c.k, c.b.data(),
               c.tb ? c.k : c.n, 0.5f, out.data(), c.n);
  return out;
}

std::string name_of(const GemmCase& c) {
  return std::to_string(c.m) + "x" + std::to_string(c.n) + "x" + std::to_string(c.k) +
         (c.ta ? " A^T" : "") + (c.tb ? " B^T" : "");
}

// The packed GEMM sums each element of C in an order fixed by k alone, so how the pool splits
// C (rows or columns, into 1-4 parts) cannot change a single bit.
TEST(CpuKernels, GemmIsBitwiseTheSameOnAnyNumberOfThreads) {
  for (const GemmCase& c : gemm_cases()) {
    set_num_threads(1);
    const std::vector<float> one = gemm(c);
    for (int threads : {2, 3, 4}) {
      set_num_threads(threads);
      EXPECT_EQ(gemm(c), one) << name_of(c) << " on " << threads << " threads";
    }
  }
}

// What a thread computes must not depend on what other threads do at the same time (the
// concurrency tests train models side by side and expect bitwise the figures of a run alone).
TEST(CpuKernels, GemmIsBitwiseTheSameWhenAnotherThreadHoldsThePool) {
  set_num_threads(2);
  const std::vector<GemmCase> cases = gemm_cases();
  std::vector<std::vector<float>> alone;
  for (const GemmCase& c : cases) alone.push_back(gemm(c));

  std::atomic<bool> holding{false}, release{false};
  std::thread holder([&] {
    ThreadPool::instance().run(2, [&](int) {
      holding = true;
      while (!release.load()) std::this_thread::yield();
    });
  });
  while (!holding.load()) std::this_thread::yield();
  for (std::size_t i = 0; i < cases.size(); ++i)
    EXPECT_EQ(gemm(cases[i]), alone[i]) << name_of(cases[i]) << " beside a busy pool";
  release = true;
  holder.join();
}

// Everything but GEMM splits over independent samples or rows: the parts' results are bitwise
// those of one pass. The shapes are the CNN benchmark's first layer at batch 64.
struct LoopResults {
  std::vector<float> columns, folded, pooled, pool_grad, biased, relu, relu_grad, softmax;
  std::vector<std::int32_t> argmax;
  bool operator==(const LoopResults&) const = default;
};

LoopResults loops_on(int threads) {
  set_num_threads(threads);
  CpuKernels k;
  const Window2d conv{64, 28, 28, 1, 3, 3, 1, 1, 0, 0, 26, 26};
  const Window2d pool{64, 26, 26, 32, 2, 2, 2, 2, 0, 0, 13, 13};
  const std::vector<float> image = random_floats(64 * 28 * 28, 1);
  const std::vector<float> maps = random_floats(64 * 26 * 26 * 32, 2);
  const std::vector<float> grads = random_floats(64 * 13 * 13 * 32, 3);
  const std::vector<float> bias = random_floats(32, 4);
  LoopResults r;
  r.columns.resize(64 * 26 * 26 * 9);
  k.im2col(conv, image.data(), 0, 64, r.columns.data());
  r.folded.resize(image.size());
  k.col2im(conv, r.columns.data(), 0, 64, r.folded.data());
  r.pooled.resize(grads.size());
  r.argmax.resize(grads.size());
  k.max_pool_forward(pool, maps.data(), r.pooled.data(), r.argmax.data());
  r.pool_grad.resize(maps.size());
  k.max_pool_backward(pool, grads.data(), r.argmax.data(), r.pool_grad.data());
  r.biased = maps;
  k.add_bias(r.biased.data(), bias.data(), 64 * 26 * 26, 32);
  r.relu.resize(maps.size());
  k.activation_forward(Activation::relu, r.biased.data(), r.relu.data(), 64 * 26 * 26, 32);
  r.relu_grad.resize(maps.size());
  k.activation_backward(Activation::relu, r.relu.data(), maps.data(), r.relu_grad.data(),
                        64 * 26 * 26, 32);
  r.softmax.resize(maps.size());
  k.activation_forward(Activation::softmax, maps.data(), r.softmax.data(), 64 * 26 * 26, 32);
  return r;
}

TEST(CpuKernels, UnfoldingPoolingBiasAndActivationsAreBitwiseTheSameOnAnyNumberOfThreads) {
  const LoopResults one = loops_on(1);
  for (int threads : {2, 3, 4}) {
    const LoopResults many = loops_on(threads);
    EXPECT_EQ(many.columns, one.columns) << threads << " threads";
    EXPECT_EQ(many.folded, one.folded) << threads << " threads";
    EXPECT_EQ(many.pooled, one.pooled) << threads << " threads";
    EXPECT_EQ(many.argmax, one.argmax) << threads << " threads";
    EXPECT_EQ(many.pool_grad, one.pool_grad) << threads << " threads";
    EXPECT_EQ(many.biased, one.biased) << threads << " threads";
    EXPECT_EQ(many.relu, one.relu) << threads << " threads";
    EXPECT_EQ(many.relu_grad, one.relu_grad) << threads << " threads";
    EXPECT_EQ(many.softmax, one.softmax) << threads << " threads";
  }
}

TEST(CpuKernels, OptimizerUpdatesAreBitwiseTheSameOnAnyNumberOfThreads) {
  const std::size_t n = 100352;  // the first kernel of the small MLP: split across threads
  const std::vector<float> g = random_floats(n, 5);
  const auto run = [&](int threads) {
    set_num_threads(threads);
    CpuKernels k;
    std::vector<float> w = random_floats(n, 6), m(n, 0.0f), v(n, 0.0f), ms(n, 0.0f), mom(n, 0.0f);
    std::vector<float> w_sgd = w, vel(n, 0.0f), w_rms = w;
    for (int step = 0; step < 3; ++step) {
      k.adam_update(w.data(), g.data(), m.data(), v.data(), static_cast<index_t>(n), 1e-3f, 0.9f,
                    0.999f, 1e-7f, 0.0f);
      k.sgd_update(w_sgd.data(), g.data(), vel.data(), static_cast<index_t>(n), 0.01f, 0.9f, true);
      k.rmsprop_update(w_rms.data(), g.data(), ms.data(), mom.data(), static_cast<index_t>(n),
                       1e-3f, 0.9f, 0.5f, 1e-7f);
    }
    return std::vector<std::vector<float>>{w, m, v, w_sgd, vel, w_rms, ms, mom};
  };
  const auto one = run(1);
  for (int threads : {2, 3}) EXPECT_EQ(run(threads), one) << threads << " threads";
}

// Scratch that remembers the largest block a kernel asked for.
class LargestRequest final : public Scratch {
 public:
  void* acquire(std::size_t bytes) override {
    largest = std::max(largest, bytes);
    return ::operator new (bytes, std::align_val_t{64});
  }
  void release(void* data, std::size_t) noexcept override {
    ::operator delete (data, std::align_val_t{64});
  }
  DeviceContext& context(DeviceContextFactory) override { throw Error("no contexts here"); }
  std::size_t largest = 0;
};

TEST(CpuKernels, ScratchReservedForAGemmServesEverySmallerOne) {
  // The part count follows m * n * k, so a smaller GEMM may be cut into fewer, wider parts:
  // what a layer reserves for its full batch must still serve its last batch, and the LSTM's
  // k = batch * timesteps - 1.
  const int threads_before = get_num_threads();
  CpuKernels kernels;
  for (int threads : {1, 2, 3, 4}) {
    set_num_threads(threads);
    for (const auto& [m, n, k] :
         {std::array<index_t, 3>{32, 128, 256}, {256, 128, 64}, {64, 1024, 784}, {200, 40, 3000}}) {
      const std::size_t reserved = kernels.gemm_scratch_bytes(m, n, k);
      for (index_t mm = m / 2; mm <= m; mm += std::max<index_t>(1, m / 8))
        for (index_t nn = n / 2; nn <= n; nn += std::max<index_t>(1, n / 8))
          for (index_t kk : {k - 1, k / 2, k}) {
            std::vector<float> a(static_cast<std::size_t>(mm * kk), 0.5f),
                b(static_cast<std::size_t>(kk * nn), 0.25f), c(static_cast<std::size_t>(mm * nn));
            LargestRequest scratch;
            kernels.gemm(scratch, false, false, mm, nn, kk, 1.0f, a.data(), kk, b.data(), nn, 0.0f,
                         c.data(), nn);
            ASSERT_LE(scratch.largest, reserved)
                << threads << " threads: " << mm << "x" << nn << "x" << kk
                << " within a reservation for " << m << "x" << n << "x" << k;
          }
    }
  }
  set_num_threads(threads_before);
}

TEST(CpuKernels, TransposeMovesEveryElementToTheMirroredPlace) {
  CpuKernels kernels;
  // Sizes past the 32x32 tiles and not multiples of them, a single row and a single column.
  for (const auto& [rows, cols] : {std::pair<index_t, index_t>{37, 70}, {1, 5}, {6, 1}, {64, 32}}) {
    const auto a = testing::random_floats(static_cast<std::size_t>(rows * cols), 41);
    std::vector<float> t(a.size(), -1.0f);
    kernels.transpose(a.data(), rows, cols, t.data());
    for (index_t r = 0; r < rows; ++r)
      for (index_t c = 0; c < cols; ++c)
        ASSERT_EQ(t[c * rows + r], a[r * cols + c])
            << rows << "x" << cols << " at " << r << ", " << c;
  }
}

}  // namespace
}  // namespace tabula::detail
