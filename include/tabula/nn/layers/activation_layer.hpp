#pragma once
/// @file
/// Activation as a layer of its own.

#include <string>
#include <string_view>

#include "tabula/nn/layer.hpp"

namespace tabula::layers {

/// @brief Applies an activation ("relu", "sigmoid", "tanh", "softmax" over the last axis,
/// "linear"). @throws InvalidArgument for an unknown name.
Layer Activation(std::string_view activation, std::string name = {});

}  // namespace tabula::layers
