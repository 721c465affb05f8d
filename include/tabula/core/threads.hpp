#pragma once
/// @file
/// How many CPU threads tabula's kernels use.

namespace tabula {

/// @brief Sets the number of threads the CPU kernels use (GEMMs split across them, and large
/// elementwise loops such as optimizer updates), like `torch.set_num_threads`. Until it is
/// called: TABULA_NUM_THREADS, else OPENBLAS_NUM_THREADS, else OMP_NUM_THREADS, else the
/// machine's hardware threads. Results are bitwise reproducible for a given count.
/// @throws InvalidArgument for n < 1.
void set_num_threads(int n);

/// The number of threads the CPU kernels use.
int get_num_threads() noexcept;

}  // namespace tabula
