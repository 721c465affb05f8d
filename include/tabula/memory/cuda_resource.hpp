#pragma once
/// @file
/// GPU memory from the CUDA driver.

#include "tabula/memory/memory_resource.hpp"

namespace tabula {

/// @brief Device memory from `cudaMalloc`, returned with `cudaFree`, on one CUDA device.
///
/// Meant to sit under a `PoolResource`: `cudaMalloc`/`cudaFree` synchronise the device and are
/// slow. Alignment up to 256 bytes is guaranteed by the driver; larger requests are refused.
/// Thread-safe (each call selects its device first).
class CudaResource final : public MemoryResource {
 public:
  /// @throws Error when tabula was built without CUDA or `device` is not a usable CUDA device.
  explicit CudaResource(Device device);

  static constexpr std::size_t kDriverAlignment = 256;

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override;
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) noexcept override;
};

}  // namespace tabula
