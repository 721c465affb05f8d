#pragma once
// A session's cuDNN handle on one device. Built only where cuDNN is installed
// (TABULA_WITH_CUDNN).

#include <cudnn.h>

#include <memory>
#include <mutex>

#include "backend/cuda/cuda_stream.hpp"
#include "backend/detail/device_context.hpp"

static_assert(CUDNN_MAJOR >= 8, "tabula needs cuDNN 8 or later (CUDNN_FMA_MATH)");

namespace tabula::detail {

/// @throws Error naming `what` and cuDNN's message when `status` is not success.
void check_cudnn(cudnnStatus_t status, const char* what);

/// The cuDNN state of one session on one device: a handle, whose calls are serialised (a
/// handle is not for two threads at once). cuDNN computes in workspaces its callers hand it
/// (the layers reserve them, category workspace); the little cudnnCreate allocates on its own
/// goes back with the handle, which is destroyed when the session is cleared.
class CudnnContext final : public DeviceContext {
 public:
  /// The factory a `Scratch` is asked with (`Scratch::context`).
  static std::unique_ptr<DeviceContext> make(SessionCore& session, Device device);
  ~CudnnContext() override;

  /// The handle, bound to `stream`, for calls under `lock` (held until they are queued).
  cudnnHandle_t bind(const Stream& stream, const std::unique_lock<std::mutex>& lock);
  std::mutex& mutex() noexcept { return mutex_; }

 private:
  CudnnContext(cudnnHandle_t handle, Device device) : handle_(handle), device_(device) {}

  std::mutex mutex_;
  cudnnHandle_t handle_;
  Device device_;
  cudaStream_t bound_stream_ = nullptr;
  bool bound_ = false;
};

}  // namespace tabula::detail
