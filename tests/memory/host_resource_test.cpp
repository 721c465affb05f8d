#include "tabula/memory/host_resource.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

#include "support/process_memory.hpp"
#include "tabula/core/errors.hpp"

namespace tabula {
namespace {

using testing::kMiB;

TEST(HostResource, ReturnsPageAlignedMemoryForDefaultRequests) {
  HostResource host;
  void* p = host.allocate(100);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % HostResource::page_size(), 0u);
  std::memset(p, 1, 100);
  host.deallocate(p, 100);
}

TEST(HostResource, HonoursAlignmentsLargerThanAPage) {
  HostResource host;
  void* p = host.allocate(3 * kMiB, 2 * kMiB);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % (2 * kMiB), 0u);
  std::memset(p, 1, 3 * kMiB);
  host.deallocate(p, 3 * kMiB, 2 * kMiB);
}

// Touches 64 MiB from a HostResource, then `give_back(host, p)`: the RSS must fall back to
// within 1 MiB of where it was. Returns the mapping, for a caller that keeps it.
template <typename GiveBack>
void* expect_rss_back_after(HostResource& host, GiveBack give_back) {
  const std::size_t before = testing::rss_bytes();
  void* p = host.allocate(64 * kMiB);
  std::memset(p, 7, 64 * kMiB);
  EXPECT_GE(testing::rss_bytes(), before + 63 * kMiB);
  give_back(host, p);
  EXPECT_LE(testing::rss_bytes(), before + 1 * kMiB);
  return p;
}

TEST(HostResource, GivesPagesBackToTheOsOnDeallocate) {
  if (testing::under_sanitizer()) GTEST_SKIP() << "RSS is not meaningful under a sanitizer";
  HostResource host;
  expect_rss_back_after(host, [](HostResource& h, void* p) { h.deallocate(p, 64 * kMiB); });
}

// Discarded pages read as zero afterwards (anonymous private memory); a page only partly in
// the range keeps its bytes, as those around the range may be a live block's.
TEST(HostResource, DiscardGivesBackTheWholePagesInARangeAndKeepsEveryOtherByte) {
  HostResource host;
  const std::size_t page = HostResource::page_size();
  auto* p = static_cast<unsigned char*>(host.allocate(4 * page));
  std::memset(p, 0xAB, 4 * page);
  host.discard(p + 100, 3 * page);  // pages 1 and 2 whole; 0 and 3 in part
  for (std::size_t i = 0; i < 4 * page; ++i) {
    const bool discarded = i >= page && i < 3 * page;
    ASSERT_EQ(p[i], discarded ? 0 : 0xAB) << "byte " << i << " (page " << i / page << ")";
  }
  host.discard(p + 1, page);  // no whole page inside: nothing changes
  EXPECT_EQ(p[1], 0xAB);
  EXPECT_EQ(p[page], 0);
  std::memset(p, 0xCD, 4 * page);  // the mapping stays usable
  EXPECT_EQ(p[2 * page], 0xCD);
  host.deallocate(p, 4 * page);
}

TEST(HostResource, DiscardTakesThePagesOutOfTheRssKeepingTheMapping) {
  if (testing::under_sanitizer()) GTEST_SKIP() << "RSS is not meaningful under a sanitizer";
  HostResource host;
  void* p = expect_rss_back_after(host, [](HostResource& h, void* q) { h.discard(q, 64 * kMiB); });
  static_cast<unsigned char*>(p)[64 * kMiB - 1] = 1;  // still mapped, and writable
  host.deallocate(p, 64 * kMiB);
}

TEST(HostResource, ReportsARefusedMappingAsOutOfMemory) {
  HostResource host;
  const std::size_t absurd = std::size_t{1} << 60;
  try {
    host.allocate(absurd);
    FAIL() << "a 1 EiB mapping should be refused";
  } catch (const OutOfMemory& e) {
    EXPECT_EQ(e.requested(), absurd);
    EXPECT_NE(std::string(e.what()).find("the OS refused"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tabula
