#include "tabula/nn/optimizer.hpp"

#include <algorithm>
#include <cmath>

#include "backend/detail/device_copy.hpp"
#include "backend/detail/kernels.hpp"
#include "nn/detail/tensor_views.hpp"
#include "tabula/core/errors.hpp"

namespace tabula {

using detail::f32;

OptimizerImpl::OptimizerImpl(double learning_rate) : learning_rate_(learning_rate) {
  TABULA_EXPECT(learning_rate > 0 && std::isfinite(learning_rate), InvalidArgument,
                "learning_rate", "a positive finite number", learning_rate);
}

void OptimizerImpl::build(const std::vector<Parameter*>& parameters) {
  // Built aside and swapped in: a refused allocation leaves the optimizer as it was.
  std::vector<Parameter*> built_parameters;
  std::vector<std::vector<Tensor>> built_state;
  for (Parameter* p : parameters) {
    if (!p->trainable) continue;
    std::vector<Tensor> state;
    for (int i = 0; i < state_count(); ++i) {
      state.push_back(zeros(p->value.shape(),
                            {.category = Category::optimizer,
                             .name = p->value.name() + "/" + name() + "_" + std::to_string(i)}));
    }
    built_parameters.push_back(p);
    built_state.push_back(std::move(state));
  }
  std::vector<const Parameter*> sorted(built_parameters.begin(), built_parameters.end());
  std::sort(sorted.begin(), sorted.end());
  parameters_distinct_ = std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end();
  parameters_ = std::move(built_parameters);
  state_ = std::move(built_state);
  iterations_ = 0;
}

void OptimizerImpl::step() {
  ++iterations_;
  update_all(parameters_, state_);
}

void OptimizerImpl::update_all(const std::vector<Parameter*>& parameters,
                               const std::vector<std::vector<Tensor>>& state) {
  for (std::size_t i = 0; i < parameters.size(); ++i) update(*parameters[i], state[i]);
}

void OptimizerImpl::reset() {
  for (auto& state : state_)
    for (auto& t : state) detail::zero_bytes(t.raw_data(), t.device(), t.nbytes());
  iterations_ = 0;
}

std::size_t OptimizerImpl::state_bytes() const {
  std::size_t bytes = 0;
  for (const auto& state : state_)
    for (const auto& t : state) bytes += t.nbytes();
  return bytes;
}

OptimizerImpl& Optimizer::impl() const {
  if (!impl_) TABULA_THROW(InvalidArgument, "use of an empty Optimizer handle");
  return *impl_;
}

namespace optimizers {
namespace {

// The parameters and their state as one batched update's tensors, and the kernels of the
// device they all live on; no kernels (nullptr) when there are none, when they are not all on
// one device, or when a parameter is listed twice (a shared layer's): one launch would update
// it from two threads at once, where one call each updates it twice in order.
detail::Kernels* batch_of(const std::vector<Parameter*>& parameters,
                          const std::vector<std::vector<Tensor>>& state, bool distinct,
                          std::vector<detail::UpdateTensor>& tensors) {
  tensors.clear();
  if (parameters.empty() || !distinct) return nullptr;
  const Device device = parameters.front()->value.device();
  for (std::size_t i = 0; i < parameters.size(); ++i) {
    Parameter& p = *parameters[i];
    if (p.value.device() != device) return nullptr;
    tensors.push_back({.w = f32(p.value),
                       .g = f32(p.gradient),
                       .state0 = state[i].size() > 0 ? f32(state[i][0]) : nullptr,
                       .state1 = state[i].size() > 1 ? f32(state[i][1]) : nullptr,
                       .n = p.value.numel()});
  }
  return &detail::kernels_for(device);
}

class SgdImpl final : public OptimizerImpl {
 public:
  SgdImpl(double lr, double momentum, bool nesterov)
      : OptimizerImpl(lr), momentum_(static_cast<float>(momentum)), nesterov_(nesterov) {}
  std::string name() const override { return "sgd"; }

 protected:
  int state_count() const override { return momentum_ != 0.0f ? 1 : 0; }
  void update(Parameter& p, const std::vector<Tensor>& state) override {
    detail::kernels_for(p.value.device())
        .sgd_update(f32(p.value), f32(p.gradient), state.empty() ? nullptr : f32(state[0]),
                    p.value.numel(), static_cast<float>(learning_rate_), momentum_, nesterov_);
  }
  void update_all(const std::vector<Parameter*>& parameters,
                  const std::vector<std::vector<Tensor>>& state) override {
    detail::Kernels* k = batch_of(parameters, state, parameters_distinct_, tensors_);
    if (!k) return OptimizerImpl::update_all(parameters, state);
    k->sgd_update_many(tensors_, static_cast<float>(learning_rate_), momentum_, nesterov_);
  }

 private:
  float momentum_;
  bool nesterov_;
  std::vector<detail::UpdateTensor> tensors_;  // kept between steps: no allocation per step
};

class AdamImpl final : public OptimizerImpl {
 public:
  AdamImpl(double lr, double beta_1, double beta_2, double epsilon, double weight_decay)
      : OptimizerImpl(lr),
        beta_1_(beta_1),
        beta_2_(beta_2),
        epsilon_(epsilon),
        weight_decay_(weight_decay) {}
  std::string name() const override { return weight_decay_ > 0 ? "adamw" : "adam"; }

 protected:
  int state_count() const override { return 2; }
  void update(Parameter& p, const std::vector<Tensor>& state) override {
    detail::kernels_for(p.value.device())
        .adam_update(f32(p.value), f32(p.gradient), f32(state[0]), f32(state[1]), p.value.numel(),
                     step(), static_cast<float>(beta_1_), static_cast<float>(beta_2_),
                     static_cast<float>(epsilon_), decay());
  }
  void update_all(const std::vector<Parameter*>& parameters,
                  const std::vector<std::vector<Tensor>>& state) override {
    detail::Kernels* k = batch_of(parameters, state, parameters_distinct_, tensors_);
    if (!k) return OptimizerImpl::update_all(parameters, state);
    k->adam_update_many(tensors_, step(), static_cast<float>(beta_1_), static_cast<float>(beta_2_),
                        static_cast<float>(epsilon_), decay());
  }

 private:
  // The bias-corrected learning rate of this iteration, and the decoupled decay's factor.
  float step() const {
    const double t = static_cast<double>(iterations_);
    return static_cast<float>(learning_rate_ * std::sqrt(1.0 - std::pow(beta_2_, t)) /
                              (1.0 - std::pow(beta_1_, t)));
  }
  float decay() const { return static_cast<float>(weight_decay_ * learning_rate_); }

  double beta_1_, beta_2_, epsilon_, weight_decay_;
  std::vector<detail::UpdateTensor> tensors_;  // kept between steps: no allocation per step
};

class RmspropImpl final : public OptimizerImpl {
 public:
  RmspropImpl(double lr, double rho, double momentum, double epsilon)
      : OptimizerImpl(lr), rho_(rho), momentum_(momentum), epsilon_(epsilon) {}
  std::string name() const override { return "rmsprop"; }

 protected:
  int state_count() const override { return momentum_ != 0.0 ? 2 : 1; }
  void update(Parameter& p, const std::vector<Tensor>& state) override {
    detail::kernels_for(p.value.device())
        .rmsprop_update(f32(p.value), f32(p.gradient), f32(state[0]),
                        state.size() > 1 ? f32(state[1]) : nullptr, p.value.numel(),
                        static_cast<float>(learning_rate_), static_cast<float>(rho_),
                        static_cast<float>(momentum_), static_cast<float>(epsilon_));
  }
  void update_all(const std::vector<Parameter*>& parameters,
                  const std::vector<std::vector<Tensor>>& state) override {
    detail::Kernels* k = batch_of(parameters, state, parameters_distinct_, tensors_);
    if (!k) return OptimizerImpl::update_all(parameters, state);
    k->rmsprop_update_many(tensors_, static_cast<float>(learning_rate_), static_cast<float>(rho_),
                           static_cast<float>(momentum_), static_cast<float>(epsilon_));
  }

 private:
  double rho_, momentum_, epsilon_;
  std::vector<detail::UpdateTensor> tensors_;  // kept between steps: no allocation per step
};

void check_unit_interval(double value, const char* what) {
  TABULA_EXPECT(value >= 0.0 && value < 1.0, InvalidArgument, what, "in [0, 1)", value);
}

void check_positive(double value, const char* what) {
  TABULA_EXPECT(value > 0.0, InvalidArgument, what, "> 0", value);
}

}  // namespace

Optimizer SGD(double learning_rate, double momentum, bool nesterov) {
  check_unit_interval(momentum, "SGD momentum");
  TABULA_EXPECT(!nesterov || momentum > 0, InvalidArgument, "SGD nesterov",
                "a momentum > 0 with nesterov=true", "momentum " << momentum);
  return Optimizer(std::make_shared<SgdImpl>(learning_rate, momentum, nesterov));
}

Optimizer Adam(double learning_rate, double beta_1, double beta_2, double epsilon) {
  check_unit_interval(beta_1, "Adam beta_1");
  check_unit_interval(beta_2, "Adam beta_2");
  check_positive(epsilon, "Adam epsilon");
  return Optimizer(std::make_shared<AdamImpl>(learning_rate, beta_1, beta_2, epsilon, 0.0));
}

Optimizer AdamW(double learning_rate, double weight_decay, double beta_1, double beta_2,
                double epsilon) {
  check_unit_interval(beta_1, "AdamW beta_1");
  check_unit_interval(beta_2, "AdamW beta_2");
  check_positive(epsilon, "AdamW epsilon");
  TABULA_EXPECT(weight_decay >= 0, InvalidArgument, "AdamW weight_decay", ">= 0", weight_decay);
  return Optimizer(
      std::make_shared<AdamImpl>(learning_rate, beta_1, beta_2, epsilon, weight_decay));
}

Optimizer RMSprop(double learning_rate, double rho, double momentum, double epsilon) {
  check_unit_interval(rho, "RMSprop rho");
  check_unit_interval(momentum, "RMSprop momentum");
  check_positive(epsilon, "RMSprop epsilon");
  return Optimizer(std::make_shared<RmspropImpl>(learning_rate, rho, momentum, epsilon));
}

}  // namespace optimizers
}  // namespace tabula
