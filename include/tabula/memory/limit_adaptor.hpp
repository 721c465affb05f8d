#pragma once
/// @file
/// A cap on what may be taken from an upstream resource.

#include <atomic>

#include "tabula/memory/memory_resource.hpp"

namespace tabula {

/// @brief Refuses, with `OutOfMemory`, any allocation that would take the bytes outstanding
/// through it above `limit`. Does not own `upstream`. Thread-safe (lock-free counter).
///
/// Under a pool it caps what a session holds from the OS or driver; in tests it makes an
/// out-of-memory condition deterministic.
class LimitAdaptor final : public MemoryResource {
 public:
  /// @param limit bytes; 0 means no limit.
  LimitAdaptor(MemoryResource& upstream, std::size_t limit) noexcept;

  std::size_t limit() const noexcept { return limit_; }
  /// Bytes currently allocated through this adaptor.
  std::size_t allocated() const noexcept { return allocated_.load(std::memory_order_relaxed); }

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override;
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) noexcept override;
  void do_discard(void* p, std::size_t bytes) noexcept override { upstream_.discard(p, bytes); }

  MemoryResource& upstream_;
  std::size_t limit_;
  std::atomic<std::size_t> allocated_{0};
};

}  // namespace tabula
