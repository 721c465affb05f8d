// The packed GEMM compiled for baseline (flags in CMakeLists.txt): micro-tiles of 4 x 8.
#define TABULA_GEMM_VECTOR 4
#define TABULA_GEMM_ROWS 4
#define TABULA_GEMM_VECTORS 2
#include "backend/cpu/gemm/packed_gemm_blocked.hpp"

namespace tabula::detail {

extern const GemmKernel gemm_kernel_baseline;
const GemmKernel gemm_kernel_baseline = {"baseline", scratch_floats, run};

}  // namespace tabula::detail
