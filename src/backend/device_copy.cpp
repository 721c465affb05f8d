#include "backend/detail/device_copy.hpp"

#include <cstring>

#include "tabula/config.hpp"
#include "tabula/core/errors.hpp"

#if TABULA_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace tabula::detail {

#if TABULA_WITH_CUDA
namespace {
void check_cuda(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    cudaGetLastError();
    TABULA_THROW(Error, what << " failed: " << cudaGetErrorString(status));
  }
}
}  // namespace
#endif

void copy_bytes(void* dst, Device to, const void* src, Device from, std::size_t bytes) {
  if (bytes == 0) return;
  if (to.is_cpu() && from.is_cpu()) {
    std::memcpy(dst, src, bytes);
    return;
  }
#if TABULA_WITH_CUDA
  const cudaMemcpyKind kind = to.is_cpu()     ? cudaMemcpyDeviceToHost
                              : from.is_cpu() ? cudaMemcpyHostToDevice
                                              : cudaMemcpyDeviceToDevice;
  check_cuda(cudaMemcpy(dst, src, bytes, kind), "cudaMemcpy");
#else
  TABULA_THROW(Error, "copy from " << from.str() << " to " << to.str()
                                   << ": this build of tabula has no CUDA support");
#endif
}

void zero_bytes(void* dst, Device device, std::size_t bytes) {
  if (bytes == 0) return;
  if (device.is_cpu()) {
    std::memset(dst, 0, bytes);
    return;
  }
#if TABULA_WITH_CUDA
  check_cuda(cudaSetDevice(device.index()), "cudaSetDevice");
  check_cuda(cudaMemset(dst, 0, bytes), "cudaMemset");
#else
  TABULA_THROW(Error, "zero memory on " << device.str()
                                        << ": this build of tabula has no CUDA support");
#endif
}

}  // namespace tabula::detail
