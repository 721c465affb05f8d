#pragma once
/// @file
/// Layers that only reinterpret their input's shape: Input, Flatten, Reshape.

#include <cstdint>
#include <string>
#include <vector>

#include "tabula/core/shape.hpp"
#include "tabula/nn/layer.hpp"

namespace tabula::layers {

/// @brief Declares the per-sample input shape of a model (first in a Sequential list).
Layer Input(const Shape& shape, std::string name = {});

/// @brief Flattens each sample to one axis: (B, d1, d2, ...) -> (B, d1 * d2 * ...).
Layer Flatten(std::string name = {});

/// @brief Reshapes each sample to `target` (one extent may be -1, inferred).
/// @throws InvalidArgument (at build) when the element counts differ.
Layer Reshape(std::vector<std::int64_t> target, std::string name = {});

}  // namespace tabula::layers
