#pragma once
/// @file
/// Host memory straight from the kernel, so that what is given back leaves the process's RSS.

#include "tabula/memory/memory_resource.hpp"

namespace tabula {

/// @brief Host memory from anonymous `mmap`, returned with `munmap`.
///
/// glibc's `malloc` keeps freed memory in its arenas, so a process that frees a model still
/// shows it in its RSS; pages unmapped here leave the RSS at once. Every request is rounded up
/// to whole pages, so this resource is meant to sit under a pool, not to serve small tensors.
/// Alignments up to the page size come for free; larger ones are met by mapping more and
/// trimming. `discard` gives the whole pages of a range back with `madvise(MADV_DONTNEED)`,
/// keeping the mapping. Stateless and thread-safe.
class HostResource final : public MemoryResource {
 public:
  HostResource() noexcept : MemoryResource(Device::cpu()) {}

  /// The system page size (4096 on x86-64 Linux).
  static std::size_t page_size() noexcept;

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override;
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) noexcept override;
  void do_discard(void* p, std::size_t bytes) noexcept override;
};

}  // namespace tabula
