#pragma once
// Small sweeps for the experiment tests: Fashion-MNIST subsets of a few hundred images, one
// epoch, so that a trial takes a fraction of a second (seconds under ASan).

#include <string>

namespace tabula::testing {

/// A grid sweep over `hidden` (and `limit`, the trial session's memory limit, when given as
/// a YAML list such as "[0, 64KiB]"), with `extra` lines appended at the top level.
inline std::string small_sweep(const std::string& hidden_values = "[8, 16]",
                               const std::string& limit_values = "",
                               const std::string& extra = "") {
  std::string s =
      "name: small\n"
      "method: grid\n"
      "metric: {name: test_accuracy, goal: maximize}\n"
      "parameters:\n"
      "  hidden: {values: " + hidden_values + "}\n";
  if (!limit_values.empty()) s += "  limit: {values: " + limit_values + "}\nmemory_limit: ${limit}\n";
  s +=
      "model:\n"
      "  layers:\n"
      "    - Flatten\n"
      "    - {type: Dense, units: $hidden, activation: relu}\n"
      "    - {type: Dense, units: 10, activation: softmax}\n"
      "  optimizer: {type: adam, learning_rate: 0.003}\n"
      "  loss: sparse_categorical_crossentropy\n"
      "  metrics: [accuracy]\n"
      "data: {train_samples: 512, test_samples: 128}\n"
      "fit: {epochs: 1, batch_size: 64}\n" + extra;
  return s;
}

}  // namespace tabula::testing
