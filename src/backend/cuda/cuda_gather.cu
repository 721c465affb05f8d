#include <cstring>
#include <mutex>

#include "backend/cuda/cuda_gather.hpp"
#include "backend/cuda/cuda_launch.cuh"
#include "backend/cuda/cuda_staging.hpp"
#include "backend/detail/device_copy.hpp"
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
  // (Devices compared by their parts: nvcc does not define the defaulted operator==.)
  TABULA_EXPECT(from.is_cpu() || from.index() == to.index(), InvalidArgument,
                "gather of a batch onto " << to.str(), "rows from the host or from " << to.str(),
                "rows on " << from.str());
  auto& staging = static_cast<CudaStaging&>(scratch.context(&CudaStaging::make));
  const Stream stream = Stream::for_device(to);
  std::lock_guard lock(staging.mutex());
  const auto n = static_cast<std::size_t>(count);
  if (from.is_cpu()) {
    // Gathered on the host into pinned memory, then one copy the device runs on its own.
    std::byte* staged = staging.host_buffer(n * row_bytes);
    gather_host_rows(staged, src, row_bytes, rows, count);
    staging.upload(dst, n * row_bytes, stream);
    return;
  }
  // On the device: the indices go over, a kernel reads the rows.
  std::int64_t* indices = staging.device_indices(n);
  std::memcpy(staging.host_buffer(n * sizeof(std::int64_t)), rows, n * sizeof(std::int64_t));
  staging.upload(indices, n * sizeof(std::int64_t), stream);
  if (row_bytes % sizeof(std::uint32_t) == 0) {
    gather_on_device(stream, static_cast<std::uint32_t*>(dst),
                     static_cast<const std::uint32_t*>(src), indices, count,
                     static_cast<std::int64_t>(row_bytes / sizeof(std::uint32_t)));
  } else {
    gather_on_device(stream, static_cast<std::uint8_t*>(dst), static_cast<const std::uint8_t*>(src),
                     indices, count, static_cast<std::int64_t>(row_bytes));
  }
}

}  // namespace tabula::detail
