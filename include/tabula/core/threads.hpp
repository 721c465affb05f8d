#pragma once
/// @file
/// How many CPU threads tabula's kernels use.

namespace tabula {

/// @brief Sets the number of threads the CPU kernels (OpenBLAS's GEMM) use, like
/// `torch.set_num_threads`. @throws InvalidArgument for n < 1.
void set_num_threads(int n);

/// The number of threads the CPU kernels use.
int get_num_threads() noexcept;

}  // namespace tabula
