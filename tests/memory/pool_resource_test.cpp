#include "tabula/memory/pool_resource.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <thread>
#include <vector>

#include "support/process_memory.hpp"
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

// An upstream that records each segment the pool holds, for an account of reserved bytes,
// segments and upstream calls that does not rely on the pool's own figures.
class RecordingResource final : public MemoryResource {
 public:
  explicit RecordingResource(MemoryResource& upstream)
      : MemoryResource(upstream.device()), upstream_(upstream) {}

  std::map<std::uintptr_t, std::size_t> segments;  // base -> bytes
  std::size_t allocations = 0;
  std::size_t deallocations = 0;

  std::size_t reserved() const {
    std::size_t bytes = 0;
    for (const auto& [base, size] : segments) bytes += size;
    return bytes;
  }

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    void* p = upstream_.allocate(bytes, alignment);
    segments[reinterpret_cast<std::uintptr_t>(p)] = bytes;
    ++allocations;
    return p;
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) noexcept override {
    segments.erase(reinterpret_cast<std::uintptr_t>(p));
    ++deallocations;
    upstream_.deallocate(p, bytes, alignment);
  }

  MemoryResource& upstream_;
};

// What the figures of a pool must be, recomputed from the blocks handed out and the segments
// upstream gave. A block handed out for n bytes occupies exactly block_size(n) bytes from its
// pointer (padding in front of an aligned block is a free block of its own), and the pool
// coalesces every free neighbour, so the free blocks are exactly the maximal gaps between the
// blocks handed out within each segment.
struct Recount {
  std::size_t current = 0;
  std::size_t free_bytes = 0;
  std::size_t free_blocks = 0;
  std::size_t largest_free_block = 0;
  std::size_t wholly_free_bytes = 0;  // in segments holding no block: what release() returns
  std::size_t blocks_in_segments = 0;
  bool block_past_segment_end = false;
};

struct Handed {
  std::size_t bytes;
  std::size_t alignment;
  unsigned char pattern;
};

Recount recount(const std::map<std::uintptr_t, Handed>& live,
                const std::map<std::uintptr_t, std::size_t>& segments) {
  Recount r;
  for (const auto& [start, h] : live) r.current += PoolResource::block_size(h.bytes);
  for (const auto& [base, size] : segments) {
    const std::uintptr_t end = base + size;
    std::uintptr_t cursor = base;
    auto gap = [&](std::uintptr_t to) {
      if (to == cursor) return;
      r.free_bytes += to - cursor;
      ++r.free_blocks;
      r.largest_free_block = std::max<std::size_t>(r.largest_free_block, to - cursor);
    };
    bool any = false;
    for (auto it = live.lower_bound(base); it != live.end() && it->first < end; ++it) {
      gap(it->first);
      cursor = it->first + PoolResource::block_size(it->second.bytes);
      any = true;
      ++r.blocks_in_segments;
    }
    if (cursor > end) r.block_past_segment_end = true;
    else gap(end);
    if (!any) r.wholly_free_bytes += size;
  }
  return r;
}

// Which bytes of a block the test writes and reads back: all of a block up to 64 KiB, and of
// larger ones one byte per 4 KiB plus the last (thousands of sequences cannot afford to
// fill megabytes each step; overlaps are caught by the address checks anyway).
template <typename F>
void for_each_checked_byte(std::size_t bytes, F&& f) {
  if (bytes <= 64 * kKiB) {
    for (std::size_t i = 0; i < bytes; ++i) f(i);
    return;
  }
  for (std::size_t i = 0; i < bytes; i += 4 * kKiB) f(i);
  f(bytes - 1);
}

// Thousands of random sequences, each with a pool of random geometry (segment sizes, the
// small-request limit, the large-segment granule), random sizes from 1 byte to 2 MiB, random
// alignments from 1 byte to 1 MiB, random interleavings of allocate, free, release and
// reset_peak. After every step each figure of stats() is compared with the recount above
// and the recorded upstream, and peak with the running maximum of the recounted current.
TEST(PoolResource, ThousandsOfRandomSequencesMatchAnIndependentRecountAfterEveryStep) {
  HostResource host;
  // Sanitizers slow this 10-20x; a tenth of the sequences still covers every path.
  const int sequences = testing::under_sanitizer() ? 200 : 2000;
  const std::size_t segment_sizes[] = {64 * kKiB, 256 * kKiB, 2 * kMiB};
  const std::size_t granularities[] = {64 * kKiB, 1 * kMiB, 2 * kMiB};
  const std::size_t alignments[] = {1,    2,    4,     8,     16,    32,         64,
                                    128,  256,  1024,  4096,  16384, 65536,      128 * kKiB,
                                    kMiB};
  std::mt19937_64 rng(20240607);
  std::size_t steps_checked = 0, releases = 0, large_alignments = 0;
  for (int sequence = 0; sequence < sequences; ++sequence) {
    SCOPED_TRACE("sequence " + std::to_string(sequence));
    RecordingResource upstream(host);
    PoolOptions options;
    options.small_segment_size = segment_sizes[rng() % std::size(segment_sizes)];
    options.small_request_limit = options.small_segment_size >> (rng() % 3);
    options.large_segment_granularity = granularities[rng() % std::size(granularities)];
    PoolResource pool(upstream, options);
    const double max_exponent = std::uniform_real_distribution<double>(6.0, 21.0)(rng);
    const int steps = 50 + static_cast<int>(rng() % 250);

    std::map<std::uintptr_t, Handed> live;
    std::vector<std::uintptr_t> order;  // the same blocks, for picking one at random
    std::size_t peak = 0, total_allocations = 0;
    for (int step = 0; step < steps; ++step) {
      const unsigned action = live.empty() ? 0 : static_cast<unsigned>(rng() % 100);
      if (action < 55) {
        const double exponent = std::uniform_real_distribution<double>(0.0, max_exponent)(rng);
        const auto bytes = static_cast<std::size_t>(std::exp2(exponent));
        // Alignments above 64 KiB are rare, as in real use, but reach past the segment size.
        std::size_t alignment = alignments[rng() % (std::size(alignments) - 2)];
        if (rng() % 50 == 0) {
          alignment = alignments[std::size(alignments) - 1 - rng() % 2];
          ++large_alignments;
        }
        void* p = pool.allocate(bytes, alignment);
        ASSERT_NE(p, nullptr);
        const auto start = reinterpret_cast<std::uintptr_t>(p);
        ASSERT_EQ(start % std::max<std::size_t>(alignment, PoolResource::kGranule), 0u)
            << "alignment " << alignment;
        const std::uintptr_t end = start + PoolResource::block_size(bytes);
        auto next = live.lower_bound(start);
        if (next != live.end()) {
          ASSERT_LE(end, next->first) << "overlaps the next block";
        }
        if (next != live.begin()) {
          const auto& [prev_start, prev] = *std::prev(next);
          ASSERT_LE(prev_start + PoolResource::block_size(prev.bytes), start)
              << "overlaps the previous block";
        }
        const auto pattern = static_cast<unsigned char>(rng());
        auto* data = static_cast<unsigned char*>(p);
        for_each_checked_byte(bytes, [&](std::size_t i) {
          data[i] = static_cast<unsigned char>(pattern + i);
        });
        live[start] = {bytes, alignment, pattern};
        order.push_back(start);
        ++total_allocations;
      } else if (action < 95) {
        const std::size_t i = rng() % order.size();
        const std::uintptr_t start = order[i];
        const Handed h = live.at(start);
        const auto* data = reinterpret_cast<const unsigned char*>(start);
        std::size_t overwritten = 0;
        for_each_checked_byte(h.bytes, [&](std::size_t b) {
          overwritten += data[b] != static_cast<unsigned char>(h.pattern + b);
        });
        ASSERT_EQ(overwritten, 0u) << "bytes of a block of " << h.bytes << " were overwritten";
        pool.deallocate(reinterpret_cast<void*>(start), h.bytes, h.alignment);
        live.erase(start);
        order[i] = order.back();
        order.pop_back();
      } else if (action < 98) {
        const std::size_t expected = recount(live, upstream.segments).wholly_free_bytes;
        ASSERT_EQ(pool.release(), expected) << "release gives back exactly the wholly free segments";
        ++releases;
      } else {
        pool.reset_peak();
        peak = 0;  // the maximum restarts from the current figure, below
      }

      const Recount r = recount(live, upstream.segments);
      peak = std::max(peak, r.current);
      const PoolStats s = pool.stats();
      ASSERT_EQ(r.blocks_in_segments, live.size()) << "a block starts outside every segment";
      ASSERT_FALSE(r.block_past_segment_end) << "a block runs past the end of its segment";
      ASSERT_EQ(s.current, r.current) << "step " << step;
      ASSERT_EQ(s.allocations, live.size()) << "step " << step;
      ASSERT_EQ(s.total_allocations, total_allocations);
      ASSERT_EQ(s.peak, peak) << "step " << step;
      ASSERT_EQ(s.reserved, upstream.reserved()) << "step " << step;
      ASSERT_EQ(s.segments, upstream.segments.size());
      ASSERT_EQ(s.upstream_allocations, upstream.allocations);
      ASSERT_EQ(s.upstream_deallocations, upstream.deallocations);
      ASSERT_EQ(s.reserved - s.current, r.free_bytes);
      ASSERT_EQ(s.free_blocks, r.free_blocks) << "step " << step << ": free neighbours not coalesced?";
      ASSERT_EQ(s.largest_free_block, r.largest_free_block) << "step " << step;
      ASSERT_EQ(s.unknown_frees, 0u);
      const double fragmentation =
          r.free_bytes == 0 ? 0.0
                            : 1.0 - static_cast<double>(r.largest_free_block) /
                                        static_cast<double>(r.free_bytes);
      ASSERT_DOUBLE_EQ(s.fragmentation, fragmentation) << "step " << step;
      ASSERT_NO_THROW(pool.validate()) << "step " << step;
      ++steps_checked;
    }

    for (const std::uintptr_t start : order) {
      const Handed& h = live.at(start);
      pool.deallocate(reinterpret_cast<void*>(start), h.bytes, h.alignment);
    }
    live.clear();
    ASSERT_NO_THROW(pool.validate());
    const PoolStats drained = pool.stats();
    EXPECT_EQ(drained.current, 0u);
    EXPECT_EQ(drained.allocations, 0u);
    EXPECT_EQ(drained.free_blocks, drained.segments) << "every segment coalesced to one block";
    std::size_t largest_segment = 0;
    for (const auto& [base, size] : upstream.segments)
      largest_segment = std::max(largest_segment, size);
    EXPECT_EQ(drained.largest_free_block, largest_segment);
    EXPECT_EQ(pool.release(), drained.reserved);
    EXPECT_EQ(pool.stats().reserved, 0u);
    EXPECT_TRUE(upstream.segments.empty());
    EXPECT_EQ(upstream.allocations, upstream.deallocations);
    if (::testing::Test::HasFatalFailure()) return;
  }
  EXPECT_GT(steps_checked, static_cast<std::size_t>(sequences) * 50);
  EXPECT_GT(releases, 0u);
  EXPECT_GT(large_alignments, 0u);
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

// A segment kept for its live blocks keeps no pages under its free ones: on the host they read
// as zero after release(), while every byte of the live blocks is intact.
TEST(PoolResource, ReleaseDiscardsThePagesUnderTheFreeBlocksOfTheSegmentsItKeeps) {
  HostResource host;
  PoolResource pool(host);
  const std::size_t middle_bytes = 300 * kKiB;
  auto* first = static_cast<unsigned char*>(pool.allocate(100));
  auto* middle = static_cast<unsigned char*>(pool.allocate(middle_bytes));
  auto* last = static_cast<unsigned char*>(pool.allocate(100));
  ASSERT_EQ(pool.stats().segments, 1u) << "three small requests share one segment";
  std::memset(first, 0x11, 100);
  std::memset(middle, 0x22, middle_bytes);
  std::memset(last, 0x33, 100);
  pool.deallocate(middle, middle_bytes);
  EXPECT_EQ(pool.release(), 0u) << "no segment is wholly free";
  EXPECT_EQ(pool.stats().reserved, 2 * kMiB) << "the segment stays";
  const std::size_t page = HostResource::page_size();
  std::size_t zeros = 0;
  for (std::size_t i = 0; i < middle_bytes; ++i) {
    const auto at = reinterpret_cast<std::uintptr_t>(middle + i);
    const bool whole_page_inside =
        at / page * page >= reinterpret_cast<std::uintptr_t>(middle) &&
        at / page * page + page <= reinterpret_cast<std::uintptr_t>(middle) + middle_bytes;
    if (whole_page_inside) {
      ASSERT_EQ(middle[i], 0) << "byte " << i << " of the freed block";
      ++zeros;
    }
  }
  EXPECT_GE(zeros, middle_bytes - 2 * page) << "every whole page of the freed block";
  for (std::size_t i = 0; i < 100; ++i) {
    ASSERT_EQ(first[i], 0x11) << "byte " << i << " of a live block";
    ASSERT_EQ(last[i], 0x33) << "byte " << i << " of a live block";
  }
  // The freed block serves the next request as before.
  auto* again = static_cast<unsigned char*>(pool.allocate(middle_bytes));
  std::memset(again, 0x44, middle_bytes);
  EXPECT_EQ(again[middle_bytes - 1], 0x44);
  pool.deallocate(again, middle_bytes);
  pool.deallocate(first, 100);
  pool.deallocate(last, 100);
  ASSERT_NO_THROW(pool.validate());
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
