// The packed GEMM compiled for avx2 (flags in CMakeLists.txt): micro-tiles of 6 x 16.
#define TABULA_GEMM_VECTOR 8
#define TABULA_GEMM_ROWS 6
#define TABULA_GEMM_VECTORS 2
#define TABULA_GEMM_FMA _mm256_fmadd_ps
#define TABULA_GEMM_SPLAT _mm256_set1_ps
#include <immintrin.h>

#include "backend/cpu/gemm/packed_gemm_blocked.hpp"

namespace tabula::detail {

extern const GemmKernel gemm_kernel_avx2;
const GemmKernel gemm_kernel_avx2 = {"avx2", scratch_floats, run};

}  // namespace tabula::detail
