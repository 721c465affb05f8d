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

// Adaptors pass discards through, so that a pool over them still gives pages back.
TEST(LimitAndStatsAdaptors, PassDiscardsToTheirUpstream) {
  HostResource host;
  LimitAdaptor limit(host, 0);
  StatsAdaptor stats(limit);
  const std::size_t page = HostResource::page_size();
  auto* p = static_cast<unsigned char*>(stats.allocate(2 * page));
  p[0] = p[page] = 9;
  stats.discard(p, page);
  EXPECT_EQ(p[0], 0) << "the page reached the host resource";
  EXPECT_EQ(p[page], 9);
  stats.deallocate(p, 2 * page);
}

TEST(MemoryResource, DiscardsNothingByDefault) {
  HostResource host;
  // A resource that only forwards allocations: discard is the base class's no-op.
  class Forwarding final : public MemoryResource {
   public:
    explicit Forwarding(MemoryResource& upstream)
        : MemoryResource(upstream.device()), upstream_(upstream) {}

   private:
    void* do_allocate(std::size_t bytes, std::size_t alignment) override {
      return upstream_.allocate(bytes, alignment);
    }
    void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) noexcept override {
      upstream_.deallocate(p, bytes, alignment);
    }
    MemoryResource& upstream_;
  } forwarding(host);
  const std::size_t page = HostResource::page_size();
  auto* p = static_cast<unsigned char*>(forwarding.allocate(page));
  p[0] = 9;
  forwarding.discard(p, page);
  EXPECT_EQ(p[0], 9);
  forwarding.deallocate(p, page);
}

TEST(MemoryResource, RejectsAnAlignmentThatIsNotAPowerOfTwo) {
  HostResource host;
  EXPECT_THROW(host.allocate(10, 3), InvalidArgument);
}

}  // namespace
}  // namespace tabula
