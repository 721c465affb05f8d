#pragma once
/// @file
/// Activation functions by name.

#include <string>
#include <string_view>

namespace tabula {

/// @brief The activation functions of Keras that tabula implements.
enum class Activation { linear, relu, sigmoid, tanh, softmax };

/// @brief The activation named `name` ("relu", "sigmoid", "tanh", "softmax", "linear", or ""
/// for linear). @throws InvalidArgument naming the unknown name and the known ones.
Activation activation_from_name(std::string_view name);

/// "relu", ...
std::string_view name_of(Activation activation) noexcept;

}  // namespace tabula
