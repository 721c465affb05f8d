#pragma once
// tabula's own single-precision GEMM for the CPU: packed panels and a register-blocked
// micro-kernel, compiled once per instruction set (AVX-512, AVX2+FMA, the x86-64 baseline) and
// chosen at run time. It exists for memory: its packing buffers are the caller's (a session's
// scratch, category workspace), so a GEMM holds no byte past its call. A BLAS keeps packing
// buffers per calling thread for the life of the process, bytes no session can give back.

#include <cstdint>
#include <vector>

namespace tabula::detail {

/// One call: C = alpha * op(A) * op(B) + beta * C, row-major; op(A) is m x k, op(B) is k x n.
/// With beta == 0, C is not read (it may hold anything, NaN included).
struct GemmArgs {
  bool trans_a = false, trans_b = false;
  std::int64_t m = 0, n = 0, k = 0;
  float alpha = 1.0f;
  const float* a = nullptr;
  std::int64_t lda = 0;
  const float* b = nullptr;
  std::int64_t ldb = 0;
  float beta = 0.0f;
  float* c = nullptr;
  std::int64_t ldc = 0;
};

/// One compiled variant of the GEMM. Every C element is summed over k in the same order
/// whatever m and n are, and k is blocked by k alone: the result of an element does not depend
/// on the extents around it, so splitting C into parts (rows or columns) gives bitwise the
/// same numbers as one call.
struct GemmKernel {
  const char* isa;  ///< "avx512", "avx2", "baseline"
  /// Floats of scratch (64-byte aligned) one call with these extents needs.
  std::int64_t (*scratch_floats)(std::int64_t m, std::int64_t n, std::int64_t k) noexcept;
  /// Runs one call on the calling thread; `scratch` holds scratch_floats(m, n, k) floats.
  void (*run)(const GemmArgs& args, float* scratch) noexcept;
};

/// The best variant this CPU runs (chosen once).
const GemmKernel& best_gemm_kernel() noexcept;
/// Every variant this CPU runs, best first (for tests and benchmarks).
std::vector<const GemmKernel*> runnable_gemm_kernels();

}  // namespace tabula::detail
