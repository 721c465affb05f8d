#pragma once
// The benchmark workloads' models and the lstm workload's data, shared by train_bench and
// memory_bench (--test predict), and built alike by the peers (bench/peers/*_train.py).

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "tabula/tabula.hpp"

namespace tabula::bench {

/// The workload's model, in the current session: mlp_small, mlp_large, cnn or lstm.
/// @throws InvalidArgument for another name
inline Sequential workload_model(const std::string& name) {
  using namespace layers;
  if (name == "lstm") return Sequential({Input({50, 1}), LSTM(64), Dense(1)});
  if (name == "mlp_small")
    return Sequential({Input({28, 28}), Flatten(), Dense(128, "relu"), Dense(10, "softmax")});
  if (name == "mlp_large")
    return Sequential({Input({28, 28}), Flatten(), Dense(1024, "relu"), Dense(1024, "relu"),
                       Dense(10, "softmax")});
  if (name == "cnn")
    return Sequential({Input({28, 28, 1}), Conv2D(32, {3, 3}, "relu"), MaxPooling2D({2, 2}),
                       Conv2D(64, {3, 3}, "relu"), MaxPooling2D({2, 2}), Flatten(),
                       Dense(128, "relu"), Dense(10, "softmax")});
  throw InvalidArgument("unknown workload '" + name + "' (mlp_small, mlp_large, cnn, lstm)");
}

/// The lstm workload's data, (n, steps, 1) windows of a sine and the value after each: window
/// i starts at phase 0.37 * i (the formula of bench/peers/protocol.py's sine_windows).
inline std::pair<Tensor, Tensor> sine_windows(std::int64_t n, std::int64_t steps) {
  std::vector<float> x(static_cast<std::size_t>(n * steps)), y(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t t = 0; t <= steps; ++t) {
      const float v = static_cast<float>(
          std::sin(0.3 * static_cast<double>(t) + 0.37 * static_cast<double>(i)));
      if (t < steps)
        x[i * steps + t] = v;
      else
        y[i] = v;
    }
  }
  return {from_vector(x, Shape{n, steps, 1}), from_vector(y, Shape{n, 1})};
}

}  // namespace tabula::bench
