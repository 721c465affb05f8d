// MemoryTimeline: a bounded record of a session's (or a device's) memory over time.

#include "tabula/session/memory_timeline.hpp"

#include <gtest/gtest.h>

#include <thread>

#include "support/expect_error.hpp"
#include "tabula/core/errors.hpp"
#include "tabula/core/tensor.hpp"
#include "tabula/session/session.hpp"
#include "tabula/session/session_scope.hpp"

namespace tabula {
namespace {

TEST(MemoryTimeline, SamplesFollowASessionThroughAllocationAndClear) {
  Session s({.name = "timeline"});
  MemoryTimeline timeline(s);
  EXPECT_EQ(timeline.sample().current, 0u);
  {
    SessionScope use(s);
    const Tensor w = zeros({256, 256}, {.category = Category::weights});
    const MemorySample held = timeline.sample();
    EXPECT_EQ(held.current, s.memory_info().current);
    EXPECT_EQ(held.by_category[Category::weights], 256u * 256u * 4u);
    EXPECT_GE(held.reserved, held.current);
    EXPECT_GT(held.rss, 0u);
    s.clear();
  }
  const MemorySample cleared = timeline.sample();
  EXPECT_EQ(cleared.current, 0u);
  EXPECT_EQ(cleared.reserved, 0u);
  const auto samples = timeline.samples();
  ASSERT_EQ(samples.size(), 3u);
  EXPECT_LE(samples[0].seconds, samples[1].seconds);
  EXPECT_LE(samples[1].seconds, samples[2].seconds);
}

TEST(MemoryTimeline, TheClockSamplesUntilStopped) {
  Session s({.name = "clock"});
  MemoryTimeline timeline(s, {.interval = std::chrono::milliseconds(2)});
  timeline.start();
  EXPECT_TRUE(timeline.running());
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  timeline.stop();
  EXPECT_FALSE(timeline.running());
  const std::size_t n = timeline.samples().size();
  EXPECT_GE(n, 5u);  // the start and stop samples and a few ticks
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(timeline.samples().size(), n);
}

TEST(MemoryTimeline, StaysWithinItsCapacityByThinningAndKeepsTheWholeSpan) {
  Session s({.name = "bounded"});
  MemoryTimeline timeline(s, {.interval = std::chrono::milliseconds(5), .capacity = 8});
  for (int i = 0; i < 20; ++i) timeline.sample();
  const auto samples = timeline.samples();
  EXPECT_LE(samples.size(), 8u);
  ASSERT_GT(timeline.thinned(), 0u);
  ASSERT_LT(timeline.thinned(), 10u);
  EXPECT_EQ(timeline.interval(), std::chrono::milliseconds(5) * (1 << timeline.thinned()));
  for (int i = 0; i < 1000; ++i) timeline.sample();
  EXPECT_EQ(timeline.interval(), std::chrono::milliseconds(60000));  // the longest it gets
  for (std::size_t i = 1; i < samples.size(); ++i) EXPECT_LE(samples[i - 1].seconds, samples[i].seconds);
}

TEST(MemoryTimeline, ADeviceTimelineSumsEverySessionOnTheDevice) {
  MemoryTimeline timeline(Device::cpu());
  const std::size_t before = timeline.sample().current;
  Session a({.name = "a"}), b({.name = "b"});
  Tensor ta, tb;
  {
    SessionScope use(a);
    ta = zeros({1024});
  }
  {
    SessionScope use(b);
    tb = zeros({2048});
  }
  EXPECT_EQ(timeline.sample().current, before + a.memory_info().current + b.memory_info().current);
}

TEST(MemoryTimeline, RefusesACapacityBelowTwo) {
  Session s;
  testing::expect_contains(
      testing::thrown_message<InvalidArgument>([&] { MemoryTimeline t(s, {.capacity = 1}); }),
      {"MemoryTimeline capacity", ">= 2", "got 1"});
}

}  // namespace
}  // namespace tabula
