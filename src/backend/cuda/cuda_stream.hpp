#pragma once
// The stream tabula's CUDA work runs on, and how CUDA errors become tabula errors.

#include <cuda_runtime_api.h>

#include "tabula/core/device.hpp"

namespace tabula::detail {

/// @throws Error naming `what` and CUDA's message when `status` is not cudaSuccess (and clears
/// CUDA's last error, so the next call starts clean).
void check_cuda(cudaError_t status, const char* what);

/// The stream a CUDA call runs on. One stream per host thread and device for now
/// (`cudaStreamPerThread`): every kernel, copy and library call of a thread is ordered on it,
/// and the threads of different sessions do not wait for each other. Kept a type of its own
/// so that a later change can give a session streams of its own without touching the kernels.
/// A session's pool hands a freed block to the next request at once: with one thread per
/// session on a GPU that request is ordered after the work that used the block; two threads
/// driving one session at once could reuse it early (a later change: record streams per block).
class Stream {
 public:
  /// The calling thread's stream on `device`, which becomes the thread's current device.
  /// @throws Error when the device cannot be selected.
  static Stream for_device(Device device);

  cudaStream_t handle() const noexcept { return handle_; }
  Device device() const noexcept { return device_; }
  /// Waits for everything queued so far. @throws Error when queued work failed.
  void synchronize() const;

 private:
  Stream(cudaStream_t handle, Device device) : handle_(handle), device_(device) {}
  cudaStream_t handle_;
  Device device_;
};

}  // namespace tabula::detail
