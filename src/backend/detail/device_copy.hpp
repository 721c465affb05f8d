#pragma once
// Byte copies between devices, the one place that knows how memory moves between them.

#include <cstddef>
#include <cstdint>

#include "backend/detail/scratch.hpp"
#include "tabula/core/device.hpp"

namespace tabula::detail {

/// Copies `bytes` from `src` on `from` to `dst` on `to` (host↔device, within one device, or
/// between two GPUs: then after the work queued on the source and done when it returns).
/// @throws Error when a CUDA copy fails or CUDA is not built in.
void copy_bytes(void* dst, Device to, const void* src, Device from, std::size_t bytes);

/// Waits until the work this thread queued on `device` is done (nothing to wait for on the
/// CPU), so that another thread may use its results and buffers. @throws Error when queued
/// work failed.
void finish_queued_work(Device device);

/// Copies rows `rows[0..count)` (a host array) of `src` (rows of `row_bytes` on `from`) to
/// rows 0..count of `dst` on `to`: a batch gathered from a dataset in shuffled order.
/// `scratch` is the target's session, whose staging a CUDA target uses (cuda_gather.hpp):
/// from the host, the rows are gathered into pinned memory and go over in one copy; from the
/// same device, a kernel gathers them. Other moves copy each run of consecutive rows.
/// @throws Error as copy_bytes; OutOfMemory when the staging cannot grow.
void gather_rows(Scratch& scratch, void* dst, Device to, const void* src, Device from,
                 std::size_t row_bytes, const std::int64_t* rows, std::int64_t count);

/// Makes now whatever gather_rows of up to `bytes` from `from` onto `to` would allocate on its
/// first call (a GPU target's pinned staging), so that a training loop allocates it before its
/// first step changes anything. Nothing for other moves. @throws OutOfMemory, Error.
void reserve_gather_rows(Scratch& scratch, Device to, Device from, std::size_t bytes);

/// gather_rows within host memory: runs of consecutive rows are one memcpy, and a large gather
/// runs in parts on the kernels' threads.
void gather_host_rows(void* dst, const void* src, std::size_t row_bytes, const std::int64_t* rows,
                      std::int64_t count);

/// Sets `bytes` bytes at `dst` on `device` to zero.
void zero_bytes(void* dst, Device device, std::size_t bytes);

}  // namespace tabula::detail
