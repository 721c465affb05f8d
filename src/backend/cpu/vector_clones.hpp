#pragma once
// Function multi-versioning for the CPU kernels' memory-bound loops.

// A loop marked TABULA_VECTOR_CLONES is compiled three times, for AVX-512, AVX2 and the x86-64
// baseline (SSE2), and the dynamic loader binds the best one the CPU has: one portable binary
// that still uses the machine's full vector width (an Adam update on 4-wide SSE is bound by the
// latency of its divide and square root). Without FMA contraction (ISO C++ mode), every clone
// computes bitwise the same values.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define TABULA_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define TABULA_VECTOR_CLONES
#endif
