#include "backend/cpu/gemm/packed_gemm.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "backend/cpu/cpu_kernels.hpp"
#include "backend/random_floats.hpp"
#include "session/detail/session_scratch.hpp"
#include "tabula/core/errors.hpp"
#include "tabula/session/session.hpp"

namespace tabula::detail {
namespace {

using idx = std::int64_t;

struct Problem {
  bool ta, tb;
  idx m, n, k;
  float alpha, beta;
  idx pad = 3;  // leading dimensions exceed the extents by this much
  idx lda() const { return (ta ? m : k) + pad; }
  idx ldb() const { return (tb ? k : n) + pad; }
  idx ldc() const { return n + pad; }
  std::string name() const {
    return std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k) +
           (ta ? " A^T" : "") + (tb ? " B^T" : "") + " alpha " + std::to_string(alpha) + " beta " +
           std::to_string(beta);
  }
};

using testing::random_floats;

struct Operands {
  std::vector<float> a, b, c;
};

Operands operands(const Problem& p) {
  return {random_floats(static_cast<std::size_t>((p.ta ? p.k : p.m) * p.lda()), 1),
          random_floats(static_cast<std::size_t>((p.tb ? p.n : p.k) * p.ldb()), 2),
          random_floats(static_cast<std::size_t>(p.m * p.ldc()), 3)};
}

float op_a(const Problem& p, const Operands& o, idx i, idx l) {
  return p.ta ? o.a[static_cast<std::size_t>(l * p.lda() + i)]
              : o.a[static_cast<std::size_t>(i * p.lda() + l)];
}
float op_b(const Problem& p, const Operands& o, idx l, idx j) {
  return p.tb ? o.b[static_cast<std::size_t>(j * p.ldb() + l)]
              : o.b[static_cast<std::size_t>(l * p.ldb() + j)];
}

// A kernel's scratch for one problem, 64-byte aligned as the session's pool gives it.
class AlignedScratch {
 public:
  AlignedScratch(const GemmKernel& kernel, const Problem& p)
      : floats_(static_cast<std::size_t>(kernel.scratch_floats(p.m, p.n, p.k)) + 16) {}
  float* data() {
    return reinterpret_cast<float*>((reinterpret_cast<std::uintptr_t>(floats_.data()) + 63) &
                                    ~std::uintptr_t{63});
  }

 private:
  std::vector<float> floats_;
};

// Runs `kernel` and checks every element of C against a double-precision sum, within the
// rounding bound of a float sum of k + 2 terms; C's padding columns must be untouched.
void expect_matches_reference(const GemmKernel& kernel, const Problem& p) {
  Operands o = operands(p);
  const std::vector<float> c0 = o.c;
  AlignedScratch scratch(kernel, p);
  kernel.run({p.ta, p.tb, p.m, p.n, p.k, p.alpha, o.a.data(), p.lda(), o.b.data(), p.ldb(), p.beta,
              o.c.data(), p.ldc()},
             scratch.data());
  const double unit = std::ldexp(1.0, -24);
  for (idx i = 0; i < p.m; ++i) {
    for (idx j = 0; j < p.ldc(); ++j) {
      const std::size_t at = static_cast<std::size_t>(i * p.ldc() + j);
      if (j >= p.n) {
        ASSERT_EQ(o.c[at], c0[at])
            << kernel.isa << " " << p.name() << ": wrote C's padding at (" << i << ", " << j << ")";
        continue;
      }
      double sum = 0.0, magnitude = 0.0;
      for (idx l = 0; l < p.k; ++l) {
        const double term = static_cast<double>(op_a(p, o, i, l)) * op_b(p, o, l, j);
        sum += term;
        magnitude += std::abs(term);
      }
      const double expected = p.alpha * sum + p.beta * c0[at];
      const double bound = (static_cast<double>(p.k) + 4.0) * unit *
                               (std::abs(p.alpha) * magnitude + std::abs(p.beta * c0[at])) +
                           1e-30;
      ASSERT_NEAR(o.c[at], expected, bound)
          << kernel.isa << " " << p.name() << ", element (" << i << ", " << j << ")";
    }
  }
}

// Extents below, at and above every micro-tile (4-8 rows, 8-32 columns), k across a block
// boundary (600 > 256) and n across a column block (1100 > 512), every transpose.
std::vector<Problem> problems() {
  std::vector<Problem> out;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      for (idx m : {1, 5, 8, 13, 96, 101})
        for (idx n : {1, 10, 32, 47}) out.push_back({ta, tb, m, n, 37, 1.0f, 0.0f});
      out.push_back({ta, tb, 33, 70, 600, 1.5f, 0.5f});
      out.push_back({ta, tb, 9, 1100, 20, -1.0f, 1.0f});
      out.push_back({ta, tb, 200, 64, 300, 1.0f, 1.0f});
    }
  return out;
}

TEST(PackedGemm, EveryVariantThisCpuRunsMatchesADoublePrecisionSum) {
  const std::vector<const GemmKernel*> kernels = runnable_gemm_kernels();
  ASSERT_FALSE(kernels.empty());
  EXPECT_STREQ(kernels.back()->isa, "baseline");
  EXPECT_EQ(&best_gemm_kernel(), kernels.front());
  for (const GemmKernel* kernel : kernels)
    for (const Problem& p : problems()) expect_matches_reference(*kernel, p);
}

TEST(PackedGemm, WithBetaZeroDoesNotReadC) {
  const Problem p{false, false, 19, 45, 30, 1.0f, 0.0f};
  for (const GemmKernel* kernel : runnable_gemm_kernels()) {
    Operands o = operands(p);
    std::fill(o.c.begin(), o.c.end(), std::numeric_limits<float>::quiet_NaN());
    AlignedScratch scratch(*kernel, p);
    kernel->run({p.ta, p.tb, p.m, p.n, p.k, 1.0f, o.a.data(), p.lda(), o.b.data(), p.ldb(), 0.0f,
                 o.c.data(), p.ldc()},
                scratch.data());
    for (idx i = 0; i < p.m; ++i)
      for (idx j = 0; j < p.n; ++j)
        ASSERT_FALSE(std::isnan(o.c[static_cast<std::size_t>(i * p.ldc() + j)]))
            << kernel->isa << " read the NaN C held at (" << i << ", " << j << ")";
  }
}

TEST(PackedGemm, WithNoDepthScalesCByBeta) {
  for (const GemmKernel* kernel : runnable_gemm_kernels()) {
    EXPECT_EQ(kernel->scratch_floats(4, 4, 0), 0);
    std::vector<float> c = {1, 2, 3, 4};
    kernel->run({false, false, 2, 2, 0, 1.0f, nullptr, 1, nullptr, 2, 0.5f, c.data(), 2}, nullptr);
    EXPECT_EQ(c, (std::vector<float>{0.5f, 1, 1.5f, 2})) << kernel->isa;
  }
}

// The packing buffers are the session's: counted as workspace while the GEMM runs, back in
// the pool when it returns, so nothing outlives the call.
TEST(PackedGemm, PackingBuffersAreSessionWorkspaceOnlyWhileTheCallRuns) {
  Session session;
  const std::vector<float> a = random_floats(128 * 784, 1), b = random_floats(784 * 256, 2);
  std::vector<float> c(128 * 256);
  CpuKernels kernels;
  {
    SessionScratch scratch(session.core(), Device::cpu());
    kernels.gemm(scratch, false, false, 128, 256, 784, 1.0f, a.data(), 784, b.data(), 256, 0.0f,
                 c.data(), 256);
  }
  const MemoryInfo info = session.memory_info();
  EXPECT_EQ(info.current, 0u);
  EXPECT_GE(info.peak_by_category[Category::workspace],
            static_cast<std::size_t>(best_gemm_kernel().scratch_floats(128, 256, 784)) *
                sizeof(float) / 2)
      << "the packing buffers were not taken from the session";
  session.clear();
  EXPECT_EQ(session.memory_info().reserved, 0u);
}

TEST(PackedGemm, ASessionTooSmallForThePackingBuffersGetsOutOfMemoryAndCIsUntouched) {
  Session session(SessionOptions{.memory_limit = 4096, .name = "tiny"});
  const std::vector<float> a = random_floats(64 * 500, 1), b = random_floats(500 * 300, 2);
  std::vector<float> c(64 * 300, 7.0f);
  CpuKernels kernels;
  SessionScratch scratch(session.core(), Device::cpu());
  try {
    kernels.gemm(scratch, false, false, 64, 300, 500, 1.0f, a.data(), 500, b.data(), 300, 0.0f,
                 c.data(), 300);
    FAIL() << "a 4 KiB session gave the GEMM its packing buffers";
  } catch (const OutOfMemory& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("kernel scratch"), std::string::npos) << what;
    EXPECT_NE(what.find("workspace"), std::string::npos) << what;
    EXPECT_NE(what.find("tiny"), std::string::npos) << what;
  }
  EXPECT_EQ(c, std::vector<float>(64 * 300, 7.0f));
  EXPECT_EQ(session.memory_info().current, 0u);
}

}  // namespace
}  // namespace tabula::detail
