// The memory promises of sessions, checked against what the OS reports.

#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include "support/process_memory.hpp"
#include "tabula/tabula.hpp"

namespace tabula {
namespace {

using testing::kMiB;
using testing::rss_bytes;
using testing::under_sanitizer;

std::size_t accounted(const Tensor& t) { return PoolResource::block_size(t.nbytes()); }

void expect_all_zero(const MemoryInfo& m) {
  EXPECT_EQ(m.current, 0u);
  EXPECT_EQ(m.reserved, 0u);
  EXPECT_EQ(m.allocations, 0u);
  EXPECT_EQ(m.live_objects, 0u);
  EXPECT_EQ(m.by_category.total(), 0u);
}

// Varied shapes: 1-D to 4-D, 16 KiB to 2 MiB each, float32. Element counts are whole pages
// (1024 floats), so the OS's RSS counts exactly the bytes written, with no partly used page
// per tensor blurring the comparison with the library's figure.
Shape random_shape(std::mt19937& rng) {
  const std::int64_t pages = 4 + static_cast<std::int64_t>(rng() % 512);
  switch (rng() % 4) {
    case 0: return Shape{pages * 1024};
    case 1: return Shape{pages * 16, 64};
    case 2: return Shape{pages * 4, 16, 16};
    default: return Shape{pages, 1, 32, 32};
  }
}

TEST(SessionMemory, ClearingReturnsRssToBaselineAndMakesKeptHandlesStale) {
  std::vector<Tensor> tensors;
  tensors.reserve(4096);
  Tensor kept;
  const std::size_t baseline = rss_bytes();
  {
    Session session({.device = Device::cpu(), .memory_limit = 0, .name = "rss"});
    {
      SessionScope use(session);
      std::mt19937 rng(7);
      std::size_t total = 0;
      while (total < 512 * kMiB) {
        tensors.push_back(zeros(random_shape(rng)));
        total += tensors.back().nbytes();
      }
      kept = tensors[tensors.size() / 2];
      const MemoryInfo m = session.memory_info();
      EXPECT_GE(m.current, 512 * kMiB);
      EXPECT_EQ(m.by_category[Category::data], m.current);
      EXPECT_EQ(m.live_objects, tensors.size());
      if (!under_sanitizer()) {
        const double delta = static_cast<double>(rss_bytes()) - static_cast<double>(baseline);
        EXPECT_NEAR(static_cast<double>(m.current), delta, 1.0 * kMiB)
            << "the library's figure must agree with the OS's RSS growth";
      }
      tensors.clear();
    }
    session.clear();
    expect_all_zero(session.memory_info());
    if (!under_sanitizer()) {
      EXPECT_LE(rss_bytes(), baseline + 2 * kMiB)
          << "RSS after clear: " << rss_bytes() / kMiB << " MiB, before: " << baseline / kMiB;
    }
    EXPECT_TRUE(kept.is_stale());
    try {
      (void)kept.to_vector<float>();
      FAIL() << "using a handle of a cleared session must throw";
    } catch (const SessionCleared& e) {
      EXPECT_NE(std::string(e.what()).find(kept.name()), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("'rss'"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW((void)kept.shape(), SessionCleared) << "the handle outlives its session safely";
}

TEST(SessionMemory, HundredCyclesOfAllocateAndClearLeaveRssFlatAndFiguresZero) {
  std::mt19937 rng(11);
  std::size_t first_baseline = 0;
  for (int cycle = 0; cycle < 100; ++cycle) {
    Session session({.name = "cycle"});
    {
      SessionScope use(session);
      const std::size_t target = (32 + rng() % 225) * kMiB;
      std::vector<Tensor> tensors;
      std::size_t total = 0;
      while (total < target) {
        tensors.push_back(ones(random_shape(rng)));
        total += tensors.back().nbytes();
      }
    }
    session.clear();
    expect_all_zero(session.memory_info());
    if (cycle == 0) first_baseline = rss_bytes();
    if (!under_sanitizer()) {
      ASSERT_LE(rss_bytes(), first_baseline + 2 * kMiB) << "cycle " << cycle;
    }
  }
  expect_all_zero(memory_info(Device::cpu()));
}

TEST(SessionMemory, OutOfMemoryNamesLimitCategoriesAndHoldersAndSessionStaysUsable) {
  Session session({.device = Device::cpu(), .memory_limit = 64 * kMiB, .name = "small"});
  SessionScope use(session);
  Tensor weights = zeros({6 * 1024 * 1024}, {.category = Category::weights, .name = "kernel"});
  Tensor batch = zeros({3 * 1024 * 1024}, {.category = Category::data, .name = "batch"});
  try {
    Tensor too_big = zeros({10 * 1024 * 1024}, {.name = "too_big"});  // 40 MiB more
    FAIL() << "expected OutOfMemory";
  } catch (const OutOfMemory& e) {
    const std::string message = e.what();
    EXPECT_EQ(e.requested(), 40 * kMiB);
    EXPECT_EQ(e.limit(), 64 * kMiB);
    for (const char* part : {"session 'small'", "cpu", "limit 64.0 MiB", "weights 24.0 MiB",
                             "data 12.0 MiB", "gradients 0 B", "kernel (weights, 24.0 MiB)",
                             "batch (data, 12.0 MiB)", "too_big"}) {
      EXPECT_NE(message.find(part), std::string::npos) << "missing '" << part << "' in "
                                                       << message;
    }
  }
  const MemoryInfo after = session.memory_info();
  EXPECT_EQ(after.current, accounted(weights) + accounted(batch)) << "nothing leaked";
  Tensor fits = ones({4 * 1024 * 1024});  // 16 MiB: within the limit
  EXPECT_EQ(fits.to_vector<float>()[123], 1.0f);
  weights = Tensor();
  // 32 MiB fits only once the weights' cached segment goes back: the pool releases and retries.
  Tensor now_fits = zeros({8 * 1024 * 1024});
  EXPECT_EQ(now_fits.numel(), 8 * 1024 * 1024);
  EXPECT_LE(session.memory_info().reserved, 64 * kMiB);
}

TEST(SessionMemory, AnAllocationTheOsRefusesIsOutOfMemoryAndTheSessionStaysUsable) {
  Session session({.device = Device::cpu(), .memory_limit = 0, .name = "unlimited"});
  SessionScope use(session);
  Tensor kept = ones({1024}, {.category = Category::weights, .name = "kept"});
  try {
    // 1 PiB: more than this machine's memory and swap, so mmap refuses it (no limit involved).
    Tensor huge = empty({std::int64_t{1} << 48}, {.name = "huge"});
    FAIL() << "expected OutOfMemory";
  } catch (const OutOfMemory& e) {
    EXPECT_EQ(e.limit(), 0u);
    EXPECT_EQ(e.requested(), std::size_t{4} << 48);
    const std::string message = e.what();
    for (const char* part : {"session 'unlimited'", "cpu", "huge", "weights 4.00 KiB", "limit none", "the OS refused",
                             "kept (weights, 4.00 KiB)"})
      EXPECT_NE(message.find(part), std::string::npos) << "missing '" << part << "' in " << message;
  }
  EXPECT_EQ(session.memory_info().current, accounted(kept));
  EXPECT_EQ(kept.to_vector<float>()[7], 1.0f);
  Tensor more = zeros({4096});
  EXPECT_EQ(session.memory_info().current, accounted(kept) + accounted(more));
}

TEST(SessionMemory, OneSessionSharedByFourThreadsKeepsExactFiguresAndRegistry) {
  Session session({.name = "shared"});
  constexpr int kThreads = 4;
  constexpr int kPerThread = 200;
  std::atomic<bool> done{false};
  // A reader walks the registry and the figures while the writers allocate and free.
  std::thread reader([&] {
    while (!done.load()) {
      const MemoryInfo m = session.memory_info();
      EXPECT_LE(m.current, m.reserved);
      for (const LiveObject& o : session.live_objects()) {
        EXPECT_GT(o.bytes, 0u);
        EXPECT_EQ(o.kind, "tensor");
      }
    }
  });
  auto writer = [&](unsigned seed) {
    SessionScope use(session);
    std::mt19937 rng(seed);
    std::vector<Tensor> mine;
    for (int i = 0; i < kPerThread; ++i) {
      mine.push_back(zeros({static_cast<std::int64_t>(1 + rng() % 5000)}));
      if (rng() % 3 == 0) mine.erase(mine.begin() + static_cast<long>(rng() % mine.size()));
    }
    return mine;
  };
  std::vector<std::vector<Tensor>> kept(kThreads);
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t)
    writers.emplace_back([&, t] { kept[static_cast<std::size_t>(t)] = writer(static_cast<unsigned>(t + 1)); });
  for (auto& w : writers) w.join();
  done.store(true);
  reader.join();
  std::size_t expected = 0, count = 0;
  for (const auto& v : kept)
    for (const Tensor& t : v) expected += accounted(t), ++count;
  const MemoryInfo m = session.memory_info();
  EXPECT_EQ(m.current, expected);
  EXPECT_EQ(m.allocations, count);
  EXPECT_EQ(session.live_objects().size(), count);
  session.clear();
  expect_all_zero(session.memory_info());
}

TEST(SessionMemory, TwoThreadsWithTheirOwnSessionsKeepExactFigures) {
  auto worker = [](unsigned seed) {
    Session session({.name = "thread_" + std::to_string(seed)});
    SessionScope use(session);
    std::mt19937 rng(seed);
    for (int round = 0; round < 50; ++round) {
      std::vector<Tensor> tensors;
      std::size_t expected = 0;
      for (int i = 0; i < 20; ++i) {
        tensors.push_back(zeros({static_cast<std::int64_t>(1 + rng() % 100000)}));
        expected += accounted(tensors.back());
      }
      const MemoryInfo m = session.memory_info();
      EXPECT_EQ(m.current, expected);
      EXPECT_EQ(m.allocations, tensors.size());
      clear_session();
      expect_all_zero(session.memory_info());
      for (const Tensor& t : tensors) EXPECT_TRUE(t.is_stale());
    }
  };
  std::thread a(worker, 1), b(worker, 2);
  a.join();
  b.join();
  expect_all_zero(memory_info(Device::cpu()));
}

TEST(SessionMemory, DestroyingASessionClearsIt) {
  Tensor survivor;
  {
    Session session({.name = "short"});
    SessionScope use(session);
    survivor = zeros({1000});
    EXPECT_EQ(memory_info(Device::cpu()).current, accounted(survivor));
  }
  EXPECT_TRUE(survivor.is_stale());
  expect_all_zero(memory_info(Device::cpu()));
}

}  // namespace
}  // namespace tabula
