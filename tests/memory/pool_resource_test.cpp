#include "tabula/memory/pool_resource.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <random>
#include <thread>
#include <vector>

#include "tabula/core/errors.hpp"
#include "tabula/memory/host_resource.hpp"
#include "tabula/memory/limit_adaptor.hpp"
#include "tabula/memory/stats_adaptor.hpp"

namespace tabula {
namespace {

constexpr std::size_t kKiB = 1024;
constexpr std::size_t kMiB = 1024 * kKiB;

struct Live {
  void* p;
  std::size_t bytes;
  std::size_t alignment;
  unsigned char pattern;
};

bool holds_pattern(const Live& b) {
  const auto* bytes = static_cast<const unsigned char*>(b.p);
  for (std::size_t i = 0; i < b.bytes; ++i)
    if (bytes[i] != b.pattern) return false;
  return true;
}

// Random sizes spread over five orders of magnitude, random alignments, random interleaving
// of allocations and frees: after every step the pool's invariants, its figures and the
// data in every live block are checked against an independent model.
TEST(PoolResource, RandomAllocationSequencesKeepBlocksDisjointDataIntactAndFiguresExact) {
  HostResource host;
  StatsAdaptor upstream(host);
  const std::size_t alignments[] = {1, 8, 16, 64, 128, 256, 4096, 65536};
  for (unsigned seed = 1; seed <= 8; ++seed) {
    PoolResource pool(upstream);
    std::mt19937_64 rng(seed);
    std::vector<Live> live;
    std::map<std::uintptr_t, std::uintptr_t> extents;  // start -> end of live blocks
    std::size_t expected_current = 0;
    for (int step = 0; step < 1500; ++step) {
      const bool allocate = live.empty() || rng() % 100 < 55;
      if (allocate) {
        const double exponent = std::uniform_real_distribution<double>(0.0, 20.0)(rng);
        const auto bytes = static_cast<std::size_t>(std::exp2(exponent));  // 1 B .. 1 MiB
        const std::size_t alignment = alignments[rng() % std::size(alignments)];
        void* p = pool.allocate(bytes, alignment);
        ASSERT_NE(p, nullptr);
        ASSERT_EQ(reinterpret_cast<std::uintptr_t>(p) % std::max<std::size_t>(alignment, 64), 0u)
            << "alignment " << alignment;
        const auto start = reinterpret_cast<std::uintptr_t>(p);
        const auto end = start + bytes;
        auto next = extents.lower_bound(start);
        if (next != extents.end()) {
          ASSERT_LE(end, next->first) << "overlaps the next block";
        }
        if (next != extents.begin()) {
          ASSERT_LE(std::prev(next)->second, start) << "overlaps the previous block";
        }
        extents[start] = end;
        const auto pattern = static_cast<unsigned char>(rng());
        std::memset(p, pattern, bytes);
        live.push_back({p, bytes, alignment, pattern});
        expected_current += PoolResource::block_size(bytes);
      } else {
        const std::size_t i = rng() % live.size();
        const Live b = live[i];
        ASSERT_TRUE(holds_pattern(b)) << "block of " << b.bytes << " bytes was overwritten";
        pool.deallocate(b.p, b.bytes, b.alignment);
        extents.erase(reinterpret_cast<std::uintptr_t>(b.p));
        live[i] = live.back();
        live.pop_back();
        expected_current -= PoolResource::block_size(b.bytes);
      }
      const PoolStats s = pool.stats();
      ASSERT_EQ(s.current, expected_current) << "step " << step;
      ASSERT_EQ(s.allocations, live.size());
      ASSERT_EQ(s.reserved, upstream.stats().current) << "reserved must be what upstream gave";
      ASSERT_LE(s.current, s.reserved);
      ASSERT_LE(s.peak, s.reserved) << "peak cannot exceed what was ever reserved";
      if (step % 10 == 0) {
        ASSERT_NO_THROW(pool.validate()) << "step " << step;
      }
    }
    for (const Live& b : live) {
      ASSERT_TRUE(holds_pattern(b));
      pool.deallocate(b.p, b.bytes, b.alignment);
    }
    ASSERT_NO_THROW(pool.validate());
    const PoolStats drained = pool.stats();
    EXPECT_EQ(drained.current, 0u);
    EXPECT_EQ(drained.allocations, 0u);
    EXPECT_EQ(drained.free_blocks, drained.segments) << "every segment coalesced to one block";
    const std::size_t reserved = drained.reserved;
    EXPECT_EQ(pool.release(), reserved);
    EXPECT_EQ(pool.stats().reserved, 0u);
    EXPECT_EQ(upstream.stats().current, 0u);
    EXPECT_EQ(upstream.stats().allocations, 0u);
  }
}

TEST(PoolResource, PicksTheSmallestFreeBlockThatFits) {
  HostResource host;
  PoolResource pool(host);
  // Carve a segment into alternating holes of 4 KiB and 1 KiB separated by live blocks.
  void* big_hole = pool.allocate(4 * kKiB);
  void* wall1 = pool.allocate(64);
  void* small_hole = pool.allocate(1 * kKiB);
  void* wall2 = pool.allocate(64);
  pool.deallocate(big_hole, 4 * kKiB);
  pool.deallocate(small_hole, 1 * kKiB);
  EXPECT_EQ(pool.allocate(900), small_hole) << "best fit takes the 1 KiB hole, not the 4 KiB one";
  EXPECT_EQ(pool.allocate(3 * kKiB), big_hole);
  pool.validate();
  (void)wall1;
  (void)wall2;
}

TEST(PoolResource, CoalescesNeighboursIntoOneBlockWhenFreed) {
  HostResource host;
  PoolResource pool(host);
  void* a = pool.allocate(1000);
  void* b = pool.allocate(2000);
  void* c = pool.allocate(3000);
  pool.deallocate(b, 2000);
  pool.deallocate(a, 1000);
  pool.deallocate(c, 3000);
  pool.validate();
  const PoolStats s = pool.stats();
  EXPECT_EQ(s.free_blocks, 1u);
  EXPECT_EQ(s.largest_free_block, s.reserved);
  EXPECT_DOUBLE_EQ(s.fragmentation, 0.0);
}

TEST(PoolResource, ReportsFragmentationOfScatteredFreeMemory) {
  HostResource host;
  PoolResource pool(host, PoolOptions{.small_segment_size = 64 * kKiB,
                                      .small_request_limit = 64 * kKiB});
  // Fill one 64 KiB segment with 16 blocks of 4 KiB, then free every other one.
  std::vector<void*> blocks;
  for (int i = 0; i < 16; ++i) blocks.push_back(pool.allocate(4 * kKiB));
  ASSERT_EQ(pool.stats().segments, 1u);
  for (int i = 0; i < 16; i += 2) pool.deallocate(blocks[i], 4 * kKiB);
  const PoolStats s = pool.stats();
  EXPECT_EQ(s.largest_free_block, 4 * kKiB);
  EXPECT_EQ(s.reserved - s.current, 32 * kKiB);
  EXPECT_DOUBLE_EQ(s.fragmentation, 1.0 - 4.0 / 32.0);
}

TEST(PoolResource, SteadyStateRequestsTakeNothingNewFromUpstream) {
  HostResource host;
  StatsAdaptor upstream(host);
  PoolResource pool(upstream);
  const std::size_t sizes[] = {300, 4 * kKiB, 96 * kKiB, 3 * kMiB, 17};
  auto step = [&] {
    std::vector<void*> ptrs;
    for (auto n : sizes) ptrs.push_back(pool.allocate(n));
    for (std::size_t i = 0; i < ptrs.size(); ++i) pool.deallocate(ptrs[i], sizes[i]);
  };
  step();
  const std::size_t after_first = upstream.stats().total_allocations;
  for (int i = 0; i < 100; ++i) step();
  EXPECT_EQ(upstream.stats().total_allocations, after_first);
  EXPECT_EQ(pool.stats().upstream_allocations, after_first);
}

TEST(PoolResource, ReleaseGivesBackOnlyWhollyFreeSegments) {
  HostResource host;
  StatsAdaptor upstream(host);
  PoolResource pool(upstream);
  void* small = pool.allocate(100);           // lives in a 2 MiB shared segment
  void* large = pool.allocate(5 * kMiB);      // its own 6 MiB segment
  pool.deallocate(large, 5 * kMiB);
  EXPECT_EQ(pool.release(), 6 * kMiB);
  EXPECT_EQ(pool.stats().reserved, 2 * kMiB);
  EXPECT_EQ(upstream.stats().current, 2 * kMiB);
  pool.deallocate(small, 100);
  EXPECT_EQ(pool.release(), 2 * kMiB);
  EXPECT_EQ(upstream.stats().current, 0u);
  EXPECT_EQ(pool.stats().upstream_deallocations, 2u);
}

TEST(PoolResource, ReleasesCachedSegmentsAndRetriesWhenUpstreamRefuses) {
  HostResource host;
  LimitAdaptor limit(host, 8 * kMiB);
  PoolResource pool(limit);
  void* first = pool.allocate(5 * kMiB);  // a 6 MiB segment
  pool.deallocate(first, 5 * kMiB);       // cached, not given back
  EXPECT_EQ(limit.allocated(), 6 * kMiB);
  void* second = nullptr;
  ASSERT_NO_THROW(second = pool.allocate(7 * kMiB)) << "8 MiB fits once the cache is released";
  EXPECT_EQ(pool.stats().upstream_deallocations, 1u);
  EXPECT_EQ(limit.allocated(), 8 * kMiB);
  pool.deallocate(second, 7 * kMiB);
  pool.validate();
}

TEST(PoolResource, LetsOutOfMemoryThroughWhenNothingCanBeReleased) {
  HostResource host;
  LimitAdaptor limit(host, 4 * kMiB);
  PoolResource pool(limit);
  void* held = pool.allocate(3 * kMiB);
  try {
    pool.allocate(2 * kMiB);
    FAIL() << "expected OutOfMemory";
  } catch (const OutOfMemory& e) {
    EXPECT_NE(std::string(e.what()).find("limit 4.00 MiB"), std::string::npos) << e.what();
    EXPECT_EQ(e.limit(), 4 * kMiB);
  }
  pool.validate();
  EXPECT_EQ(pool.stats().current, PoolResource::block_size(3 * kMiB));
  void* more = pool.allocate(512 * kKiB);  // still usable within what it holds
  pool.deallocate(more, 512 * kKiB);
  pool.deallocate(held, 3 * kMiB);
}

TEST(PoolResource, CountsFreesOfForeignPointersInsteadOfCorruptingItself) {
  HostResource host;
  PoolResource pool(host);
  int not_from_pool = 0;
  pool.deallocate(&not_from_pool, sizeof not_from_pool);
  EXPECT_EQ(pool.stats().unknown_frees, 1u);
  pool.validate();
}

TEST(PoolResource, ServesAlignmentsLargerThanAPage) {
  HostResource host;
  PoolResource pool(host);
  void* p = pool.allocate(10, 4 * kMiB);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % (4 * kMiB), 0u);
  void* q = pool.allocate(3 * kMiB, 2 * kMiB);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(q) % (2 * kMiB), 0u);
  pool.deallocate(p, 10, 4 * kMiB);
  pool.deallocate(q, 3 * kMiB, 2 * kMiB);
  pool.validate();
  pool.release();
  EXPECT_EQ(pool.stats().reserved, 0u);
}

TEST(PoolResource, RejectsAnAlignmentThatIsNotAPowerOfTwo) {
  HostResource host;
  PoolResource pool(host);
  EXPECT_THROW(pool.allocate(64, 48), InvalidArgument);
}

TEST(PoolResource, StaysConsistentUnderConcurrentUse) {
  HostResource host;
  StatsAdaptor upstream(host);
  PoolResource pool(upstream);
  auto worker = [&pool](unsigned seed) {
    std::mt19937 rng(seed);
    std::vector<std::pair<void*, std::size_t>> mine;
    for (int i = 0; i < 4000; ++i) {
      if (mine.empty() || rng() % 2) {
        const std::size_t n = 1 + rng() % (256 * kKiB);
        void* p = pool.allocate(n);
        std::memset(p, static_cast<int>(seed), std::min<std::size_t>(n, 256));
        mine.emplace_back(p, n);
      } else {
        auto [p, n] = mine.back();
        mine.pop_back();
        EXPECT_EQ(*static_cast<unsigned char*>(p), static_cast<unsigned char>(seed));
        pool.deallocate(p, n);
      }
    }
    for (auto [p, n] : mine) pool.deallocate(p, n);
  };
  std::vector<std::thread> threads;
  for (unsigned t = 1; t <= 4; ++t) threads.emplace_back(worker, t);
  for (auto& t : threads) t.join();
  pool.validate();
  EXPECT_EQ(pool.stats().current, 0u);
  pool.release();
  EXPECT_EQ(upstream.stats().current, 0u);
}

}  // namespace
}  // namespace tabula
