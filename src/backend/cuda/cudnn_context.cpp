// TABULA_WITH_CUDNN: a definition of the library target (CMakeLists.txt), 1 where cuDNN was found.
#if TABULA_WITH_CUDNN

#include "backend/cuda/cudnn_context.hpp"

#include "backend/cuda/process_exit.hpp"
#include "tabula/core/errors.hpp"

namespace tabula::detail {

void check_cudnn(cudnnStatus_t status, const char* what) {
  if (status == CUDNN_STATUS_SUCCESS) return;
  TABULA_THROW(Error, what << " failed: " << cudnnGetErrorString(status) << " (status "
                           << static_cast<int>(status) << ")");
}

std::unique_ptr<DeviceContext> CudnnContext::make(SessionCore&, Device device) {
  check_cuda(cudaSetDevice(device.index()), "cudaSetDevice");
  cudnnHandle_t handle = nullptr;
  check_cudnn(cudnnCreate(&handle), "cudnnCreate");
  watch_exit_after(ExitPoint::cudnn_handle_made);
  return std::unique_ptr<DeviceContext>(new CudnnContext(handle, device));
}

CudnnContext::~CudnnContext() {
  // The handle's device; a failure leaves only the destroy, and its error is cleared so that
  // no later, unrelated check reports it.
  if (cudaSetDevice(device_.index()) != cudaSuccess) (void)cudaGetLastError();
  // At exit cuDNN (its sub-libraries, loaded by its first calls) may be torn down already
  // (process_exit.hpp); the process's end frees the handle then.
  if (!process_exiting()) cudnnDestroy(handle_);
}

cudnnHandle_t CudnnContext::bind(const Stream& stream, const std::unique_lock<std::mutex>&) {
  if (!bound_ || bound_stream_ != stream.handle()) {
    check_cudnn(cudnnSetStream(handle_, stream.handle()), "cudnnSetStream");
    bound_stream_ = stream.handle();
    bound_ = true;
  }
  return handle_;
}

}  // namespace tabula::detail

#endif  // TABULA_WITH_CUDNN
