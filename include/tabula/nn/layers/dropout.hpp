#pragma once
/// @file
/// Dropout: zeroes a random fraction of inputs while training, scaling the rest up.

#include <string>

#include "tabula/nn/layer.hpp"

namespace tabula::layers {

/// @brief Sets each input to 0 with probability `rate` while training and scales kept inputs
/// by 1 / (1 - rate); the identity at inference. Masks come from the session's generator.
/// @throws InvalidArgument unless 0 <= rate < 1.
Layer Dropout(double rate, std::string name = {});

}  // namespace tabula::layers
