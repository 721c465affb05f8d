#pragma once
// Function multi-versioning for the CPU kernels' memory-bound loops.

// A loop marked TABULA_VECTOR_CLONES is compiled three times, for AVX-512, AVX2 and the x86-64
// baseline (SSE2), and the dynamic loader binds the best one the CPU has: one portable binary
// that still uses the machine's full vector width (an Adam update on 4-wide SSE is bound by the
// latency of its divide and square root). The kernels are compiled without FMA contraction
// (-ffp-contract=off, CMakeLists.txt), so every clone computes bitwise the same values.
//
// Not under sanitizers: the loader runs a clone's resolver before the sanitizer's runtime is up,
// and an instrumented resolver then crashes at startup (seen with TSan). Those builds check the
// baseline clone, which is the same source.
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define TABULA_SANITIZED_BUILD 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TABULA_SANITIZED_BUILD 1
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(TABULA_SANITIZED_BUILD)
#define TABULA_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define TABULA_VECTOR_CLONES
#endif
