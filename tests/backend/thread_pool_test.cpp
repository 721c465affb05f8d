#include "backend/cpu/thread_pool.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

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

// The environment's thread count: the first well-formed variable wins; one that is set to
// something else is named for the user instead of being silently dropped or half-read.
TEST(ThreadPool, TakesItsSizeFromTheFirstWellFormedVariableAndNamesTheOthers) {
  const auto lookup = [](std::map<std::string, const char*> env) {
    return [env](const char* name) -> const char* {
      auto it = env.find(name);
      return it == env.end() ? nullptr : it->second;
    };
  };
  std::string ignored;
  EXPECT_EQ(threads_from_environment(
                lookup({{"TABULA_NUM_THREADS", "3"}, {"OPENBLAS_NUM_THREADS", "5"}}), ignored),
            3);
  EXPECT_EQ(ignored, "");
  EXPECT_EQ(threads_from_environment(lookup({{"OMP_NUM_THREADS", "2"}}), ignored), 2);
  EXPECT_EQ(threads_from_environment(lookup({}), ignored), 0);
  EXPECT_EQ(ignored, "");

  EXPECT_EQ(threads_from_environment(lookup({{"TABULA_NUM_THREADS", "4x"},
                                             {"OPENBLAS_NUM_THREADS", "0"},
                                             {"OMP_NUM_THREADS", "6"}}),
                                     ignored),
            6);
  EXPECT_NE(ignored.find("TABULA_NUM_THREADS='4x'"), std::string::npos) << ignored;
  EXPECT_NE(ignored.find("OPENBLAS_NUM_THREADS='0'"), std::string::npos) << ignored;
  ignored.clear();
  EXPECT_EQ(threads_from_environment(lookup({{"TABULA_NUM_THREADS", "abc"}}), ignored), 0);
  EXPECT_NE(ignored.find("TABULA_NUM_THREADS='abc' is not a whole number of threads"),
            std::string::npos)
      << ignored;
}

}  // namespace
}  // namespace tabula::detail
