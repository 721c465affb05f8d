#pragma once
// Functions both the host and a CUDA device run: `__host__ __device__` when nvcc compiles
// them, ordinary inline functions for the host compiler, so one body serves both backends and
// its arithmetic is tested on machines without a GPU.

#if defined(__CUDACC__)
#define TABULA_HD __host__ __device__
#else
#define TABULA_HD
#endif
