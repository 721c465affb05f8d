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

TEST(HostResource, GivesPagesBackToTheOsOnDeallocate) {
  if (testing::under_sanitizer()) GTEST_SKIP() << "RSS is not meaningful under a sanitizer";
  HostResource host;
  const std::size_t before = testing::rss_bytes();
  void* p = host.allocate(64 * kMiB);
  std::memset(p, 7, 64 * kMiB);
  EXPECT_GE(testing::rss_bytes(), before + 63 * kMiB);
  host.deallocate(p, 64 * kMiB);
  EXPECT_LE(testing::rss_bytes(), before + 1 * kMiB);
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
