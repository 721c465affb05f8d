#pragma once
// Byte copies between devices, the one place that knows how memory moves between them.

#include <cstddef>
#include <cstdint>

#include "tabula/core/device.hpp"

namespace tabula::detail {

/// Copies `bytes` from `src` on `from` to `dst` on `to` (host↔device or within one device).
/// @throws Error when a CUDA copy fails or CUDA is not built in.
void copy_bytes(void* dst, Device to, const void* src, Device from, std::size_t bytes);

/// Copies rows `rows[0..count)` of `src` (rows of `row_bytes` on `from`) to rows 0..count of
/// `dst` on `to`: a batch gathered from a dataset in shuffled order. Runs of consecutive rows
/// are one copy; on the CPU, a large gather runs in parts on the kernels' threads.
/// @throws Error as copy_bytes.
void gather_rows(void* dst, Device to, const void* src, Device from, std::size_t row_bytes,
                 const std::int64_t* rows, std::int64_t count);

/// Sets `bytes` bytes at `dst` on `device` to zero.
void zero_bytes(void* dst, Device device, std::size_t bytes);

}  // namespace tabula::detail
