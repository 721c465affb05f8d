#include <cstdint>
#include <mutex>

#include "backend/cuda/cuda_gather.hpp"
#include "backend/cuda/cuda_launch.cuh"
#include "backend/cuda/cuda_staging.hpp"
#include "backend/detail/device_copy.hpp"
#include "memory/detail/align.hpp"
#include "tabula/core/errors.hpp"

namespace tabula::detail {

namespace {

// Element i of the gathered rows, in units of T (a row is `row_units` of them).
template <typename T>
void gather_on_device(const Stream& stream, T* dst, const T* src, const std::int64_t* rows,
                      std::int64_t count, std::int64_t row_units) {
  for_each_index(
      stream, count * row_units,
      [=] __device__(index_t i) {
        const index_t r = i / row_units;
        dst[i] = src[rows[r] * row_units + i % row_units];
      },
      "gather_rows");
}

}  // namespace

void cuda_gather_rows(Scratch& scratch, void* dst, Device to, const void* src, Device from,
                      std::size_t row_bytes, const std::int64_t* rows, std::int64_t count) {
  if (count <= 0 || row_bytes == 0) return;
  const Stream stream = Stream::for_device(to);
  const auto n = static_cast<std::size_t>(count);
  if (from.is_cpu()) {
    // Gathered on the host into pinned memory, then one copy the device runs on its own.
    auto& staging = static_cast<CudaStaging&>(scratch.context(&CudaStaging::make));
    std::lock_guard lock(staging.mutex());
    const CudaStaging::Slot slot = staging.next(n * row_bytes);
    gather_host_rows(slot.data, src, row_bytes, rows, count);
    staging.upload(slot, dst, n * row_bytes, stream);
    return;
  }
  // On the device: the indices go over (from pageable memory the driver copies them before
  // the call returns), a kernel reads the rows. The indices' scratch goes back to the pool at
  // once; the next user of the block is queued behind the kernel on this stream.
  ScratchBlock indices(scratch, n * sizeof(std::int64_t));
  auto* device_rows = static_cast<std::int64_t*>(indices.data());
  copy_bytes(device_rows, to, rows, Device::cpu(), n * sizeof(std::int64_t));
  if (row_bytes % sizeof(std::uint32_t) == 0 && is_aligned(dst, sizeof(std::uint32_t)) &&
      is_aligned(src, sizeof(std::uint32_t))) {
    gather_on_device(stream, static_cast<std::uint32_t*>(dst),
                     static_cast<const std::uint32_t*>(src), device_rows, count,
                     static_cast<std::int64_t>(row_bytes / sizeof(std::uint32_t)));
  } else {
    gather_on_device(stream, static_cast<std::uint8_t*>(dst), static_cast<const std::uint8_t*>(src),
                     device_rows, count, static_cast<std::int64_t>(row_bytes));
  }
}

void cuda_reserve_gather(Scratch& scratch, Device to, std::size_t bytes) {
  (void)Stream::for_device(to);  // the device current, as the staging's events need
  auto& staging = static_cast<CudaStaging&>(scratch.context(&CudaStaging::make));
  std::lock_guard lock(staging.mutex());
  staging.reserve(bytes);
}

}  // namespace tabula::detail
