#pragma once
// Keras's default initialisers, drawn from a session's random generator.

#include <cstdint>

#include "tabula/core/tensor.hpp"
#include "tabula/session/random_generator.hpp"

namespace tabula::detail {

/// U(-limit, limit) with limit = sqrt(6 / (fan_in + fan_out)) (Keras glorot_uniform).
void glorot_uniform(const Tensor& t, std::int64_t fan_in, std::int64_t fan_out,
                    RandomGenerator& rng);
/// Every element `value` (zeros, ones, the LSTM's unit forget bias).
void constant(const Tensor& t, float value);
/// A (rows, cols) matrix with orthonormal rows or columns (Keras orthogonal, gain 1).
void orthogonal(const Tensor& t, RandomGenerator& rng);

}  // namespace tabula::detail
