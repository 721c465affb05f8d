#pragma once
// What a model asks of particular layer kinds without knowing their classes.

#include <optional>

#include "tabula/core/shape.hpp"
#include "tabula/nn/layer.hpp"

namespace tabula::detail {

/// The shape an `Input` layer declares; nullopt for every other layer.
std::optional<Shape> declared_input_shape(const Layer& layer);

}  // namespace tabula::detail
