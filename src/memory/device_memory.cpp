#include "tabula/memory/device_memory.hpp"

#include "tabula/config.hpp"
#include "tabula/core/errors.hpp"

#if TABULA_WITH_CUDA
#include "backend/cuda/cuda_stream.hpp"
#endif

namespace tabula {

DeviceMemory device_memory(Device device) {
  TABULA_EXPECT(device.is_cuda(), InvalidArgument, "device_memory device",
                "a CUDA device (process_memory() gives the host's figures)", device.str());
#if TABULA_WITH_CUDA
  TABULA_EXPECT(device.index() < cuda_device_count(), Error, "device_memory device",
                "one of the " << cuda_device_count() << " CUDA devices present", device.str());
  detail::check_cuda(cudaSetDevice(device.index()), "cudaSetDevice");
  DeviceMemory m;
  detail::check_cuda(cudaMemGetInfo(&m.free, &m.total), "cudaMemGetInfo");
  return m;
#else
  TABULA_THROW(Error,
               "device_memory(" << device.str() << "): this build of tabula has no CUDA support");
#endif
}

}  // namespace tabula
