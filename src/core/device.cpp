#include "tabula/core/device.hpp"

#include "tabula/config.hpp"
#include "tabula/core/errors.hpp"

#if TABULA_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace tabula {

Device Device::cuda(int index) {
  TABULA_EXPECT(index >= 0, InvalidArgument, "Device::cuda index", ">= 0", index);
  return Device(Kind::cuda, index);
}

std::string Device::str() const {
  return is_cpu() ? std::string("cpu") : "cuda:" + std::to_string(index_);
}

int cuda_device_count() noexcept {
#if TABULA_WITH_CUDA
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error so later calls start clean
    return 0;
  }
  return count;
#else
  return 0;
#endif
}

}  // namespace tabula
