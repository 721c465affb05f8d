#pragma once
/// @file
/// Counts what passes through to an upstream resource.

#include <atomic>
#include <cstddef>

#include "tabula/memory/memory_resource.hpp"

namespace tabula {

/// @brief Figures of a `StatsAdaptor`.
struct ResourceStats {
  std::size_t current = 0;      ///< bytes outstanding
  std::size_t peak = 0;         ///< highest `current` since creation or `reset_peak`
  std::size_t allocations = 0;  ///< allocations outstanding
  std::size_t total_allocations = 0;    ///< allocate calls that succeeded
  std::size_t total_deallocations = 0;  ///< deallocate calls
};

/// @brief Counts bytes and calls that pass through it to `upstream` (not owned).
/// Thread-safe (lock-free counters; a snapshot taken while other threads allocate is
/// consistent per field, not across fields).
///
/// Under a pool, its figures are what the OS or driver has actually handed over; a training
/// step that allocates nothing new leaves `total_allocations` unchanged.
class StatsAdaptor final : public MemoryResource {
 public:
  explicit StatsAdaptor(MemoryResource& upstream) noexcept;

  ResourceStats stats() const noexcept;
  void reset_peak() noexcept;

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override;
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) noexcept override;
  void do_discard(void* p, std::size_t bytes) noexcept override { upstream_.discard(p, bytes); }

  MemoryResource& upstream_;
  std::atomic<std::size_t> current_{0};
  std::atomic<std::size_t> peak_{0};
  std::atomic<std::size_t> allocations_{0};
  std::atomic<std::size_t> total_allocations_{0};
  std::atomic<std::size_t> total_deallocations_{0};
};

}  // namespace tabula
