#pragma once
// A session's cuBLAS handle on one device, and the workspace it computes in.

#include <cublas_v2.h>

#include <memory>
#include <mutex>

#include "backend/cuda/cuda_stream.hpp"
#include "backend/detail/device_context.hpp"
#include "session/detail/storage.hpp"

namespace tabula::detail {

/// @throws Error naming `what` and cuBLAS's status when `status` is not success.
void check_cublas(cublasStatus_t status, const char* what);

/// The cuBLAS state of one session on one device: a handle, and a workspace allocated from the
/// session (category workspace, listed as "cublas_workspace") so that cuBLAS never allocates
/// device memory of its own. Destroyed when the session is cleared. Calls on one handle are
/// serialised (a cuBLAS handle is not for two threads at once).
class CublasContext final : public DeviceContext {
 public:
  /// The factory a `Scratch` is asked with (`Scratch::context`).
  static std::unique_ptr<DeviceContext> make(SessionCore& session, Device device);
  ~CublasContext() override;

  /// The handle, bound to `stream` and to the session's workspace, for one call under `lock`
  /// (which the caller holds until the call is queued).
  cublasHandle_t bind(const Stream& stream, const std::unique_lock<std::mutex>& lock);
  std::mutex& mutex() noexcept { return mutex_; }

  /// Bytes of the workspace: what cuBLAS asks for on the device's architecture.
  static std::size_t workspace_bytes(Device device);

 private:
  CublasContext(Device device, cublasHandle_t handle, std::shared_ptr<Storage> workspace)
      : device_(device), handle_(handle), workspace_(std::move(workspace)) {}

  std::mutex mutex_;
  Device device_;
  cublasHandle_t handle_;
  std::shared_ptr<Storage> workspace_;
  cudaStream_t bound_stream_ = nullptr;
  bool bound_ = false;
};

}  // namespace tabula::detail
