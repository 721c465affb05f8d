#pragma once
/// @file
/// One model to train, as a model file or one trial of a sweep describes it.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "tabula/nn/layer.hpp"
#include "tabula/nn/optimizer.hpp"
#include "tabula/nn/sequential.hpp"

namespace tabula::experiment {

/// @brief One layer of a model file: `{type: Dense, units: 128, activation: relu}`.
struct LayerSpec {
  std::string type;         ///< "Dense", "Conv2D", ... as Keras names them
  std::string description;  ///< "Dense(units=128, activation=relu)"
  int line = 0;             ///< 1-based line in the file it came from
  /// Makes the layer in the current session (a fresh object each call).
  std::function<Layer()> make;
};

/// @brief The optimizer of a model file: `{type: adam, learning_rate: 0.001}`.
struct OptimizerSpec {
  std::string description;  ///< "Adam(learning_rate=0.001)"
  int line = 0;
  std::function<Optimizer()> make;
};

/// @brief Where a trial's data comes from. Only Fashion-MNIST for now.
struct DataSpec {
  std::string dataset = "fashion_mnist";
  std::string directory;               ///< empty: the dataset's default directory
  std::int64_t train_samples = 60000;  ///< the first N training images
  std::int64_t test_samples = 10000;   ///< the first N test images; 0: no test evaluation
};

/// @brief `fit`'s options in a model file, plus early stopping.
struct FitSpec {
  int epochs = 1;
  std::int64_t batch_size = 32;
  double validation_split = 0.0;
  bool shuffle = true;
  /// Early stopping on `monitor`; unset: none.
  std::optional<std::string> early_stopping_monitor;
  int early_stopping_patience = 0;
};

/// @brief A fully resolved model, its data and how to fit it: no parameter references left.
struct TrialSpec {
  std::string source;  ///< the file it came from, for messages
  std::vector<LayerSpec> layers;
  OptimizerSpec optimizer;
  std::string loss;
  std::vector<std::string> metrics;
  DataSpec data;
  FitSpec fit;
  std::size_t memory_limit = 0;  ///< the trial session's limit; 0 = none
  std::uint64_t seed = 0;        ///< the trial session's random seed

  /// The names a trained model reports: "loss", each metric, "val_…" with validation data,
  /// "test_…" with test samples.
  std::vector<std::string> result_names() const;

  /// A fresh model of the layers, compiled with the optimizer, loss and metrics, in the
  /// current session (built on the first data it sees).
  Sequential make_model() const;
};

/// @brief Reads a model file (`tabula train MODEL.yaml`): `model`, `data`, `fit`,
/// `memory_limit`, `seed`.
/// @throws FormatError naming the file, the line, the key and what was expected, for a file
///   that cannot be read, is not YAML, has unknown keys, wrong types or impossible values.
TrialSpec load_trial_spec(const std::string& path);

}  // namespace tabula::experiment
