// The packed GEMM compiled for avx512 (flags in CMakeLists.txt): micro-tiles of 8 x 32.
#define TABULA_GEMM_VECTOR 16
#define TABULA_GEMM_ROWS 8
#define TABULA_GEMM_VECTORS 2
#define TABULA_GEMM_FMA _mm512_fmadd_ps
#define TABULA_GEMM_SPLAT _mm512_set1_ps
#include <immintrin.h>

#include "backend/cpu/gemm/packed_gemm_blocked.hpp"

namespace tabula::detail {

extern const GemmKernel gemm_kernel_avx512;
const GemmKernel gemm_kernel_avx512 = {"avx512", scratch_floats, run};

}  // namespace tabula::detail
