#pragma once
// A session's buffer for the partial sums of reductions on one device.

#include <memory>

#include "backend/detail/device_context.hpp"
#include "backend/detail/kernels.hpp"
#include "session/detail/storage.hpp"

namespace tabula::detail {

/// kFloats floats of the session's (category workspace, listed as "cuda_reduction"), made with
/// its other kernel contexts when a layer reserves its buffers (Kernels::prepare), so that a
/// step's reductions allocate nothing. One thread per session at a time, like the session's
/// cuBLAS workspace.
class CudaReduction final : public DeviceContext {
 public:
  static constexpr index_t kFloats = index_t{1} << 18;  // 1 MiB

  /// The factory a `Scratch` is asked with (`Scratch::context`).
  static std::unique_ptr<DeviceContext> make(SessionCore& session, Device device);

  float* data() const noexcept { return static_cast<float*>(buffer_->data()); }

 private:
  explicit CudaReduction(std::shared_ptr<Storage> buffer) : buffer_(std::move(buffer)) {}
  std::shared_ptr<Storage> buffer_;
};

}  // namespace tabula::detail
