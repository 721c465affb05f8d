#include "tabula/memory/host_resource.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "memory/detail/align.hpp"
#include "tabula/core/errors.hpp"
#include "tabula/memory/memory_info.hpp"

namespace tabula {

std::size_t HostResource::page_size() noexcept {
  static const std::size_t size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return size;
}

namespace {

[[noreturn]] void throw_refused(std::size_t bytes, int error) {
  throw OutOfMemory("out of memory on cpu: the OS refused to map " + format_bytes(bytes) + " (" +
                        std::to_string(bytes) + " bytes): " + std::strerror(error),
                    bytes, 0);
}

}  // namespace

void* HostResource::do_allocate(std::size_t bytes, std::size_t alignment) {
  const std::size_t page = page_size();
  const std::size_t length = detail::round_up(bytes, page);
  if (alignment <= page) {
    void* p = ::mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw_refused(length, errno);
    return p;
  }
  // Map enough to find an aligned start inside, then unmap the slack on both sides.
  const std::size_t padded = length + alignment;
  void* raw = ::mmap(nullptr, padded, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw_refused(padded, errno);
  const auto start = reinterpret_cast<std::uintptr_t>(raw);
  const auto aligned = detail::round_up(start, alignment);
  if (aligned > start) ::munmap(raw, aligned - start);
  const std::size_t tail = (start + padded) - (aligned + length);
  if (tail > 0) ::munmap(reinterpret_cast<void*>(aligned + length), tail);
  return reinterpret_cast<void*>(aligned);
}

void HostResource::do_deallocate(void* p, std::size_t bytes, std::size_t) noexcept {
  ::munmap(p, detail::round_up(bytes, page_size()));
}

void HostResource::do_discard(void* p, std::size_t bytes) noexcept {
  // Only pages wholly inside the range: the bytes around it belong to live blocks.
  const auto start = reinterpret_cast<std::uintptr_t>(p);
  const std::uintptr_t first = detail::round_up(start, page_size());
  const std::uintptr_t last = (start + bytes) / page_size() * page_size();
  // Advice the kernel may refuse changes nothing that anyone reads: nothing to report.
  if (last > first) (void)::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

}  // namespace tabula
