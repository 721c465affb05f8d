#pragma once
/// @file
/// Sequential models: the Keras workflow (build, compile, fit, evaluate, predict) in C++.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tabula/core/tensor.hpp"
#include "tabula/nn/callbacks.hpp"
#include "tabula/nn/layer.hpp"
#include "tabula/nn/optimizer.hpp"

namespace tabula {

/// @brief Keyword arguments of `Sequential::fit`; leading members keep this order.
struct FitOptions {
  int epochs = 1;
  std::int64_t batch_size = 32;
  int verbose = 1;  ///< 0 silent, 1 progress bar, 2 one line per epoch
  double validation_split = 0.0;  ///< the last fraction of x/y, taken before shuffling
  bool shuffle = true;
  /// Validation data given explicitly (takes precedence over validation_split).
  std::optional<std::pair<Tensor, Tensor>> validation_data = std::nullopt;
  std::vector<std::shared_ptr<Callback>> callbacks = {};
};

/// @brief Keyword arguments of `evaluate`.
struct EvaluateOptions {
  std::int64_t batch_size = 32;
  int verbose = 0;
};

/// @brief Keyword arguments of `predict`.
struct PredictOptions {
  std::int64_t batch_size = 32;
};

/// @brief What `fit` returns: each log's value per epoch ("loss", "accuracy", "val_loss", ...).
struct History {
  std::map<std::string, std::vector<double>> history;
  std::vector<int> epoch;
};

namespace detail {
class SequentialImpl;
}

/// @brief A stack of layers trained as one model. A handle: copies share the model.
///
/// Its weights, gradients and optimizer state belong to the session that was current when
/// it was built and compiled; clearing that session makes the model stale (any use throws
/// `SessionCleared` naming it). `fit` allocates every per-batch buffer once for its batch
/// size and gives them back when it returns. Not thread-safe: one thread per model.
class Sequential {
 public:
  /// @param layers the layers in order (an `Input` first fixes the input shape; without one,
  /// the model is built on the first data it sees).
  explicit Sequential(std::vector<Layer> layers = {}, std::string name = {});
  Sequential(std::initializer_list<Layer> layers, std::string name = {});

  /// Appends a layer. On a built model the layer is built at once on the last output shape,
  /// and the model must be compiled again before training (as in Keras).
  /// @throws InvalidArgument for an empty handle, or an `Input` after other layers.
  void add(Layer layer);
  /// Builds for per-sample `input_shape` (no batch axis). Called by fit/predict when needed.
  void build(const Shape& input_shape);
  bool built() const;

  /// @brief Sets the optimizer, the loss ("categorical_crossentropy",
  /// "sparse_categorical_crossentropy", "binary_crossentropy", "mse", "mae") and metrics
  /// ("accuracy"). Allocates gradients and optimizer state when the model is built.
  void compile(Optimizer optimizer, const std::string& loss,
               const std::vector<std::string>& metrics = {});

  /// @brief Trains on x (samples first) and targets y.
  /// @throws InvalidArgument for shapes, dtypes or options that do not fit, before training.
  History fit(const Tensor& x, const Tensor& y, const FitOptions& options = {});
  /// Loss and metrics over x/y: r["loss"], r["accuracy"].
  std::map<std::string, double> evaluate(const Tensor& x, const Tensor& y,
                                         const EvaluateOptions& options = {});
  /// Outputs for x, a new tensor in the current session (category data).
  Tensor predict(const Tensor& x, const PredictOptions& options = {});

  /// Prints the layer table (output shapes, parameter counts) and bytes per category.
  void summary() const;
  std::string summary_string() const;

  /// "sequential", "sequential_1", ... (reset by clearing the session).
  const std::string& name() const;
  std::vector<Layer> layers() const;
  std::int64_t count_params() const;

  /// Re-initialises every weight in place (same memory) from the session's generator and
  /// zeroes the optimizer state; not the same as clearing.
  void reset_weights();
  /// As `reset_weights()`, drawing from a generator seeded with `seed`: reproducible.
  void reset_weights(std::uint64_t seed);

  /// Copies of every weight, layer by layer.
  std::vector<Tensor> get_weights() const;
  /// @throws InvalidArgument (model unchanged) when the count or a shape differs.
  void set_weights(const std::vector<Tensor>& weights);

  /// Writes the weights as safetensors, named "<layer>/<weight>".
  void save_weights(const std::string& path) const;
  /// Reads weights saved by `save_weights`. @throws FormatError (model unchanged) for a
  /// damaged file or one whose names or shapes do not match the model.
  void load_weights(const std::string& path);

  /// For tabula's own modules.
  detail::SequentialImpl& impl() const;

 private:
  std::shared_ptr<detail::SequentialImpl> impl_;
};

}  // namespace tabula
