// The packed GEMM compiled for avx512 (flags in CMakeLists.txt): micro-tiles of 8 x 32.
#define TABULA_GEMM_VECTOR 16
#define TABULA_GEMM_ROWS 8
#define TABULA_GEMM_VECTORS 2
#include "backend/cpu/gemm/packed_gemm_blocked.hpp"

namespace tabula::detail {

extern const GemmKernel gemm_kernel_avx512;
const GemmKernel gemm_kernel_avx512 = {"avx512", scratch_floats, run};

}  // namespace tabula::detail
