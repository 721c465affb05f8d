#include "backend/cuda/cuda_stream.hpp"

#include "tabula/core/errors.hpp"

namespace tabula::detail {

void check_cuda(cudaError_t status, const char* what) {
  if (status == cudaSuccess) return;
  cudaGetLastError();
  TABULA_THROW(Error, what << " failed: " << cudaGetErrorName(status) << " ("
                           << cudaGetErrorString(status) << ")");
}

Stream Stream::for_device(Device device) {
  TABULA_EXPECT(device.is_cuda(), InvalidArgument, "stream device", "a CUDA device", device.str());
  check_cuda(cudaSetDevice(device.index()), "cudaSetDevice");
  return Stream(cudaStreamPerThread, device);
}

void Stream::synchronize() const {
  check_cuda(cudaStreamSynchronize(handle_), "cudaStreamSynchronize");
}

}  // namespace tabula::detail
