#pragma once
// Pinned host memory a session stages its host-to-device copies through.

#include <cuda_runtime_api.h>

#include <array>
#include <cstddef>
#include <memory>
#include <mutex>

#include "backend/cuda/cuda_stream.hpp"
#include "backend/detail/device_context.hpp"
#include "session/detail/storage.hpp"

namespace tabula::detail {

/// A session's staging for one CUDA device: two page-locked host buffers, used in turn, so that
/// a batch gathered on the host goes to the device in one asynchronous copy (from pageable
/// memory a copy is staged by the driver, and waits), and a device buffer for the row indices
/// a gather on the device reads. The host buffers come from the session's host pool (category
/// data, listed as "cuda_staging") and are registered with the driver while they are held;
/// the index buffer from its device pool (category workspace, "cuda_gather_indices"). All of it
/// goes back when the session is cleared. Callers hold `mutex()` from `host_buffer` to `upload`.
class CudaStaging final : public DeviceContext {
 public:
  /// The factory a `Scratch` is asked with (`Scratch::context`).
  static std::unique_ptr<DeviceContext> make(SessionCore& session, Device device);
  ~CudaStaging() override;

  std::mutex& mutex() noexcept { return mutex_; }
  /// The next host buffer, of at least `bytes`, once the copy that last read it has completed.
  /// @throws OutOfMemory (the session's breakdown) when it must grow and cannot; Error.
  std::byte* host_buffer(std::size_t bytes);
  /// Queues the copy of the first `bytes` of the buffer `host_buffer` returned to `dst` on
  /// `stream`; the buffer is busy until the copy completes. @throws Error.
  void upload(void* dst, std::size_t bytes, const Stream& stream);
  /// A device buffer of at least `count` row indices. Reused by the next gather only after the
  /// kernels queued on the stream have read it (stream order). @throws OutOfMemory.
  std::int64_t* device_indices(std::size_t count);

 private:
  CudaStaging(SessionCore& session, Device device) : session_(session), device_(device) {}

  struct Slot {
    std::shared_ptr<Storage> buffer;  // registered with the driver while held
    cudaEvent_t copied = nullptr;     // recorded after the last copy out of the buffer
  };
  void free_buffer(Slot& slot) noexcept;

  SessionCore& session_;
  Device device_;
  std::mutex mutex_;
  std::array<Slot, 2> slots_;
  std::size_t next_ = 0;  // the slot host_buffer hands out next
  std::shared_ptr<Storage> indices_;
};

}  // namespace tabula::detail
