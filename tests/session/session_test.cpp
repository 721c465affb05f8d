// Sessions as users see them: scopes, names, registry, figures, seeds.

#include "tabula/session/session.hpp"

#include <gtest/gtest.h>

#include "tabula/tabula.hpp"

namespace tabula {
namespace {

TEST(Session, ScopesMakeASessionCurrentAndNest) {
  Session outer({.name = "outer"}), inner({.name = "inner"});
  EXPECT_EQ(&current_session(), &default_session());
  {
    SessionScope a(outer);
    EXPECT_EQ(&current_session(), &outer);
    {
      SessionScope b(inner);
      EXPECT_EQ(&current_session(), &inner);
      Tensor t = zeros({10});
      EXPECT_EQ(inner.memory_info().allocations, 1u);
      EXPECT_EQ(outer.memory_info().allocations, 0u);
    }
    EXPECT_EQ(&current_session(), &outer);
  }
  EXPECT_EQ(&current_session(), &default_session());
}

TEST(Session, ClearSessionClearsTheScopedSessionOnly) {
  Session mine({.name = "mine"});
  Tensor outside = zeros({4});  // in the default session
  Tensor inside;
  {
    SessionScope use(mine);
    inside = zeros({4});
    clear_session();
  }
  EXPECT_TRUE(inside.is_stale());
  EXPECT_FALSE(outside.is_stale());
}

TEST(Session, NamesAreUniquePerPrefixAndStartOverAfterClear) {
  Session s({.name = "names"});
  EXPECT_EQ(s.unique_name("dense"), "dense");
  EXPECT_EQ(s.unique_name("dense"), "dense_1");
  EXPECT_EQ(s.unique_name("conv2d"), "conv2d");
  EXPECT_EQ(s.unique_name("dense"), "dense_2");
  s.clear();
  EXPECT_EQ(s.unique_name("dense"), "dense");
  EXPECT_EQ(s.clear_count(), 1u);
}

TEST(Session, ListsLiveObjectsWithNameKindCategoryBytesAndHandles) {
  Session s({.name = "registry"});
  SessionScope use(s);
  Tensor w = zeros({256, 4}, {.category = Category::weights, .name = "kernel"});
  Tensor w_again = w;
  Tensor x = ones({8}, {.dtype = DType::int64});
  const auto rows = s.live_objects();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].name, "kernel");
  EXPECT_EQ(rows[0].kind, "tensor");
  EXPECT_EQ(rows[0].category, Category::weights);
  EXPECT_EQ(rows[0].bytes, 256u * 4 * 4);
  EXPECT_EQ(rows[0].handles, 2);
  EXPECT_EQ(rows[1].name, "tensor");
  EXPECT_EQ(rows[1].category, Category::data);
  EXPECT_EQ(rows[1].bytes, 64u);
  EXPECT_EQ(rows[1].handles, 1);
  w_again = Tensor();
  EXPECT_EQ(s.live_objects()[0].handles, 1);
  w = Tensor();
  EXPECT_EQ(s.live_objects().size(), 1u) << "a tensor without handles is freed at once";
}

TEST(Session, KeepsFiguresPerCategoryAndPeakUntilReset) {
  Session s({.name = "figures"});
  SessionScope use(s);
  {
    Tensor a = zeros({1024}, {.category = Category::gradients});
    Tensor b = zeros({2048}, {.category = Category::optimizer});
    const MemoryInfo m = s.memory_info();
    EXPECT_EQ(m.by_category[Category::gradients], 4096u);
    EXPECT_EQ(m.by_category[Category::optimizer], 8192u);
    EXPECT_EQ(m.current, 4096u + 8192u);
  }
  Tensor c = zeros({16});
  MemoryInfo m = s.memory_info();
  EXPECT_EQ(m.current, 64u);
  EXPECT_EQ(m.peak, 4096u + 8192u);
  EXPECT_EQ(m.peak_by_category[Category::optimizer], 8192u);
  s.reset_peak_memory();
  m = s.memory_info();
  EXPECT_EQ(m.peak, 64u);
  EXPECT_EQ(m.peak_by_category[Category::optimizer], 0u);
}

TEST(Session, ReleaseCachedMemoryHandsBackFreeSegments) {
  Session s({.name = "cache"});
  SessionScope use(s);
  { Tensor big = zeros({1 << 20}); }
  const MemoryInfo cached = s.memory_info();
  EXPECT_EQ(cached.current, 0u);
  EXPECT_GT(cached.reserved, 0u) << "freed blocks stay cached in the pool";
  EXPECT_EQ(s.release_cached_memory(), cached.reserved);
  EXPECT_EQ(s.memory_info().reserved, 0u);
}

TEST(Session, ReleaseCachedMemoryOfADeviceCoversEverySessionOnIt) {
  Session a({.name = "a"}), b({.name = "b"});
  for (Session* s : {&a, &b}) {
    SessionScope use(*s);
    Tensor scratch = zeros({1 << 18});
  }
  const std::size_t cached = a.memory_info().reserved + b.memory_info().reserved;
  EXPECT_GT(cached, 0u);
  EXPECT_GE(release_cached_memory(Device::cpu()), cached);
  EXPECT_EQ(a.memory_info().reserved, 0u);
  EXPECT_EQ(b.memory_info().reserved, 0u);
}

TEST(Session, DeviceFiguresSumEverySessionOnTheDevice) {
  const MemoryInfo before = memory_info(Device::cpu());
  Session a({.name = "a"}), b({.name = "b"});
  Tensor ta, tb;
  {
    SessionScope use(a);
    ta = zeros({1000});
  }
  {
    SessionScope use(b);
    tb = zeros({3000});
  }
  const MemoryInfo device = memory_info(Device::cpu());
  EXPECT_EQ(device.current, before.current + a.memory_info().current + b.memory_info().current);
  EXPECT_EQ(device.allocations, before.allocations + 2);
  reset_peak_memory(Device::cpu());
  EXPECT_EQ(memory_info(Device::cpu()).peak, device.current);
}

TEST(Session, SameSeedGivesSameRandomTensors) {
  Session s({.name = "seeded"});
  SessionScope use(s);
  set_seed(42);
  const auto first = random_normal({100}).to_vector<float>();
  set_seed(42);
  const auto second = random_normal({100}).to_vector<float>();
  EXPECT_EQ(first, second);
  const auto third = random_normal({100}).to_vector<float>();
  EXPECT_NE(first, third);
  Session other({.name = "other", .seed = 42});
  SessionScope use_other(other);
  EXPECT_EQ(random_normal({100}).to_vector<float>(), first);
}

TEST(Session, StaleHandleNamesTheTensorAndTheSession) {
  Session s({.name = "gone"});
  Tensor t;
  {
    SessionScope use(s);
    t = zeros({3}, {.name = "activations"});
  }
  s.clear();
  try {
    (void)t.data<float>();
    FAIL();
  } catch (const SessionCleared& e) {
    EXPECT_NE(std::string(e.what()).find("tensor 'activations'"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("session 'gone'"), std::string::npos);
  }
  EXPECT_EQ(t.name(), "activations") << "the name stays readable for messages";
}

}  // namespace
}  // namespace tabula

namespace tabula {
namespace {

TEST(Session, ASessionOnAnUnusableDeviceFailsClearlyAndStaysUsable) {
  if (cuda_device_count() > 0) GTEST_SKIP() << "a CUDA device is present";
  Session gpu({.device = Device::cuda(0), .name = "gpu"});
  SessionScope use(gpu);
  EXPECT_THROW(zeros({4}), Error);
  EXPECT_EQ(gpu.memory_info().current, 0u);
  gpu.clear();  // must not trip over the device that never worked
  EXPECT_EQ(gpu.memory_info(Device::cpu()).current, 0u);
}

}  // namespace
}  // namespace tabula
