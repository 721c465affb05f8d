#include "tabula/memory/limit_adaptor.hpp"

#include "tabula/memory/memory_info.hpp"
#include "tabula/core/errors.hpp"

namespace tabula {

LimitAdaptor::LimitAdaptor(MemoryResource& upstream, std::size_t limit) noexcept
    : MemoryResource(upstream.device()), upstream_(upstream), limit_(limit) {}

void* LimitAdaptor::do_allocate(std::size_t bytes, std::size_t alignment) {
  // Reserve the bytes first so that two threads cannot both slip under the limit.
  std::size_t before = allocated_.load(std::memory_order_relaxed);
  do {
    if (limit_ != 0 && (bytes > limit_ || before > limit_ - bytes)) {
      throw OutOfMemory("out of memory on " + device().str() + ": limit " +
                            format_bytes(limit_) + " (" + std::to_string(limit_) +
                            " bytes) would be exceeded by a request for " +
                            format_bytes(bytes) + " with " + format_bytes(before) +
                            " already held",
                        bytes, limit_);
    }
  } while (!allocated_.compare_exchange_weak(before, before + bytes, std::memory_order_relaxed));
  try {
    return upstream_.allocate(bytes, alignment);
  } catch (...) {
    allocated_.fetch_sub(bytes, std::memory_order_relaxed);
    throw;
  }
}

void LimitAdaptor::do_deallocate(void* p, std::size_t bytes, std::size_t alignment) noexcept {
  upstream_.deallocate(p, bytes, alignment);
  allocated_.fetch_sub(bytes, std::memory_order_relaxed);
}

}  // namespace tabula
