#pragma once
/// @file
/// Dense: y = activation(x · kernel + bias), on the last axis.

#include <cstdint>
#include <string>
#include <string_view>

#include "tabula/nn/layer.hpp"

namespace tabula::layers {

/// @brief Keyword arguments of `Dense`.
struct DenseOptions {
  bool use_bias = true;
  std::string name = {};  ///< empty: "dense", "dense_1", ...
};

/// @brief A densely connected layer with `units` outputs (kernel glorot_uniform, bias zeros).
/// @throws InvalidArgument for units <= 0 or an unknown activation.
Layer Dense(std::int64_t units, std::string_view activation = "linear",
            const DenseOptions& options = {});

}  // namespace tabula::layers
