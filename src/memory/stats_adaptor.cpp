#include "tabula/memory/stats_adaptor.hpp"

namespace tabula {

StatsAdaptor::StatsAdaptor(MemoryResource& upstream) noexcept
    : MemoryResource(upstream.device()), upstream_(upstream) {}

ResourceStats StatsAdaptor::stats() const noexcept {
  ResourceStats s;
  s.current = current_.load(std::memory_order_relaxed);
  s.peak = peak_.load(std::memory_order_relaxed);
  s.allocations = allocations_.load(std::memory_order_relaxed);
  s.total_allocations = total_allocations_.load(std::memory_order_relaxed);
  s.total_deallocations = total_deallocations_.load(std::memory_order_relaxed);
  return s;
}

void StatsAdaptor::reset_peak() noexcept {
  peak_.store(current_.load(std::memory_order_relaxed), std::memory_order_relaxed);
}

void* StatsAdaptor::do_allocate(std::size_t bytes, std::size_t alignment) {
  void* p = upstream_.allocate(bytes, alignment);
  const std::size_t now = current_.fetch_add(bytes, std::memory_order_relaxed) + bytes;
  std::size_t peak = peak_.load(std::memory_order_relaxed);
  while (now > peak && !peak_.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
  allocations_.fetch_add(1, std::memory_order_relaxed);
  total_allocations_.fetch_add(1, std::memory_order_relaxed);
  return p;
}

void StatsAdaptor::do_deallocate(void* p, std::size_t bytes, std::size_t alignment) noexcept {
  upstream_.deallocate(p, bytes, alignment);
  current_.fetch_sub(bytes, std::memory_order_relaxed);
  allocations_.fetch_sub(1, std::memory_order_relaxed);
  total_deallocations_.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace tabula
