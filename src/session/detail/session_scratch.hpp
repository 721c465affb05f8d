#pragma once
// A session as the source of kernels' scratch memory.

#include <atomic>

#include "backend/detail/scratch.hpp"
#include "session/detail/session_use.hpp"
#include "tabula/core/device.hpp"
#include "tabula/core/tensor.hpp"

namespace tabula::detail {

class SessionCore;

/// Scratch from one session on one device, counted as workspace while a kernel holds it: first
/// a buffer reserved beforehand (a layer's packing buffer, reserved with its batch buffers so
/// that a training step allocates nothing once it has begun to change the model), when one is
/// given, free and large enough; else a block of the session's pool for the length of the call
/// (the pool keeps the segment for the next call, as for any buffer, until the session is
/// cleared). Holds a use of the session, so a clear cannot free memory under a kernel.
/// Thread-safe; a scope object.
class SessionScratch final : public Scratch {
 public:
  SessionScratch(SessionCore& core, Device device);
  /// The scratch of the session and device of `owner`'s buffer (which must be live), lending
  /// `reserved` first when it is defined.
  explicit SessionScratch(const Tensor& owner, const Tensor& reserved = Tensor());

  void* acquire(std::size_t bytes) override;
  void release(void* data, std::size_t bytes) noexcept override;
  DeviceContext& context(DeviceContextFactory make) override;

 private:
  SessionUse use_;
  SessionCore& core_;
  Device device_;
  void* reserved_ = nullptr;
  std::size_t reserved_bytes_ = 0;
  std::atomic<bool> lent_{false};
};

}  // namespace tabula::detail
