#pragma once
/// @file
/// The caching allocator every session allocates through.

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "tabula/memory/memory_resource.hpp"

namespace tabula {

namespace detail {
template <typename Value>
class PointerMap;
}

/// @brief How a `PoolResource` sizes the segments it takes from upstream.
struct PoolOptions {
  /// Requests up to `small_request_limit` share segments of `small_segment_size` bytes.
  std::size_t small_segment_size = std::size_t{2} << 20;
  std::size_t small_request_limit = std::size_t{1} << 20;
  /// Larger requests get a segment of their own, rounded up to this (a power of two).
  std::size_t large_segment_granularity = std::size_t{2} << 20;
};

/// @brief Figures of a `PoolResource`. Sizes are in bytes, rounded to the pool's granule.
struct PoolStats {
  std::size_t current = 0;    ///< bytes in blocks handed out
  std::size_t peak = 0;       ///< highest `current` since creation or `reset_peak`
  std::size_t reserved = 0;   ///< bytes in segments held from upstream
  std::size_t allocations = 0;           ///< blocks handed out now
  std::size_t total_allocations = 0;     ///< allocate calls that succeeded
  std::size_t upstream_allocations = 0;  ///< segments ever taken from upstream
  std::size_t upstream_deallocations = 0;  ///< segments ever given back
  std::size_t segments = 0;              ///< segments held now
  std::size_t free_blocks = 0;           ///< cached free blocks
  std::size_t largest_free_block = 0;    ///< biggest request servable without growing
  std::size_t unknown_frees = 0;  ///< deallocate calls for pointers this pool never gave out
  /// `1 - largest_free_block / (reserved - current)`: 0 when the free memory is one block,
  /// towards 1 when it is scattered in small pieces; 0 when nothing is free.
  double fragmentation = 0.0;
};

/// @brief A caching best-fit allocator over an upstream resource (not owned), with block
/// splitting and coalescing.
///
/// Segments are taken from upstream on demand and kept when their blocks are freed, so a
/// training step that repeats the same requests costs no system call. `release()` gives every
/// wholly free segment back upstream, and the pages under the free blocks of the others; a
/// session calls it when it is cleared and on release_cached_memory().
///
/// Every block is a multiple of `kGranule` (64) bytes and aligned to at least 64 bytes. The
/// search is best fit: the smallest free block that can hold the request at its alignment
/// (free blocks are binned by size, two-level segregated-fit style, and the first non-empty
/// bin that can hold the request is scanned for its smallest fitting block). When upstream
/// refuses to grow, the pool releases its wholly free segments and retries once before
/// letting `OutOfMemory` through.
///
/// Block records live in host memory, never in the blocks themselves, so the same pool
/// manages device memory. Thread-safe: one mutex guards all state.
class PoolResource final : public MemoryResource {
 public:
  static constexpr std::size_t kGranule = 64;

  explicit PoolResource(MemoryResource& upstream, PoolOptions options = {});
  /// Gives every segment back upstream, including ones with blocks still handed out (their
  /// owners must be gone by then; sessions free all their blocks before destroying a pool).
  ~PoolResource() override;

  /// @brief Gives every wholly free segment back upstream, and discards (MemoryResource::discard)
  /// the free blocks of the others, so that on the host their whole pages leave the RSS too.
  /// @return the bytes of the segments given back.
  std::size_t release() noexcept;

  PoolStats stats() const;
  void reset_peak() noexcept;

  /// @brief Checks every internal invariant (blocks tile their segments, no two free blocks
  /// are adjacent, bins and the address map agree with the blocks, statistics agree with a
  /// recount). Meant for tests; O(blocks).
  /// @throws Error describing the first broken invariant.
  void validate() const;

  /// The size a request of `bytes` occupies in the pool.
  static constexpr std::size_t block_size(std::size_t bytes) noexcept {
    return bytes == 0 ? kGranule : (bytes + kGranule - 1) & ~(kGranule - 1);
  }

 private:
  struct Block;
  struct Segment;

  void* do_allocate(std::size_t bytes, std::size_t alignment) override;
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) noexcept override;

  Block* find_fit(std::size_t size, std::size_t alignment) const noexcept;
  Block* scan_bin(std::size_t bin, std::size_t size, std::size_t alignment) const noexcept;
  Block* grow(std::size_t size, std::size_t alignment);
  void* carve(Block* block, std::size_t size, std::size_t alignment);
  std::size_t release_locked() noexcept;

  void insert_free(Block* block) noexcept;
  void remove_free(Block* block) noexcept;
  std::size_t next_nonempty_bin(std::size_t from) const noexcept;
  void reserve_blocks(std::size_t count);
  Block* new_block() noexcept;
  void delete_block(Block* block) noexcept;

  static constexpr std::size_t kBinCount = 896;
  static constexpr std::size_t kBitmapWords = kBinCount / 64;

  MemoryResource& upstream_;
  PoolOptions options_;
  mutable std::mutex mutex_;

  std::vector<std::unique_ptr<Segment>> segments_;
  std::array<Block*, kBinCount> bins_{};
  std::array<std::uint64_t, kBitmapWords> bitmap_{};
  std::unique_ptr<detail::PointerMap<Block*>> used_;
  std::vector<std::unique_ptr<Block[]>> block_chunks_;
  Block* spare_blocks_ = nullptr;

  PoolStats stats_;
};

}  // namespace tabula
