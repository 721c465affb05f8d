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
/// memory the driver stages a copy itself, and the host waits for it). The buffers come from
/// the session's host pool (category data, listed as "cuda_staging"); the whole pages inside a
/// buffer are registered with the driver while it is held, so no other block's pages are
/// locked. They go back when the session is cleared. Like a cuBLAS context, the buffers keep
/// the session's core alive until the session clears its contexts (`clear`, or the `Session`
/// object's end). Where the driver refuses to pin (some sandboxes), the buffers stay pageable:
/// copies are then slower but still correct, and a warning says so once. Callers hold `mutex()`
/// from `next` to `upload`; a slot is not handed out again before the copy queued from it has
/// completed.
class CudaStaging final : public DeviceContext {
 public:
  /// The factory a `Scratch` is asked with (`Scratch::context`).
  static std::unique_ptr<DeviceContext> make(SessionCore& session, Device device);
  ~CudaStaging() override;

  /// Held from `next` to `upload`; taken before the session's lock (`next` allocates).
  std::mutex& mutex() noexcept { return mutex_; }

  /// A buffer of at least `bytes` (pinned where the driver can pin), the caller's to fill and
  /// then `upload`.
  struct Slot {
    std::byte* data;
    std::size_t index;
  };
  /// The next slot, grown to `bytes` if need be, once the copy that last read it has completed.
  /// @throws OutOfMemory (the session's breakdown) when it must grow and cannot; Error.
  Slot next(std::size_t bytes);
  /// Grows every slot to `bytes` now (under `mutex()`), so that gathers of up to that size
  /// allocate nothing later. @throws as `next`.
  void reserve(std::size_t bytes);
  /// Queues the copy of the first `bytes` of `slot` to `dst` on `stream`; the slot is busy
  /// until the copy completes. @throws Error.
  void upload(const Slot& slot, void* dst, std::size_t bytes, const Stream& stream);

 private:
  CudaStaging(SessionCore& session, Device device) : session_(session), device_(device) {}

  struct Buffer {
    std::shared_ptr<Storage> storage;
    std::byte* pages = nullptr;  // the whole pages inside the storage
    std::size_t page_bytes = 0;
    bool registered = false;       // pinned; false where the driver cannot pin (copies still work)
    cudaEvent_t copied = nullptr;  // recorded after the last copy out of the buffer
  };
  void free_buffer(Buffer& buffer) noexcept;
  // Waits for the buffer's last copy, then grows it to `bytes` unless it holds them already.
  void ensure(Buffer& buffer, std::size_t bytes);

  SessionCore& session_;
  Device device_;
  std::mutex mutex_;
  std::array<Buffer, 2> buffers_;
  std::size_t next_ = 0;  // the buffer `next` hands out next
};

}  // namespace tabula::detail
