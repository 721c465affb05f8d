#pragma once
// A small classification problem for model tests: one Gaussian blob per class in 4-D.

#include <cstdint>
#include <utility>

#include "tabula/core/tensor.hpp"

namespace tabula::testing {

/// `n` samples (float32, shape (n, 4)) and int64 labels 0..2 (sample i has class i % 3), in the
/// current session: learnable in a few epochs by a small MLP. The same seed gives the same data.
std::pair<Tensor, Tensor> gaussian_blobs(std::int64_t n, std::uint64_t seed);

}  // namespace tabula::testing
