#include "tabula/memory/pool_resource.hpp"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <string>

#include "memory/detail/align.hpp"
#include "memory/detail/pointer_map.hpp"
#include "tabula/core/errors.hpp"

namespace tabula {

// A run of bytes inside a segment. Blocks of a segment form an address-ordered list that
// tiles it exactly; free blocks are also threaded on their size bin's list.
struct PoolResource::Block {
  char* ptr = nullptr;
  std::size_t size = 0;
  Segment* segment = nullptr;
  Block* prev = nullptr;  // neighbour at lower address in the same segment
  Block* next = nullptr;  // neighbour at higher address in the same segment
  Block* bin_prev = nullptr;
  Block* bin_next = nullptr;
  std::uint32_t bin = 0;  // the bin it sits in while free
  bool free = false;
};

struct PoolResource::Segment {
  char* base = nullptr;
  std::size_t size = 0;
  std::size_t alignment = 0;
  Block* first = nullptr;
};

namespace {

constexpr std::size_t kSubBinBits = 4;
constexpr std::size_t kSubBins = std::size_t{1} << kSubBinBits;
constexpr std::size_t kBlocksPerChunk = 256;

// Two-level segregated bins over 64-byte units: sizes below 16 units get a bin each; above,
// each power of two is split into 16 bins. bin_of is monotone in size.
std::size_t bin_of(std::size_t size) noexcept {
  const std::size_t units = size / PoolResource::kGranule;
  if (units < kSubBins) return units;
  const std::size_t top = static_cast<std::size_t>(std::bit_width(units)) - 1;
  const std::size_t sub = (units >> (top - kSubBinBits)) & (kSubBins - 1);
  return kSubBins + (top - kSubBinBits) * kSubBins + sub;
}

std::size_t padding_for(const char* ptr, std::size_t alignment) noexcept {
  const auto address = reinterpret_cast<std::uintptr_t>(ptr);
  return detail::round_up(address, alignment) - address;
}

}  // namespace

PoolResource::PoolResource(MemoryResource& upstream, PoolOptions options)
    : MemoryResource(upstream.device()),
      upstream_(upstream),
      options_(options),
      used_(std::make_unique<detail::PointerMap<Block*>>()) {
  TABULA_EXPECT(detail::is_power_of_two(options.large_segment_granularity), InvalidArgument,
                "PoolOptions::large_segment_granularity", "a power of two",
                options.large_segment_granularity);
  TABULA_EXPECT(options.small_request_limit <= options.small_segment_size, InvalidArgument,
                "PoolOptions::small_request_limit",
                "<= small_segment_size (" << options.small_segment_size << ")",
                options.small_request_limit);
  options_.small_segment_size = detail::round_up(options.small_segment_size, kGranule);
}

PoolResource::~PoolResource() {
  for (auto& segment : segments_) {
    upstream_.deallocate(segment->base, segment->size, segment->alignment);
  }
}

// ---- bins -------------------------------------------------------------------------------

void PoolResource::insert_free(Block* block) noexcept {
  const std::size_t bin = bin_of(block->size);
  block->bin = static_cast<std::uint32_t>(bin);
  block->free = true;
  block->bin_prev = nullptr;
  block->bin_next = bins_[bin];
  if (bins_[bin] != nullptr) bins_[bin]->bin_prev = block;
  bins_[bin] = block;
  bitmap_[bin / 64] |= std::uint64_t{1} << (bin % 64);
  ++stats_.free_blocks;
}

void PoolResource::remove_free(Block* block) noexcept {
  const std::size_t bin = block->bin;
  if (block->bin_prev != nullptr) {
    block->bin_prev->bin_next = block->bin_next;
  } else {
    bins_[bin] = block->bin_next;
    if (bins_[bin] == nullptr) bitmap_[bin / 64] &= ~(std::uint64_t{1} << (bin % 64));
  }
  if (block->bin_next != nullptr) block->bin_next->bin_prev = block->bin_prev;
  block->bin_prev = block->bin_next = nullptr;
  block->free = false;
  --stats_.free_blocks;
}

std::size_t PoolResource::next_nonempty_bin(std::size_t from) const noexcept {
  std::size_t word = from / 64;
  if (word >= kBitmapWords) return kBinCount;
  std::uint64_t bits = bitmap_[word] & (~std::uint64_t{0} << (from % 64));
  while (bits == 0) {
    if (++word == kBitmapWords) return kBinCount;
    bits = bitmap_[word];
  }
  return word * 64 + static_cast<std::size_t>(std::countr_zero(bits));
}

PoolResource::Block* PoolResource::scan_bin(std::size_t bin, std::size_t size,
                                            std::size_t alignment) const noexcept {
  Block* best = nullptr;
  for (Block* b = bins_[bin]; b != nullptr; b = b->bin_next) {
    if (padding_for(b->ptr, alignment) + size > b->size) continue;
    if (best == nullptr || b->size < best->size || (b->size == best->size && b->ptr < best->ptr))
      best = b;
  }
  return best;
}

PoolResource::Block* PoolResource::find_fit(std::size_t size,
                                            std::size_t alignment) const noexcept {
  // Blocks in the request's own bin may be too small; every block in a higher bin is larger
  // than any in a lower one, so the first bin with a fitting block holds the best fit.
  for (std::size_t bin = next_nonempty_bin(bin_of(size)); bin < kBinCount;
       bin = next_nonempty_bin(bin + 1)) {
    if (Block* b = scan_bin(bin, size, alignment)) return b;
  }
  return nullptr;
}

// ---- block records ----------------------------------------------------------------------

void PoolResource::reserve_blocks(std::size_t count) {
  std::size_t spare = 0;
  for (Block* b = spare_blocks_; b != nullptr && spare < count; b = b->next) ++spare;
  if (spare >= count) return;
  auto chunk = std::make_unique<Block[]>(kBlocksPerChunk);
  for (std::size_t i = 0; i < kBlocksPerChunk; ++i) {
    chunk[i].next = spare_blocks_;
    spare_blocks_ = &chunk[i];
  }
  block_chunks_.push_back(std::move(chunk));
}

PoolResource::Block* PoolResource::new_block() noexcept {
  // reserve_blocks() was called first; the spare list is never empty here.
  Block* b = spare_blocks_;
  spare_blocks_ = b->next;
  return b;
}

void PoolResource::delete_block(Block* block) noexcept {
  block->next = spare_blocks_;
  spare_blocks_ = block;
}

// ---- allocate / deallocate --------------------------------------------------------------

void* PoolResource::do_allocate(std::size_t bytes, std::size_t alignment) {
  const std::size_t size = block_size(bytes);
  alignment = std::max(alignment, kGranule);
  std::lock_guard lock(mutex_);
  Block* block = find_fit(size, alignment);
  if (block == nullptr) block = grow(size, alignment);
  return carve(block, size, alignment);
}

PoolResource::Block* PoolResource::grow(std::size_t size, std::size_t alignment) {
  std::size_t segment_size = size <= options_.small_request_limit
                                 ? options_.small_segment_size
                                 : detail::round_up(size, options_.large_segment_granularity);
  if (alignment > options_.small_segment_size) segment_size = std::max(segment_size, size);
  void* base = nullptr;
  try {
    base = upstream_.allocate(segment_size, alignment);
  } catch (const OutOfMemory&) {
    // Cached free segments may be what stands between this request and the limit.
    if (release_locked() == 0) throw;
    base = upstream_.allocate(segment_size, alignment);
  }
  // Record keeping below may throw bad_alloc; give the segment back if it does.
  try {
    auto segment = std::make_unique<Segment>();
    segment->base = static_cast<char*>(base);
    segment->size = segment_size;
    segment->alignment = alignment;
    segments_.reserve(segments_.size() + 1);
    reserve_blocks(1);
    Block* block = new_block();
    *block = Block{};
    block->ptr = segment->base;
    block->size = segment_size;
    block->segment = segment.get();
    segment->first = block;
    segments_.push_back(std::move(segment));
    insert_free(block);
    stats_.reserved += segment_size;
    ++stats_.segments;
    ++stats_.upstream_allocations;
    return block;
  } catch (...) {
    upstream_.deallocate(base, segment_size, alignment);
    throw;
  }
}

void* PoolResource::carve(Block* block, std::size_t size, std::size_t alignment) {
  // Make sure the (at most two) split records and the map slot exist before touching the
  // block, so that nothing below can fail half-way.
  reserve_blocks(2);
  used_->reserve_one_more();

  remove_free(block);
  if (const std::size_t pad = padding_for(block->ptr, alignment); pad > 0) {
    // The aligned start lies inside; the bytes before it stay free as a block of their own.
    Block* front = new_block();
    *front = Block{block->ptr, pad, block->segment, block->prev, block, nullptr, nullptr, 0, false};
    if (block->prev != nullptr) block->prev->next = front;
    if (block->segment->first == block) block->segment->first = front;
    block->prev = front;
    block->ptr += pad;
    block->size -= pad;
    insert_free(front);
  }
  if (block->size - size >= kGranule) {
    Block* tail = new_block();
    *tail = Block{block->ptr + size, block->size - size, block->segment, block, block->next,
                  nullptr, nullptr, 0, false};
    if (block->next != nullptr) block->next->prev = tail;
    block->next = tail;
    block->size = size;
    insert_free(tail);
  }

  used_->insert(block->ptr, block);
  stats_.current += block->size;
  stats_.peak = std::max(stats_.peak, stats_.current);
  ++stats_.allocations;
  ++stats_.total_allocations;
  return block->ptr;
}

void PoolResource::do_deallocate(void* p, std::size_t, std::size_t) noexcept {
  std::lock_guard lock(mutex_);
  Block* block = used_->erase(p);
  if (block == nullptr) {
    // Not ours: a caller bug. Freeing it would corrupt the pool; count it for diagnosis.
    ++stats_.unknown_frees;
    return;
  }
  stats_.current -= block->size;
  --stats_.allocations;
  if (Block* next = block->next; next != nullptr && next->free) {
    remove_free(next);
    block->size += next->size;
    block->next = next->next;
    if (next->next != nullptr) next->next->prev = block;
    delete_block(next);
  }
  if (Block* prev = block->prev; prev != nullptr && prev->free) {
    remove_free(prev);
    prev->size += block->size;
    prev->next = block->next;
    if (block->next != nullptr) block->next->prev = prev;
    delete_block(block);
    block = prev;
  }
  insert_free(block);
}

// ---- release and figures ----------------------------------------------------------------

std::size_t PoolResource::release() noexcept {
  std::lock_guard lock(mutex_);
  return release_locked();
}

std::size_t PoolResource::release_locked() noexcept {
  std::size_t released = 0;
  auto keep = segments_.begin();
  for (auto it = segments_.begin(); it != segments_.end(); ++it) {
    Segment& s = **it;
    Block* only = s.first;
    if (only->free && only->size == s.size) {
      remove_free(only);
      delete_block(only);
      upstream_.deallocate(s.base, s.size, s.alignment);
      released += s.size;
      stats_.reserved -= s.size;
      --stats_.segments;
      ++stats_.upstream_deallocations;
    } else {
      // The segment stays for its live blocks; the memory under its free ones need not.
      for (Block* b = s.first; b != nullptr; b = b->next)
        if (b->free) upstream_.discard(b->ptr, b->size);
      if (keep != it) *keep = std::move(*it);
      ++keep;
    }
  }
  segments_.erase(keep, segments_.end());
  if (segments_.empty()) {
    // Nothing is left: drop the bookkeeping's own memory too, so that a cleared session
    // holds next to nothing.
    std::vector<std::unique_ptr<Segment>>().swap(segments_);
    used_->clear_and_shrink();
    block_chunks_.clear();
    block_chunks_.shrink_to_fit();
    spare_blocks_ = nullptr;
  }
  return released;
}

PoolStats PoolResource::stats() const {
  std::lock_guard lock(mutex_);
  PoolStats s = stats_;
  for (std::size_t bin = kBinCount; bin-- > 0;) {
    if (bins_[bin] == nullptr) continue;
    for (Block* b = bins_[bin]; b != nullptr; b = b->bin_next)
      s.largest_free_block = std::max(s.largest_free_block, b->size);
    break;
  }
  const std::size_t free_bytes = s.reserved - s.current;
  s.fragmentation = free_bytes == 0 ? 0.0
                                    : 1.0 - static_cast<double>(s.largest_free_block) /
                                                static_cast<double>(free_bytes);
  return s;
}

void PoolResource::reset_peak() noexcept {
  std::lock_guard lock(mutex_);
  stats_.peak = stats_.current;
}

void PoolResource::validate() const {
  std::lock_guard lock(mutex_);
  auto fail = [](const std::string& what) {
    TABULA_THROW(Error, "PoolResource invariant broken: " << what);
  };
  std::size_t used_bytes = 0, used_blocks = 0, free_blocks = 0, reserved = 0;
  for (const auto& segment : segments_) {
    reserved += segment->size;
    const char* expected = segment->base;
    const Block* prev = nullptr;
    for (const Block* b = segment->first; b != nullptr; prev = b, b = b->next) {
      if (b->ptr != expected) fail("blocks do not tile their segment");
      if (b->segment != segment.get()) fail("a block points at the wrong segment");
      if (b->prev != prev) fail("a block's prev link is wrong");
      if (b->size == 0 || b->size % kGranule != 0) fail("a block size is not a granule multiple");
      if (b->free && prev != nullptr && prev->free) fail("two adjacent free blocks");
      if (b->free) {
        ++free_blocks;
        bool found = false;
        for (const Block* f = bins_[bin_of(b->size)]; f != nullptr; f = f->bin_next)
          found = found || f == b;
        if (!found) fail("a free block is missing from its bin");
        if (used_->find(b->ptr) != nullptr) fail("a free block is in the address map");
      } else {
        ++used_blocks;
        used_bytes += b->size;
        if (used_->find(b->ptr) != b) fail("a used block is missing from the address map");
      }
      expected = b->ptr + b->size;
    }
    if (expected != segment->base + segment->size) fail("blocks do not cover their segment");
  }
  std::size_t binned = 0;
  for (std::size_t bin = 0; bin < kBinCount; ++bin) {
    const bool marked = (bitmap_[bin / 64] >> (bin % 64)) & 1u;
    if (marked != (bins_[bin] != nullptr)) fail("the bin bitmap disagrees with the bins");
    for (const Block* f = bins_[bin]; f != nullptr; f = f->bin_next) {
      ++binned;
      if (!f->free) fail("a used block sits in a bin");
      if (bin_of(f->size) != bin) fail("a block sits in the wrong bin");
    }
  }
  if (binned != free_blocks || free_blocks != stats_.free_blocks) fail("free block count");
  if (used_blocks != used_->size() || used_blocks != stats_.allocations) fail("block count");
  if (used_bytes != stats_.current) fail("current bytes disagree with the blocks");
  if (reserved != stats_.reserved) fail("reserved bytes disagree with the segments");
  if (segments_.size() != stats_.segments) fail("segment count");
}

}  // namespace tabula
