#pragma once
/// @file
/// What the CUDA driver says is free on a GPU: the figure tabula's own must agree with.

#include <cstddef>

#include "tabula/core/device.hpp"

namespace tabula {

/// @brief A GPU's memory as the driver counts it (`cudaMemGetInfo`), all processes together.
struct DeviceMemory {
  std::size_t free = 0;   ///< bytes the driver can still hand out
  std::size_t total = 0;  ///< bytes of the device
};

/// @brief Reads `device`'s free and total memory from the CUDA driver (this creates the CUDA
/// context on first use, as any CUDA call does).
/// @throws InvalidArgument when `device` is not a CUDA device; Error when tabula was built
/// without CUDA or the device cannot be queried.
DeviceMemory device_memory(Device device);

}  // namespace tabula
