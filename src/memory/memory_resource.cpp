#include "tabula/memory/memory_resource.hpp"

#include "memory/detail/align.hpp"

#include "tabula/core/errors.hpp"

namespace tabula {

void* MemoryResource::allocate(std::size_t bytes, std::size_t alignment) {
  TABULA_EXPECT(detail::is_power_of_two(alignment), InvalidArgument,
                "allocation alignment on " << device_.str(), "a power of two", alignment);
  return do_allocate(bytes == 0 ? 1 : bytes, alignment);
}

void MemoryResource::deallocate(void* p, std::size_t bytes, std::size_t alignment) noexcept {
  if (p == nullptr) return;
  do_deallocate(p, bytes == 0 ? 1 : bytes, alignment);
}

}  // namespace tabula
