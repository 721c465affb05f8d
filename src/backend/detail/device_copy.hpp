#pragma once
// Byte copies between devices, the one place that knows how memory moves between them.

#include <cstddef>

#include "tabula/core/device.hpp"

namespace tabula::detail {

/// Copies `bytes` from `src` on `from` to `dst` on `to` (host↔device or within one device).
/// @throws Error when a CUDA copy fails or CUDA is not built in.
void copy_bytes(void* dst, Device to, const void* src, Device from, std::size_t bytes);

/// Sets `bytes` bytes at `dst` on `device` to zero.
void zero_bytes(void* dst, Device device, std::size_t bytes);

}  // namespace tabula::detail
