#include "tabula/nn/activation.hpp"

#include "tabula/core/errors.hpp"

namespace tabula {

Activation activation_from_name(std::string_view name) {
  if (name.empty() || name == "linear") return Activation::linear;
  if (name == "relu") return Activation::relu;
  if (name == "sigmoid") return Activation::sigmoid;
  if (name == "tanh") return Activation::tanh;
  if (name == "softmax") return Activation::softmax;
  TABULA_THROW(InvalidArgument, "activation: expected one of linear, relu, sigmoid, tanh, "
                                "softmax, got '"
                                    << name << "'");
}

std::string_view name_of(Activation activation) noexcept {
  switch (activation) {
    case Activation::linear: return "linear";
    case Activation::relu: return "relu";
    case Activation::sigmoid: return "sigmoid";
    case Activation::tanh: return "tanh";
    case Activation::softmax: return "softmax";
  }
  return "unknown";
}

}  // namespace tabula
