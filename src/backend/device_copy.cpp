#include "backend/detail/device_copy.hpp"

#include <cstring>

#include "backend/cpu/thread_pool.hpp"
#include "tabula/config.hpp"
#include "tabula/core/errors.hpp"

#if TABULA_WITH_CUDA
#include "backend/cuda/cuda_gather.hpp"
#include "backend/cuda/cuda_stream.hpp"
#endif

namespace tabula::detail {

void copy_bytes(void* dst, Device to, const void* src, Device from, std::size_t bytes) {
  if (bytes == 0) return;
  if (to.is_cpu() && from.is_cpu()) {
    std::memcpy(dst, src, bytes);
    return;
  }
#if TABULA_WITH_CUDA
  // On the thread's stream, after the kernels queued before it. From pageable host memory the
  // call returns once the source is staged; to the host it waits, so the caller can read.
  // Between two GPUs the streams are two (one per device): the source's work is waited for
  // first, and the copy before returning, so that the source may be reused at once.
  const bool between_gpus = to.is_cuda() && from.is_cuda() && to != from;
  if (between_gpus) Stream::for_device(from).synchronize();
  const Stream stream = Stream::for_device(to.is_cuda() ? to : from);
  check_cuda(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, stream.handle()),
             "cudaMemcpyAsync");
  if (to.is_cpu() || between_gpus) stream.synchronize();
#else
  TABULA_THROW(Error, "copy from " << from.str() << " to " << to.str()
                                   << ": this build of tabula has no CUDA support");
#endif
}

void finish_queued_work(Device device) {
#if TABULA_WITH_CUDA
  if (device.is_cuda()) Stream::for_device(device).synchronize();
#else
  (void)device;
#endif
}

namespace {

// Copies rows[begin..end) to dst rows begin..end, a run of consecutive source rows at a time.
void gather_run(std::byte* dst, Device to, const std::byte* src, Device from,
                std::size_t row_bytes, const std::int64_t* rows, std::int64_t begin,
                std::int64_t end) {
  for (std::int64_t r = begin; r < end;) {
    std::int64_t run = 1;
    while (r + run < end && rows[r + run] == rows[r] + run) ++run;
    copy_bytes(dst + r * row_bytes, to, src + rows[r] * row_bytes, from,
               static_cast<std::size_t>(run) * row_bytes);
    r += run;
  }
}

}  // namespace

void gather_host_rows(void* dst, const void* src, std::size_t row_bytes, const std::int64_t* rows,
                      std::int64_t count) {
  auto* out = static_cast<std::byte*>(dst);
  const auto* in = static_cast<const std::byte*>(src);
  const Device cpu = Device::cpu();
  // Rows come from anywhere in a dataset far larger than the caches: the copy waits on
  // memory, and two cores keep twice the reads in flight.
  ThreadPool::instance().run_over(count, static_cast<std::int64_t>(row_bytes / sizeof(float)),
                                  [&](std::int64_t first, std::int64_t n) {
                                    gather_run(out, cpu, in, cpu, row_bytes, rows, first,
                                               first + n);
                                  });
}

void gather_rows(Scratch& scratch, void* dst, Device to, const void* src, Device from,
                 std::size_t row_bytes, const std::int64_t* rows, std::int64_t count) {
  if (to.is_cpu() && from.is_cpu()) return gather_host_rows(dst, src, row_bytes, rows, count);
#if TABULA_WITH_CUDA
  if (to.is_cuda() && (from.is_cpu() || from == to))
    return cuda_gather_rows(scratch, dst, to, src, from, row_bytes, rows, count);
#endif
  (void)scratch;  // to the host, or between two GPUs: a copy per run of rows
  gather_run(static_cast<std::byte*>(dst), to, static_cast<const std::byte*>(src), from, row_bytes,
             rows, 0, count);
}

void reserve_gather_rows(Scratch& scratch, Device to, Device from, std::size_t bytes) {
#if TABULA_WITH_CUDA
  if (to.is_cuda() && from.is_cpu()) cuda_reserve_gather(scratch, to, bytes);
#endif
  (void)scratch, (void)to, (void)from, (void)bytes;
}

void zero_bytes(void* dst, Device device, std::size_t bytes) {
  if (bytes == 0) return;
  if (device.is_cpu()) {
    std::memset(dst, 0, bytes);
    return;
  }
#if TABULA_WITH_CUDA
  const Stream stream = Stream::for_device(device);
  check_cuda(cudaMemsetAsync(dst, 0, bytes, stream.handle()), "cudaMemsetAsync");
#else
  TABULA_THROW(Error, "zero memory on " << device.str()
                                        << ": this build of tabula has no CUDA support");
#endif
}

}  // namespace tabula::detail
