#pragma once
// Functions both the host and a CUDA device run: `__host__ __device__` when nvcc compiles
// them, ordinary inline functions for the host compiler, so one body serves both backends and
// its arithmetic is tested on machines without a GPU.

#if defined(__CUDACC__)
#define TABULA_HD __host__ __device__
// A lambda a kernel runs: `__device__` under nvcc, a plain lambda for the host compiler (host
// tests). Not `__host__ __device__`: nvcc wraps such a lambda in a heap-allocated holder that
// every copy on the way to a launch allocates again.
#define TABULA_DEVICE_LAMBDA __device__
#else
#define TABULA_HD
#define TABULA_DEVICE_LAMBDA
#endif
