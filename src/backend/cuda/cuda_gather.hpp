#pragma once
// Batches gathered onto a CUDA device: from the host through the session's pinned staging in
// one copy, from the same device by a kernel that reads the row indices.

#include <cstddef>
#include <cstdint>

#include "backend/detail/scratch.hpp"
#include "tabula/core/device.hpp"

namespace tabula::detail {

/// detail::gather_rows onto CUDA device `to` from the host or from `to` itself (see
/// device_copy.hpp), with `scratch` the session the target belongs to. Asynchronous: queued on
/// the thread's stream. @throws Error, OutOfMemory.
void cuda_gather_rows(Scratch& scratch, void* dst, Device to, const void* src, Device from,
                      std::size_t row_bytes, const std::int64_t* rows, std::int64_t count);

/// Makes the staging that gathers of up to `bytes` from the host onto `to` use, now.
/// @throws OutOfMemory, Error.
void cuda_reserve_gather(Scratch& scratch, Device to, std::size_t bytes);

}  // namespace tabula::detail
