#pragma once
/// @file
/// Optimizers: SGD (momentum, Nesterov), Adam, AdamW, RMSprop, with Keras's update rules.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tabula/core/tensor.hpp"
#include "tabula/nn/layer.hpp"

namespace tabula {

/// @brief The base of every optimizer: keeps one set of state tensors per parameter (category
/// optimizer, allocated once at compile) and updates the parameters from their gradients.
/// Not thread-safe.
class OptimizerImpl {
 public:
  explicit OptimizerImpl(double learning_rate);
  virtual ~OptimizerImpl() = default;

  virtual std::string name() const = 0;
  /// Allocates the state for `parameters` in the current session (zeroed).
  void build(const std::vector<Parameter*>& parameters);
  /// One update of every trainable parameter from its gradient.
  void step();
  /// Zeroes the state and the iteration count (reset_weights does this).
  void reset();

  double learning_rate() const noexcept { return learning_rate_; }
  void set_learning_rate(double lr) noexcept { learning_rate_ = lr; }
  std::int64_t iterations() const noexcept { return iterations_; }
  /// Bytes of state held for the parameters.
  std::size_t state_bytes() const;

 protected:
  /// How many state tensors each parameter needs (Adam: 2).
  virtual int state_count() const = 0;
  /// Updates one parameter with its state tensors.
  virtual void update(Parameter& p, const std::vector<Tensor>& state) = 0;
  /// Updates every parameter, `state[i]` being `parameters[i]`'s: by default one `update`
  /// each. The built-in rules update them all with one kernel call (on a GPU one launch per 32
  /// tensors), unless a parameter is listed twice: its updates then run one after the other.
  virtual void update_all(const std::vector<Parameter*>& parameters,
                          const std::vector<std::vector<Tensor>>& state);

  double learning_rate_;
  std::int64_t iterations_ = 0;
  /// No parameter is listed twice (build() checks): updates of all of them may run at once.
  bool parameters_distinct_ = true;

 private:
  std::vector<Parameter*> parameters_;
  std::vector<std::vector<Tensor>> state_;
};

/// @brief A handle to an optimizer; copies share it.
class Optimizer {
 public:
  Optimizer() = default;
  explicit Optimizer(std::shared_ptr<OptimizerImpl> impl) noexcept : impl_(std::move(impl)) {}
  bool defined() const noexcept { return impl_ != nullptr; }
  OptimizerImpl& impl() const;
  OptimizerImpl* operator->() const { return &impl(); }

 private:
  std::shared_ptr<OptimizerImpl> impl_;
};

namespace optimizers {

/// Gradient descent, with optional (Nesterov) momentum. @throws InvalidArgument on bad values.
Optimizer SGD(double learning_rate = 0.01, double momentum = 0.0, bool nesterov = false);
/// Adam (Kingma & Ba) in Keras's form (epsilon added outside the square root).
Optimizer Adam(double learning_rate = 0.001, double beta_1 = 0.9, double beta_2 = 0.999,
               double epsilon = 1e-7);
/// Adam with decoupled weight decay (Loshchilov & Hutter), as Keras's AdamW.
Optimizer AdamW(double learning_rate = 0.001, double weight_decay = 0.004, double beta_1 = 0.9,
                double beta_2 = 0.999, double epsilon = 1e-7);
/// RMSprop (Hinton), as Keras's RMSprop without centering.
Optimizer RMSprop(double learning_rate = 0.001, double rho = 0.9, double momentum = 0.0,
                  double epsilon = 1e-7);

}  // namespace optimizers
}  // namespace tabula
