#include "support/allocation_faults.hpp"

#include <string>

#include "tabula/core/errors.hpp"

namespace tabula::testing {

SessionOptions AllocationFaults::session_options(SessionOptions base) {
  base.wrap_pool = [this](MemoryResource& pool) -> std::unique_ptr<MemoryResource> {
    return std::make_unique<FaultInjectingResource>(pool, *this);
  };
  return base;
}

bool AllocationFaults::should_refuse() noexcept {
  const std::size_t number = count_.fetch_add(1) + 1;
  const std::size_t from = fail_from_.load();
  const bool refuse = from != 0 && number >= from;
  if (refuse) refused_.fetch_add(1);
  return refuse;
}

FaultInjectingResource::FaultInjectingResource(MemoryResource& upstream,
                                               AllocationFaults& faults) noexcept
    : MemoryResource(upstream.device()), upstream_(upstream), faults_(faults) {}

void* FaultInjectingResource::do_allocate(std::size_t bytes, std::size_t alignment) {
  if (faults_.should_refuse())
    throw OutOfMemory("injected fault: allocation of " + std::to_string(bytes) +
                          " bytes refused (test)",
                      bytes, 0);
  return upstream_.allocate(bytes, alignment);
}

void FaultInjectingResource::do_deallocate(void* p, std::size_t bytes,
                                           std::size_t alignment) noexcept {
  upstream_.deallocate(p, bytes, alignment);
}

}  // namespace tabula::testing
