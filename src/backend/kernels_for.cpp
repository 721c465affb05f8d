// Which kernels run on which device: the CPU's, or those of a CUDA device when this build has
// them. The one place that chooses a backend.

#include "backend/cpu/cpu_kernels.hpp"
#include "backend/cpu/cpu_normalization_kernels.hpp"
#include "backend/cpu/cpu_recurrent_kernels.hpp"
#include "backend/detail/convolution_kernels.hpp"
#include "tabula/config.hpp"
#include "tabula/core/errors.hpp"

#if TABULA_WITH_CUDA
#include "backend/cuda/cuda_convolution_kernels.hpp"
#include "backend/cuda/cuda_kernels.hpp"
#include "backend/cuda/cuda_normalization_kernels.hpp"
#include "backend/cuda/cuda_recurrent_kernels.hpp"
#endif

namespace tabula::detail {

#if !TABULA_WITH_CUDA
namespace {

[[noreturn]] void no_cuda(Device device) {
  TABULA_THROW(Error, "no kernels for " << device.str()
                                        << ": this build of tabula has no CUDA support "
                                           "(configure with TABULA_WITH_CUDA=ON)");
}

}  // namespace
#endif

Kernels& kernels_for(Device device) {
  static CpuKernels cpu;
  if (device.is_cpu()) return cpu;
#if TABULA_WITH_CUDA
  return cuda_kernels_for(device);
#else
  no_cuda(device);
#endif
}

NormalizationKernels& normalization_kernels_for(Device device) {
  static CpuNormalizationKernels cpu;
  if (device.is_cpu()) return cpu;
#if TABULA_WITH_CUDA
  return cuda_normalization_kernels_for(device);
#else
  no_cuda(device);
#endif
}

RecurrentKernels& recurrent_kernels_for(Device device) {
  static CpuRecurrentKernels cpu;
  if (device.is_cpu()) return cpu;
#if TABULA_WITH_CUDA
  return cuda_recurrent_kernels_for(device);
#else
  no_cuda(device);
#endif
}

ConvolutionKernels& convolution_kernels_for(Device device) {
  static ConvolutionKernels cpu;  // unfolding and the CPU's GEMM
  if (device.is_cpu()) return cpu;
#if TABULA_WITH_CUDA
  return cuda_convolution_kernels_for(device);
#else
  no_cuda(device);
#endif
}

}  // namespace tabula::detail
