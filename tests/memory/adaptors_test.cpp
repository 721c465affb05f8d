#include <gtest/gtest.h>

#include "tabula/core/errors.hpp"
#include "tabula/memory/host_resource.hpp"
#include "tabula/memory/limit_adaptor.hpp"
#include "tabula/memory/stats_adaptor.hpp"

namespace tabula {
namespace {

constexpr std::size_t kMiB = std::size_t{1} << 20;

TEST(LimitAdaptor, RefusesRequestsBeyondItsLimitAndNamesIt) {
  HostResource host;
  LimitAdaptor limit(host, 3 * kMiB);
  void* a = limit.allocate(2 * kMiB);
  try {
    limit.allocate(2 * kMiB);
    FAIL() << "expected OutOfMemory";
  } catch (const OutOfMemory& e) {
    EXPECT_EQ(e.requested(), 2 * kMiB);
    EXPECT_EQ(e.limit(), 3 * kMiB);
    EXPECT_NE(std::string(e.what()).find("limit 3.00 MiB"), std::string::npos) << e.what();
  }
  EXPECT_EQ(limit.allocated(), 2 * kMiB) << "a refused request must not be counted";
  void* b = limit.allocate(1 * kMiB);
  limit.deallocate(a, 2 * kMiB);
  limit.deallocate(b, 1 * kMiB);
  EXPECT_EQ(limit.allocated(), 0u);
}

TEST(LimitAdaptor, WithZeroLimitLetsEverythingThrough) {
  HostResource host;
  LimitAdaptor limit(host, 0);
  void* p = limit.allocate(16 * kMiB);
  limit.deallocate(p, 16 * kMiB);
  EXPECT_EQ(limit.allocated(), 0u);
}

TEST(StatsAdaptor, CountsBytesCallsAndPeak) {
  HostResource host;
  StatsAdaptor stats(host);
  void* a = stats.allocate(1000);
  void* b = stats.allocate(3000);
  stats.deallocate(a, 1000);
  ResourceStats s = stats.stats();
  EXPECT_EQ(s.current, 3000u);
  EXPECT_EQ(s.peak, 4000u);
  EXPECT_EQ(s.allocations, 1u);
  EXPECT_EQ(s.total_allocations, 2u);
  EXPECT_EQ(s.total_deallocations, 1u);
  stats.reset_peak();
  EXPECT_EQ(stats.stats().peak, 3000u);
  stats.deallocate(b, 3000);
  EXPECT_EQ(stats.stats().current, 0u);
}

TEST(MemoryResource, RejectsAnAlignmentThatIsNotAPowerOfTwo) {
  HostResource host;
  EXPECT_THROW(host.allocate(10, 3), InvalidArgument);
}

}  // namespace
}  // namespace tabula
