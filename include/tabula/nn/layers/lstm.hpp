#pragma once
/// @file
/// LSTM: the long short-term memory layer of Keras (Hochreiter & Schmidhuber, with a forget
/// gate), over inputs of per-sample shape (timesteps, features).

#include <cstdint>
#include <string>

#include "tabula/nn/layer.hpp"

namespace tabula::layers {

/// @brief Keyword arguments of `LSTM` (Keras's names and defaults).
struct LSTMOptions {
  /// false: output the last hidden state, (units); true: every step's, (timesteps, units).
  bool return_sequences = false;
  std::string activation = "tanh";  ///< on the candidate and on the cell state: tanh or sigmoid
  std::string recurrent_activation = "sigmoid";  ///< on the i, f, o gates: sigmoid or tanh
  bool use_bias = true;
  /// Initialise the forget gate's bias to 1 (Jozefowicz et al., 2015), as Keras does.
  bool unit_forget_bias = true;
  std::string name = {};  ///< empty: "lstm", "lstm_1", ...
};

/// @brief A long short-term memory layer with `units` hidden units, starting from zero states.
///
/// Weights as Keras's: kernel (features, 4 * units), glorot_uniform; recurrent_kernel
/// (units, 4 * units), orthogonal; bias (4 * units), zeros with the forget gate's quarter set
/// to 1 when `unit_forget_bias`. Gate order along the 4 * units axis: input, forget, candidate,
/// output (also PyTorch's order). Training back-propagates through every timestep.
///
/// @param units the size of the hidden and cell states
/// @throws InvalidArgument for units <= 0 or an activation other than "tanh" or "sigmoid"
///         (naming the option); when built, for an input that is not (timesteps, features)
Layer LSTM(std::int64_t units, const LSTMOptions& options = {});

}  // namespace tabula::layers
