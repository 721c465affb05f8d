#include "backend/cuda/cublas_context.hpp"

#include "backend/cuda/cublas_library.hpp"
#include "backend/cuda/process_exit.hpp"
#include "session/detail/session_core.hpp"
#include "tabula/core/errors.hpp"

namespace tabula::detail {

void check_cublas(cublasStatus_t status, const char* what) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  const CublasLibrary& cublas = CublasLibrary::get();  // open: a status came from it
  TABULA_THROW(Error, what << " failed: " << cublas.status_name(status) << " ("
                           << cublas.status_string(status) << ")");
}

std::size_t CublasContext::workspace_bytes(Device device) {
  // cuBLAS's own recommendation: 32 MiB on Hopper and later, 4 MiB before.
  int major = 0;
  check_cuda(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device.index()),
             "cudaDeviceGetAttribute(compute capability)");
  return (major >= 9 ? 32u : 4u) << 20;
}

std::unique_ptr<DeviceContext> CublasContext::make(SessionCore& session, Device device) {
  check_cuda(cudaSetDevice(device.index()), "cudaSetDevice");
  // The workspace first: an out-of-memory leaves no handle behind.
  std::shared_ptr<Storage> workspace =
      session.allocate(workspace_bytes(device), device, Category::workspace, "cublas_workspace");
  cublasHandle_t handle = nullptr;
  check_cublas(CublasLibrary::get().create(&handle), "cublasCreate");
  return std::unique_ptr<DeviceContext>(new CublasContext(device, handle, std::move(workspace)));
}

CublasContext::~CublasContext() {
  // The handle's device; a failure leaves only the destroy, and its error is cleared so that
  // no later, unrelated check reports it.
  if (cudaSetDevice(device_.index()) != cudaSuccess) (void)cudaGetLastError();
  // At exit cuBLAS may be torn down already (process_exit.hpp); the process's end frees the
  // handle then.
  if (!process_exiting()) CublasLibrary::get().destroy(handle_);
}

cublasHandle_t CublasContext::bind(const Stream& stream, const std::unique_lock<std::mutex>&) {
  if (!bound_ || bound_stream_ != stream.handle()) {
    // cublasSetStream puts the handle back on cuBLAS's own workspace: set ours after it.
    const CublasLibrary& cublas = CublasLibrary::get();
    check_cublas(cublas.set_stream(handle_, stream.handle()), "cublasSetStream");
    check_cublas(cublas.set_workspace(handle_, workspace_->data(), workspace_->nbytes()),
                 "cublasSetWorkspace");
    bound_stream_ = stream.handle();
    bound_ = true;
  }
  return handle_;
}

}  // namespace tabula::detail
