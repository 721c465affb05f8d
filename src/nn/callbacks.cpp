#include "tabula/nn/callbacks.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "tabula/core/errors.hpp"
#include "tabula/nn/sequential.hpp"

namespace tabula::callbacks {
namespace {

class EarlyStoppingCallback final : public Callback {
 public:
  explicit EarlyStoppingCallback(EarlyStoppingOptions options) : options_(std::move(options)) {}

  void on_train_begin(Sequential& model, const std::vector<std::string>& log_names) override {
    std::string available;
    for (const auto& n : log_names) available += (available.empty() ? "" : ", ") + n;
    TABULA_EXPECT(std::find(log_names.begin(), log_names.end(), options_.monitor) !=
                      log_names.end(),
                  InvalidArgument, "EarlyStopping monitor", "one of: " << available,
                  "'" << options_.monitor << "'");
    maximize_ = options_.mode == "max" ||
                (options_.mode == "auto" && options_.monitor.find("acc") != std::string::npos);
    best_ = maximize_ ? -std::numeric_limits<double>::infinity()
                      : std::numeric_limits<double>::infinity();
    wait_ = 0;
    model_ = &model;
    best_weights_.clear();
  }

  void on_epoch_end(int epoch, const Logs& logs) override {
    const double value = logs.at(options_.monitor);
    const bool improved = maximize_ ? value > best_ + options_.min_delta
                                    : value < best_ - options_.min_delta;
    if (improved) {
      best_ = value;
      wait_ = 0;
      if (options_.restore_best_weights) best_weights_ = model_->get_weights();
      return;
    }
    // Keras's rule: stop once `patience` epochs in a row brought no improvement.
    if (++wait_ >= options_.patience && epoch > 0) stop_training();
  }

  void on_train_end(const Logs&) override {
    if (options_.restore_best_weights && stop_requested() && !best_weights_.empty())
      model_->set_weights(best_weights_);
    best_weights_.clear();
  }

 private:
  EarlyStoppingOptions options_;
  bool maximize_ = false;
  double best_ = 0.0;
  int wait_ = 0;
  Sequential* model_ = nullptr;
  std::vector<Tensor> best_weights_;
};

class LambdaCallbackImpl final : public Callback {
 public:
  explicit LambdaCallbackImpl(LambdaCallbackOptions options) : options_(std::move(options)) {}
  void on_epoch_end(int epoch, const Logs& logs) override {
    if (options_.on_epoch_end) options_.on_epoch_end(epoch, logs);
  }
  void on_batch_end(std::int64_t batch, const Logs& logs) override {
    if (options_.on_batch_end) options_.on_batch_end(batch, logs);
  }

 private:
  LambdaCallbackOptions options_;
};

}  // namespace

std::shared_ptr<Callback> EarlyStopping(EarlyStoppingOptions options) {
  TABULA_EXPECT(options.patience >= 0, InvalidArgument, "EarlyStopping patience", ">= 0",
                options.patience);
  TABULA_EXPECT(options.mode == "auto" || options.mode == "min" || options.mode == "max",
                InvalidArgument, "EarlyStopping mode", "auto, min or max",
                "'" << options.mode << "'");
  return std::make_shared<EarlyStoppingCallback>(std::move(options));
}

std::shared_ptr<Callback> LambdaCallback(LambdaCallbackOptions options) {
  return std::make_shared<LambdaCallbackImpl>(std::move(options));
}

}  // namespace tabula::callbacks
