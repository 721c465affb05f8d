#include "backend/cpu/gemm/packed_gemm.hpp"

namespace tabula::detail {

extern const GemmKernel gemm_kernel_baseline;
#if defined(TABULA_GEMM_X86)
extern const GemmKernel gemm_kernel_avx512;
extern const GemmKernel gemm_kernel_avx2;
#endif

std::vector<const GemmKernel*> runnable_gemm_kernels() {
  std::vector<const GemmKernel*> kernels;
#if defined(TABULA_GEMM_X86)
  if (__builtin_cpu_supports("avx512f")) kernels.push_back(&gemm_kernel_avx512);
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    kernels.push_back(&gemm_kernel_avx2);
#endif
  kernels.push_back(&gemm_kernel_baseline);
  return kernels;
}

const GemmKernel& best_gemm_kernel() noexcept {
  static const GemmKernel* const best = [] {
    try {
      return runnable_gemm_kernels().front();
    } catch (...) {  // the vector could not be allocated: the baseline always runs
      return &gemm_kernel_baseline;
    }
  }();
  return *best;
}

}  // namespace tabula::detail
