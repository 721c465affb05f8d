#pragma once
/// @file
/// Hooks into training: the Callback base, EarlyStopping and LambdaCallback.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace tabula {

class Sequential;

/// Figures of a batch or an epoch: "loss", "accuracy", "val_loss", ...
using Logs = std::map<std::string, double>;

/// @brief The base of training callbacks; override what you need. `fit` calls the hooks on
/// its own thread, in order. Call `stop_training()` to end `fit` after the current epoch.
class Callback {
 public:
  virtual ~Callback() = default;

  /// `model` is being trained; `log_names` are the keys every epoch's logs will have.
  virtual void on_train_begin(Sequential& model, const std::vector<std::string>& log_names) {
    (void)model;
    (void)log_names;
  }
  virtual void on_epoch_begin(int epoch) { (void)epoch; }
  virtual void on_batch_end(std::int64_t batch, const Logs& logs) {
    (void)batch;
    (void)logs;
  }
  virtual void on_epoch_end(int epoch, const Logs& logs) {
    (void)epoch;
    (void)logs;
  }
  virtual void on_train_end(const Logs& logs) { (void)logs; }

  void stop_training() noexcept { stop_requested_ = true; }
  bool stop_requested() const noexcept { return stop_requested_; }
  void clear_stop_request() noexcept { stop_requested_ = false; }

 private:
  bool stop_requested_ = false;
};

namespace callbacks {

/// @brief Keyword arguments of `EarlyStopping` (Keras's names and defaults).
struct EarlyStoppingOptions {
  std::string monitor = "val_loss";
  double min_delta = 0.0;
  int patience = 0;
  std::string mode = "auto";  ///< "min", "max", or "auto" (max for accuracies)
  bool restore_best_weights = false;
};

/// @brief Stops training when `monitor` has not improved by `min_delta` for `patience`
/// epochs. @throws InvalidArgument (when training starts) if `monitor` is not a log name.
std::shared_ptr<Callback> EarlyStopping(EarlyStoppingOptions options = {});

/// @brief Keyword arguments of `LambdaCallback`.
struct LambdaCallbackOptions {
  std::function<void(int epoch, const Logs& logs)> on_epoch_end = {};
  std::function<void(std::int64_t batch, const Logs& logs)> on_batch_end = {};
};

/// @brief A callback from plain functions.
std::shared_ptr<Callback> LambdaCallback(LambdaCallbackOptions options);

}  // namespace callbacks
}  // namespace tabula
