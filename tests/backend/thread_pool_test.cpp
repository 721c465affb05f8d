#include "backend/cpu/thread_pool.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "backend/cpu/cpu_kernels.hpp"
#include "tabula/core/errors.hpp"
#include "tabula/core/threads.hpp"

namespace tabula::detail {
namespace {

// Each test runs in its own process, so the process's pool starts at its default size.

std::vector<int> hits_of_one_loop(int parts) {
  std::vector<std::atomic<int>> hits(static_cast<std::size_t>(parts));
  ThreadPool::instance().run(parts, [&](int i) { hits[static_cast<std::size_t>(i)]++; });
  std::vector<int> out;
  for (auto& h : hits) out.push_back(h.load());
  return out;
}

TEST(ThreadPool, RunsEveryPartExactlyOnceWhateverTheCountOfPartsAndThreads) {
  for (int threads : {1, 2, 3, 5}) {
    set_num_threads(threads);
    for (int parts : {0, 1, 2, 3, 7, 64}) {
      EXPECT_EQ(hits_of_one_loop(parts), std::vector<int>(static_cast<std::size_t>(parts), 1))
          << threads << " threads, " << parts << " parts";
    }
  }
}

TEST(ThreadPool, RunsPartsOnItsWorkersBesideTheCaller) {
  set_num_threads(3);
  // Parts that wait for each other can only finish if they run at the same time.
  std::atomic<int> arrived{0};
  std::mutex m;
  std::set<std::thread::id> threads;
  ThreadPool::instance().run(3, [&](int) {
    {
      std::lock_guard lock(m);
      threads.insert(std::this_thread::get_id());
    }
    arrived++;
    while (arrived.load() < 3) std::this_thread::yield();
  });
  EXPECT_EQ(threads.size(), 3u);
  EXPECT_TRUE(threads.count(std::this_thread::get_id()));
}

TEST(ThreadPool, LoopsStartedFromManyThreadsAtOnceEachRunEveryPartOnce) {
  set_num_threads(2);
  std::vector<std::thread> users;
  std::atomic<int> wrong{0};
  for (int u = 0; u < 4; ++u) {
    users.emplace_back([&, u] {
      for (int loop = 0; loop < 300; ++loop) {
        const int parts = 1 + (loop + u) % 9;
        if (hits_of_one_loop(parts) != std::vector<int>(static_cast<std::size_t>(parts), 1))
          wrong++;
      }
    });
  }
  for (auto& t : users) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(ThreadPool, ALoopInsideAPartRunsOnThatPartsThread) {
  set_num_threads(2);
  std::atomic<int> inner{0};
  std::atomic<int> elsewhere{0};
  ThreadPool::instance().run(2, [&](int) {
    const auto self = std::this_thread::get_id();
    ThreadPool::instance().run(4, [&](int) {
      inner++;
      if (std::this_thread::get_id() != self) elsewhere++;
    });
  });
  EXPECT_EQ(inner.load(), 8);
  EXPECT_EQ(elsewhere.load(), 0);
}

TEST(ThreadPool, SetNumThreadsResizesItAndRefusesLessThanOne) {
  set_num_threads(3);
  EXPECT_EQ(get_num_threads(), 3);
  EXPECT_EQ(hits_of_one_loop(5), std::vector<int>(5, 1));
  set_num_threads(1);
  EXPECT_EQ(get_num_threads(), 1);
  EXPECT_EQ(hits_of_one_loop(5), std::vector<int>(5, 1));
  EXPECT_THROW(set_num_threads(0), InvalidArgument);
  EXPECT_EQ(get_num_threads(), 1);
}

struct GemmCase {
  bool ta, tb;
  index_t m, n, k;
  std::vector<float> a, b;
};

// Forward, weight gradient and input gradient of a 784-128 layer at batch 128 (rows split),
// a wide output (columns split), and extents that do not divide evenly.
std::vector<GemmCase> gemm_cases() {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<GemmCase> cases = {{false, false, 128, 128, 784, {}, {}},
                                 {true, false, 784, 128, 128, {}, {}},
                                 {false, true, 128, 784, 128, {}, {}},
                                 {false, false, 40, 1000, 300, {}, {}},
                                 {true, true, 333, 97, 211, {}, {}}};
  for (GemmCase& c : cases) {
    c.a.resize(static_cast<std::size_t>(c.m * c.k));
    c.b.resize(static_cast<std::size_t>(c.k * c.n));
    for (float& v : c.a) v = u(rng);
    for (float& v : c.b) v = u(rng);
  }
  return cases;
}

// C = 1.5 op(A) op(B) + 0.5 C on the pool as it is now.
std::vector<float> gemm(const GemmCase& c) {
  std::vector<float> out(static_cast<std::size_t>(c.m * c.n), 0.25f);
  CpuKernels kernels;
  kernels.gemm(c.ta, c.tb, c.m, c.n, c.k, 1.5f, c.a.data(), c.ta ? c.m : c.k, c.b.data(),
               c.tb ? c.k : c.n, 0.5f, out.data(), c.n);
  return out;
}

std::string name_of(const GemmCase& c) {
  return std::to_string(c.m) + "x" + std::to_string(c.n) + "x" + std::to_string(c.k) +
         (c.ta ? " A^T" : "") + (c.tb ? " B^T" : "");
}

// Sum of |terms| of element (i, j): float rounding of the sum is bounded by a small multiple of
// it times the machine epsilon.
double magnitude(const GemmCase& c, index_t i, index_t j) {
  double sum = 0.5 * 0.25;
  for (index_t l = 0; l < c.k; ++l) {
    const float a = c.ta ? c.a[static_cast<std::size_t>(l * c.m + i)] : c.a[static_cast<std::size_t>(i * c.k + l)];
    const float b = c.tb ? c.b[static_cast<std::size_t>(j * c.k + l)] : c.b[static_cast<std::size_t>(l * c.n + j)];
    sum += 1.5 * std::abs(static_cast<double>(a) * b);
  }
  return sum;
}

TEST(CpuKernels, GemmOnAnyNumberOfThreadsMatchesOneThreadWithinRounding) {
  for (const GemmCase& c : gemm_cases()) {
    set_num_threads(1);
    const std::vector<float> one = gemm(c);
    for (int threads : {2, 3, 4}) {
      set_num_threads(threads);
      const std::vector<float> split = gemm(c);
      ASSERT_EQ(split.size(), one.size());
      for (index_t i = 0; i < c.m; ++i) {
        for (index_t j = 0; j < c.n; ++j) {
          const std::size_t at = static_cast<std::size_t>(i * c.n + j);
          ASSERT_NEAR(split[at], one[at], 1e-6 * magnitude(c, i, j))
              << name_of(c) << " on " << threads << " threads, element (" << i << ", " << j << ")";
        }
      }
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

}  // namespace
}  // namespace tabula::detail
