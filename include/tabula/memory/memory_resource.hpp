#pragma once
/// @file
/// The abstract source of memory that every resource and adaptor implements.

#include <cstddef>

#include "tabula/core/device.hpp"

namespace tabula {

/// @brief An abstract source of memory on one device, in the non-virtual-interface style:
/// the public `allocate`/`deallocate` check arguments and call the private `do_*` hooks.
///
/// Resources compose: an adaptor (limit, statistics, pool) wraps an upstream resource that it
/// does not own; the upstream must outlive it. Whether a resource is thread-safe is stated by
/// each implementation.
class MemoryResource {
 public:
  /// Alignment of every host allocation unless a larger one is asked for: one cache line,
  /// enough for AVX-512 loads.
  static constexpr std::size_t kDefaultAlignment = 64;

  explicit MemoryResource(Device device) noexcept : device_(device) {}
  virtual ~MemoryResource() = default;
  MemoryResource(const MemoryResource&) = delete;
  MemoryResource& operator=(const MemoryResource&) = delete;

  /// @brief Returns `bytes` bytes aligned to `alignment` (a zero-byte request gets a valid,
  /// unique pointer).
  /// @throws OutOfMemory when the resource cannot supply the bytes.
  /// @throws InvalidArgument when `alignment` is not a power of two.
  void* allocate(std::size_t bytes, std::size_t alignment = kDefaultAlignment);

  /// @brief Gives back memory from `allocate` with the same `bytes` and `alignment`.
  void deallocate(void* p, std::size_t bytes,
                  std::size_t alignment = kDefaultAlignment) noexcept;

  /// @brief Says that bytes [p, p + bytes) inside a live allocation from `allocate` hold
  /// nothing anyone will read: the resource may hand the memory under them back to the OS,
  /// keeping the allocation (host memory: the whole pages inside the range, which then read
  /// as zero). What a pool calls for its free blocks when it releases its cache. The default
  /// does nothing (device memory cannot give back part of an allocation).
  void discard(void* p, std::size_t bytes) noexcept {
    if (p != nullptr && bytes > 0) do_discard(p, bytes);
  }

  /// The device whose memory this resource hands out.
  Device device() const noexcept { return device_; }

 private:
  virtual void* do_allocate(std::size_t bytes, std::size_t alignment) = 0;
  virtual void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) noexcept = 0;
  virtual void do_discard(void* p, std::size_t bytes) noexcept {
    (void)p;
    (void)bytes;
  }

  Device device_;
};

}  // namespace tabula
