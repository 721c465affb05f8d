#include "tabula/memory/cuda_resource.hpp"

#include "tabula/config.hpp"
#include "tabula/core/errors.hpp"
#include "tabula/memory/memory_info.hpp"

#if TABULA_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace tabula {

#if TABULA_WITH_CUDA

CudaResource::CudaResource(Device device) : MemoryResource(device) {
  TABULA_EXPECT(device.is_cuda(), InvalidArgument, "CudaResource device", "a CUDA device",
                device.str());
  const int count = cuda_device_count();
  TABULA_EXPECT(device.index() < count, Error, "CudaResource device",
                "one of the " << count << " CUDA devices present", device.str());
}

void* CudaResource::do_allocate(std::size_t bytes, std::size_t alignment) {
  TABULA_EXPECT(alignment <= kDriverAlignment, InvalidArgument,
                "alignment on " << device().str(), "<= " << kDriverAlignment, alignment);
  const cudaError_t selected = cudaSetDevice(device().index());
  if (selected != cudaSuccess) {
    (void)cudaGetLastError();
    TABULA_THROW(Error, "cudaSetDevice(" << device().index() << ") before allocating " << bytes
                                         << " bytes failed: " << cudaGetErrorString(selected));
  }
  void* p = nullptr;
  const cudaError_t status = cudaMalloc(&p, bytes);
  if (status != cudaSuccess) {
    (void)cudaGetLastError();  // an OOM is not sticky; clear it so the retry starts clean
    // Only a refusal for lack of memory is an OutOfMemory (the pool then gives back its cache
    // and retries); any other error, such as one an earlier kernel left, is reported as itself.
    if (status != cudaErrorMemoryAllocation)
      TABULA_THROW(Error, "cudaMalloc of " << bytes << " bytes on " << device().str()
                                           << " failed: " << cudaGetErrorName(status) << " ("
                                           << cudaGetErrorString(status) << ")");
    throw OutOfMemory("out of memory on " + device().str() + ": the driver refused " +
                          format_bytes(bytes) + " (" + std::to_string(bytes) +
                          " bytes): " + cudaGetErrorString(status),
                      bytes, 0);
  }
  return p;
}

void CudaResource::do_deallocate(void* p, std::size_t, std::size_t) noexcept {
  // Errors here cannot be thrown; cleared, so that no later, unrelated check reports them.
  if (cudaSetDevice(device().index()) != cudaSuccess) (void)cudaGetLastError();
  if (cudaFree(p) != cudaSuccess) (void)cudaGetLastError();
}

#else

CudaResource::CudaResource(Device device) : MemoryResource(device) {
  TABULA_THROW(Error, "CudaResource for " << device.str()
                                          << ": this build of tabula has no CUDA support "
                                             "(configure with TABULA_WITH_CUDA=ON)");
}

void* CudaResource::do_allocate(std::size_t, std::size_t) { return nullptr; }
void CudaResource::do_deallocate(void*, std::size_t, std::size_t) noexcept {}

#endif

}  // namespace tabula
