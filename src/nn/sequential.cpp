#include "tabula/nn/sequential.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <sstream>

#include "backend/detail/device_copy.hpp"
#include "nn/detail/batch_score.hpp"
#include "nn/detail/execution_plan.hpp"
#include "nn/detail/layer_queries.hpp"
#include "nn/detail/progress_bar.hpp"
#include "nn/detail/sequential_impl.hpp"
#include "nn/detail/tensor_views.hpp"
#include "session/detail/session_scratch.hpp"
#include "session/detail/session_use.hpp"
#include "tabula/core/errors.hpp"
#include "tabula/io/safetensors.hpp"
#include "tabula/memory/memory_info.hpp"
#include "tabula/session/session.hpp"
#include "tabula/session/session_scope.hpp"

namespace tabula {

namespace detail {

SequentialImpl::SequentialImpl(std::vector<Layer> layers, std::string name)
    : name_(name.empty() ? current_session().unique_name("sequential") : std::move(name)),
      layers_(std::move(layers)),
      core_(current_session().core().shared_from_this()) {}

std::shared_ptr<SequentialImpl> SequentialImpl::create(std::vector<Layer> layers,
                                                       std::string name) {
  auto model = std::make_shared<SequentialImpl>(std::move(layers), std::move(name));
  model->core_->track(*model);
  return model;
}

SequentialImpl::~SequentialImpl() { core_->untrack(*this); }

LiveObject SequentialImpl::describe() const {
  const std::size_t bytes = stale_.load(std::memory_order_acquire) ? 0 : weight_bytes_.load();
  return LiveObject{name_, "model", Category::weights, bytes, weak_from_this().use_count(),
                    core_->options().device};
}

void SequentialImpl::refresh_weight_bytes() {
  std::size_t bytes = 0;
  for (Parameter* p : parameters()) bytes += p->value.nbytes();
  weight_bytes_.store(bytes);
}

void SequentialImpl::ensure_live() const {
  if (stale_.load(std::memory_order_acquire)) {
    TABULA_THROW(SessionCleared, "model '" << name_ << "' belongs to session '"
                                           << core_->options().name
                                           << "', which was cleared; its weights are gone. "
                                              "Build the model again");
  }
}

std::vector<Parameter*> SequentialImpl::parameters() const {
  std::vector<Parameter*> out;
  for (const Layer& layer : layers_)
    for (Parameter* p : layer->parameters()) out.push_back(p);
  return out;
}

}  // namespace detail

namespace {

using detail::ExecutionPlan;
using detail::SequentialImpl;

Shape per_sample(const Tensor& t) {
  return Shape(std::vector<std::int64_t>(t.shape().dims().begin() + 1, t.shape().dims().end()));
}

// Copies samples order[begin, begin + rows) of `source` into the leading rows of `target`.
void gather_rows(const Tensor& source, const std::vector<std::int64_t>& order,
                 std::int64_t begin, std::int64_t rows, const Tensor& target) {
  const std::size_t row_bytes = source.nbytes() / static_cast<std::size_t>(source.shape()[0]);
  detail::SessionScratch scratch(target);  // a GPU target's session stages the copy
  detail::gather_rows(scratch, target.raw_data(), target.device(), source.raw_data(),
                      source.device(), row_bytes, order.data() + begin, rows);
}

// What gathering batches of the sources into the plan's buffers would allocate on its first
// call (a GPU plan's pinned staging for host data), made now.
void reserve_gathers(ExecutionPlan& plan, std::initializer_list<const Tensor*> sources) {
  const Tensor input = plan.input(plan.capacity());
  std::size_t row_bytes = 0;  // the widest row staged from the host
  for (const Tensor* t : sources)
    if (t && t->device().is_cpu() && t->shape()[0] > 0)
      row_bytes = std::max(row_bytes, t->nbytes() / static_cast<std::size_t>(t->shape()[0]));
  if (row_bytes == 0) return;
  detail::SessionScratch scratch(input);
  detail::reserve_gather_rows(scratch, input.device(), Device::cpu(),
                              row_bytes * static_cast<std::size_t>(plan.capacity()));
}

struct Totals {
  double loss = 0.0;
  double samples = 0.0;
  std::vector<double> correct, counted;
};

void add_scores(Totals& t, std::int64_t rows, const detail::BatchScore& score) {
  t.loss += score.loss * static_cast<double>(rows);
  t.samples += static_cast<double>(rows);
  for (std::size_t i = 0; i < score.correct.size(); ++i) {
    t.correct[i] += score.correct[i];
    t.counted[i] += score.counted[i];
  }
}

Logs logs_of(const SequentialImpl& m, const Totals& t, const std::string& prefix = "") {
  Logs logs;
  logs[prefix + "loss"] = t.samples > 0 ? t.loss / t.samples : 0.0;
  for (std::size_t i = 0; i < m.metrics_.size(); ++i)
    logs[prefix + m.metrics_[i].name()] = t.counted[i] > 0 ? t.correct[i] / t.counted[i] : 0.0;
  return logs;
}

void check_data(const SequentialImpl& m, const Tensor& x, const Tensor* y, const char* what) {
  TABULA_EXPECT(x.shape().rank() >= 1, InvalidArgument, what << " x", "a batch axis first",
                x.shape().str());
  TABULA_EXPECT(x.dtype() == DType::float32, InvalidArgument, what << " x dtype", "float32",
                name_of(x.dtype()));
  if (m.input_shape_) {
    TABULA_EXPECT(per_sample(x) == *m.input_shape_, InvalidArgument,
                  what << " x of model '" << m.name_ << "'",
                  "per-sample shape " << m.input_shape_->str(), per_sample(x).str()
                  << " (x is " << x.shape().str() << ")");
  }
  if (y) {
    TABULA_EXPECT(y->shape().rank() >= 1 && y->shape()[0] == x.shape()[0], InvalidArgument,
                  what << " y", x.shape()[0] << " samples like x", y->shape().str());
    m.loss_->check_targets(m.layers_.back()->output_shape(), *y, what);
  }
}

// Runs batches of `source` rows `order[begin, end)` forward; calls on_batch(rows, output).
template <typename F>
void for_each_batch(ExecutionPlan& plan, const Tensor& x, const std::vector<std::int64_t>& order,
                    std::int64_t begin, std::int64_t end, bool training, F&& on_batch) {
  for (std::int64_t at = begin; at < end; at += plan.capacity()) {
    const std::int64_t rows = std::min(plan.capacity(), end - at);
    gather_rows(x, order, at, rows, plan.input(rows));
    on_batch(at, rows, plan.forward(rows, training));
  }
}

Totals evaluate_range(SequentialImpl& m, ExecutionPlan& plan, const Tensor& x, const Tensor& y,
                      const std::vector<std::int64_t>& order, std::int64_t begin,
                      std::int64_t end) {
  Totals t;
  t.correct.assign(m.metrics_.size(), 0.0);
  t.counted.assign(m.metrics_.size(), 0.0);
  const Shape y_shape = per_sample(y);
  for_each_batch(plan, x, order, begin, end, false,
                 [&](std::int64_t at, std::int64_t rows, const Tensor& out) {
                   const Tensor yb = plan.targets(rows, y_shape, y.dtype());
                   gather_rows(y, order, at, rows, yb);
                   add_scores(t, rows,
                              detail::score_batch(&*m.loss_, m.metrics_, out, yb, nullptr, false,
                                                  plan.scores(m.metrics_.size())));
                 });
  return t;
}

std::vector<std::int64_t> identity_order(std::int64_t n) {
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  return order;
}

// One operation on a model: the model's session and those of the tensors it reads, held
// against clearing while it runs (SessionUse), and the model's session current meanwhile, so
// that whatever the operation allocates (weights, gradients, batch buffers, results) is the
// model's whichever session the caller's scope names. The model is checked again once the
// sessions are held, as a clear may have won. A scope object of the calling thread.
class ModelUse {
 public:
  ModelUse(const SequentialImpl& m, std::initializer_list<const Tensor*> tensors = {})
      : model_(m),
        caller_(current_session()),
        caller_core_(caller_.core().shared_from_this()),
        scope_(held_session(m, tensors, uses_)) {}
  ModelUse(const ModelUse&) = delete;
  ModelUse& operator=(const ModelUse&) = delete;

  void hold(const Tensor& tensor) { uses_.hold(tensor); }
  /// Runs `f` (a callback) with the session current that was when the operation began, so
  /// that what it creates is its caller's. @throws SessionCleared when a callback destroyed
  /// that session or the model's (a scope would then name a session that is gone).
  template <typename F>
  void as_caller(F&& f) const {
    expect_sessions_live();
    {
      const SessionScope use(caller_);
      f();
    }
    expect_sessions_live();
  }

 private:
  static Session& held_session(const SequentialImpl& m,
                               std::initializer_list<const Tensor*> tensors,
                               detail::SessionUses& uses) {
    uses.hold(m.core());
    for (const Tensor* t : tensors) uses.hold(*t);
    m.ensure_live();
    Session* owner = m.core().owner();
    TABULA_EXPECT(owner != nullptr, SessionCleared, "session of model '" << m.name_ << "'",
                  "a live session", "one destroyed");
    return *owner;
  }

  void expect_sessions_live() const {
    TABULA_EXPECT(model_.core().owner() != nullptr, SessionCleared,
                  "session of model '" << model_.name_ << "' after a callback", "a live session",
                  "one the callback destroyed");
    TABULA_EXPECT(caller_core_->owner() != nullptr, SessionCleared,
                  "session current when model '" << model_.name_ << "' was called",
                  "a live session", "one a callback destroyed");
  }

  const SequentialImpl& model_;
  Session& caller_;
  std::shared_ptr<detail::SessionCore> caller_core_;  // to see whether caller_ still exists
  detail::SessionUses uses_;  // before scope_: held_session fills it first
  SessionScope scope_;
};

void initialize_layers(SequentialImpl& m, RandomGenerator& rng) {
  for (Layer& layer : m.layers_) {
    layer->initialize(rng);
    layer->reset_state();
  }
}

}  // namespace

// ---- construction -----------------------------------------------------------------------

Sequential::Sequential(std::vector<Layer> layers, std::string name)
    : impl_(SequentialImpl::create(std::vector<Layer>{}, std::move(name))) {
  for (Layer& layer : layers) add(std::move(layer));
}

Sequential::Sequential(std::initializer_list<Layer> layers, std::string name)
    : Sequential(std::vector<Layer>(layers), std::move(name)) {}

SequentialImpl& Sequential::impl() const {
  impl_->ensure_live();
  return *impl_;
}

const std::string& Sequential::name() const { return impl_->name_; }
std::vector<Layer> Sequential::layers() const { return impl().layers_; }
bool Sequential::built() const { return impl().built_; }

void Sequential::add(Layer layer) {
  SequentialImpl& m = impl();
  const ModelUse in_use(m);
  TABULA_EXPECT(layer.defined(), InvalidArgument, "Sequential::add", "a layer", "an empty handle");
  if (auto declared = detail::declared_input_shape(layer)) {
    TABULA_EXPECT(m.layers_.empty(), InvalidArgument, "Input layer in model '" << m.name_ << "'",
                  "the first layer", "position " << m.layers_.size());
    m.input_shape_ = *declared;
  }
  // As in Keras, a model whose input is known builds each layer as it is added, so a shape
  // error names the layer being added and the weights exist from then on.
  if (m.input_shape_) {
    const Shape in = m.layers_.empty() ? *m.input_shape_ : m.layers_.back()->output_shape();
    layer->build(in);
    m.core().with_rng([&](RandomGenerator& rng) {
      layer->initialize(rng);
      layer->reset_state();
    });
    m.built_ = true;
  }
  m.layers_.push_back(std::move(layer));
  m.refresh_weight_bytes();
  // New weights need gradients and optimizer state: compile again.
  m.compiled_ = false;
}

void Sequential::build(const Shape& input_shape) {
  SequentialImpl& m = impl();
  const ModelUse in_use(m);
  if (m.built_) {
    TABULA_EXPECT(*m.input_shape_ == input_shape, InvalidArgument,
                  "input shape of built model '" << m.name_ << "'", m.input_shape_->str(),
                  input_shape.str());
    return;
  }
  TABULA_EXPECT(!m.layers_.empty(), InvalidArgument, "build of model '" << m.name_ << "'",
                "at least one layer", "none");
  Shape shape = input_shape;
  for (Layer& layer : m.layers_) shape = layer->build(shape);
  m.input_shape_ = input_shape;
  m.built_ = true;
  m.refresh_weight_bytes();
  m.core().with_rng([&](RandomGenerator& rng) { initialize_layers(m, rng); });
  if (m.loss_) compile(m.optimizer_, m.loss_->name(), m.metric_names_);
}

void Sequential::compile(Optimizer optimizer, const std::string& loss,
                         const std::vector<std::string>& metrics) {
  SequentialImpl& m = impl();
  const ModelUse in_use(m);
  TABULA_EXPECT(optimizer.defined(), InvalidArgument, "compile optimizer", "an optimizer",
                "an empty handle");
  // Names are checked before anything changes: a typo leaves a compiled model compiled.
  detail::Loss resolved_loss = detail::Loss::from_name(loss);
  std::vector<detail::Metric> resolved_metrics;
  if (m.built_) {
    for (const auto& name : metrics)
      resolved_metrics.push_back(
          detail::Metric::resolve(name, resolved_loss, m.layers_.back()->output_shape()));
  }
  // Uncompiled until every gradient and state tensor exists: a compile refused memory
  // half-way leaves a model that says so instead of training with half its state.
  m.compiled_ = false;
  m.loss_ = std::move(resolved_loss);
  m.optimizer_ = std::move(optimizer);
  m.metric_names_ = metrics;
  if (m.built_) {
    m.metrics_ = std::move(resolved_metrics);
    LayerImpl& last = m.layers_.back().impl();
    m.fused_output_ = m.loss_->fuses_with(last.output_activation());
    for (Layer& layer : m.layers_) layer->set_fused_output(false);
    last.set_fused_output(m.fused_output_);
    const std::vector<Parameter*> parameters = m.parameters();
    std::vector<Parameter*> without_gradient;
    for (Parameter* p : parameters)
      if (p->trainable && !p->gradient.defined()) without_gradient.push_back(p);
    try {
      for (Layer& layer : m.layers_) layer->allocate_gradients();
      m.optimizer_->build(parameters);
    } catch (...) {
      for (Parameter* p : without_gradient) p->gradient = Tensor();
      throw;
    }
  }
  m.compiled_ = true;  // gradients, state and metrics follow at build when not built yet
}

// ---- training and inference -------------------------------------------------------------

History Sequential::fit(const Tensor& x, const Tensor& y, const FitOptions& options) {
  SequentialImpl& m = impl();
  ModelUse in_use(m, {&x, &y});
  if (options.validation_data) {
    in_use.hold(options.validation_data->first);
    in_use.hold(options.validation_data->second);
  }
  TABULA_EXPECT(m.compiled_, InvalidArgument, "fit of model '" << m.name_ << "'",
                "a compiled model (call compile first, and again after adding layers)",
                "not compiled");
  TABULA_EXPECT(options.epochs >= 0, InvalidArgument, "fit epochs", ">= 0", options.epochs);
  TABULA_EXPECT(options.batch_size > 0, InvalidArgument, "fit batch_size", "> 0",
                options.batch_size);
  TABULA_EXPECT(options.validation_split >= 0.0 && options.validation_split < 1.0,
                InvalidArgument, "fit validation_split", "in [0, 1)", options.validation_split);
  if (!m.built_) build(per_sample(x));
  check_data(m, x, &y, "fit");
  const bool explicit_validation = options.validation_data.has_value();
  if (explicit_validation)
    check_data(m, options.validation_data->first, &options.validation_data->second,
               "fit validation_data");

  const std::int64_t n = x.shape()[0];
  const std::int64_t n_val =
      explicit_validation ? 0
                          : n - static_cast<std::int64_t>(std::floor(
                                    static_cast<double>(n) * (1.0 - options.validation_split)));
  const std::int64_t n_train = n - n_val;
  TABULA_EXPECT(n_train > 0, InvalidArgument, "fit training samples",
                "at least one after validation_split", n_train);
  const bool validate = explicit_validation || n_val > 0;

  std::vector<std::string> log_names{"loss"};
  for (const auto& metric : m.metrics_) log_names.push_back(metric.name());
  if (validate) {
    const std::size_t base = log_names.size();
    for (std::size_t i = 0; i < base; ++i) log_names.push_back("val_" + log_names[i]);
  }
  for (const auto& cb : options.callbacks) {
    cb->clear_stop_request();
    in_use.as_caller([&] { cb->on_train_begin(*this, log_names); });
  }

  ExecutionPlan plan(m.layers_, *m.input_shape_, std::min(options.batch_size, n_train), true);
  std::vector<std::int64_t> order = identity_order(n);
  const Shape y_shape = per_sample(y);
  // Every buffer of the loop exists before the first forward pass changes anything (such as
  // BatchNormalization's moving statistics): a refused allocation leaves the model as it was.
  plan.targets(plan.capacity(), y_shape, y.dtype());
  plan.scores(m.metrics_.size());
  reserve_gathers(plan, {&x, &y, explicit_validation ? &options.validation_data->first : nullptr,
                         explicit_validation ? &options.validation_data->second : nullptr});
  const std::int64_t steps = (n_train + plan.capacity() - 1) / plan.capacity();
  History history;
  Logs epoch_logs;
  for (int epoch = 0; epoch < options.epochs; ++epoch) {
    if (options.verbose) {
      std::printf("Epoch %d/%d\n", epoch + 1, options.epochs);
      std::fflush(stdout);
    }
    for (const auto& cb : options.callbacks) in_use.as_caller([&] { cb->on_epoch_begin(epoch); });
    if (options.shuffle) {
      // Fisher-Yates over the training part only; validation samples stay put.
      plan.input(1).storage()->owner().with_rng([&](RandomGenerator& rng) {
        for (std::int64_t i = n_train - 1; i > 0; --i)
          std::swap(order[i], order[rng.uniform_index(static_cast<std::uint64_t>(i + 1))]);
      });
    }
    detail::ProgressBar bar(steps, options.verbose);
    Totals totals;
    totals.correct.assign(m.metrics_.size(), 0.0);
    totals.counted.assign(m.metrics_.size(), 0.0);
    std::int64_t step = 0;
    for_each_batch(plan, x, order, 0, n_train, true,
                   [&](std::int64_t at, std::int64_t rows, const Tensor& out) {
                     const Tensor yb = plan.targets(rows, y_shape, y.dtype());
                     gather_rows(y, order, at, rows, yb);
                     const Tensor grad = plan.output_gradient(rows);
                     const detail::BatchScore score =
                         detail::score_batch(&*m.loss_, m.metrics_, out, yb, &grad, m.fused_output_,
                                             plan.scores(m.metrics_.size()));
                     TABULA_EXPECT(std::isfinite(score.loss), Error,
                                   "loss of model '" << m.name_ << "' at epoch " << epoch + 1
                                                     << " step " << step + 1,
                                   "a finite number (lower the learning rate?)", score.loss);
                     add_scores(totals, rows, score);
                     plan.backward(rows);
                     m.optimizer_->step();
                     ++step;
                     if (!options.callbacks.empty() || options.verbose == 1) {
                       const Logs batch_logs = logs_of(m, totals);
                       for (const auto& cb : options.callbacks)
                         in_use.as_caller([&] { cb->on_batch_end(step - 1, batch_logs); });
                       bar.update(step, batch_logs);
                     }
                   });
    epoch_logs = logs_of(m, totals);
    if (validate) {
      Totals val;
      if (explicit_validation) {
        const auto& [vx, vy] = *options.validation_data;
        val = evaluate_range(m, plan, vx, vy, identity_order(vx.shape()[0]), 0, vx.shape()[0]);
      } else {
        val = evaluate_range(m, plan, x, y, order, n_train, n);
      }
      for (const auto& [k, v] : logs_of(m, val, "val_")) epoch_logs[k] = v;
    }
    bar.finish(epoch_logs);
    history.epoch.push_back(epoch);
    for (const auto& [k, v] : epoch_logs) history.history[k].push_back(v);
    bool stop = false;
    for (const auto& cb : options.callbacks) {
      in_use.as_caller([&] { cb->on_epoch_end(epoch, epoch_logs); });
      stop = stop || cb->stop_requested();
    }
    if (stop) break;
  }
  // The last steps are queued still on a GPU: done before another thread may read the weights.
  detail::finish_queued_work(plan.input(1).device());
  for (const auto& cb : options.callbacks) in_use.as_caller([&] { cb->on_train_end(epoch_logs); });
  return history;
}

std::map<std::string, double> Sequential::evaluate(const Tensor& x, const Tensor& y,
                                                   const EvaluateOptions& options) {
  SequentialImpl& m = impl();
  const ModelUse in_use(m, {&x, &y});
  TABULA_EXPECT(m.compiled_, InvalidArgument, "evaluate of model '" << m.name_ << "'",
                "a compiled model (call compile first)", "not compiled");
  TABULA_EXPECT(options.batch_size > 0, InvalidArgument, "evaluate batch_size", "> 0",
                options.batch_size);
  if (!m.built_) build(per_sample(x));
  check_data(m, x, &y, "evaluate");
  const std::int64_t n = x.shape()[0];
  if (n == 0) return logs_of(m, Totals{0, 0, std::vector<double>(m.metrics_.size()),
                                       std::vector<double>(m.metrics_.size())});
  ExecutionPlan plan(m.layers_, *m.input_shape_, std::min(options.batch_size, n), false);
  const Logs logs = logs_of(m, evaluate_range(m, plan, x, y, identity_order(n), 0, n));
  if (options.verbose) std::printf("%s\n", detail::format_logs(logs).substr(3).c_str());
  return logs;
}

Tensor Sequential::predict(const Tensor& x, const PredictOptions& options) {
  SequentialImpl& m = impl();
  const ModelUse in_use(m, {&x});
  TABULA_EXPECT(options.batch_size > 0, InvalidArgument, "predict batch_size", "> 0",
                options.batch_size);
  if (!m.built_) build(per_sample(x));
  check_data(m, x, nullptr, "predict");
  const std::int64_t n = x.shape()[0];
  const Shape out_shape = m.layers_.back()->output_shape();
  Tensor result = empty(detail::batched(n, out_shape), {.name = m.name_ + "/predictions"});
  if (n == 0) return result;
  ExecutionPlan plan(m.layers_, *m.input_shape_, std::min(options.batch_size, n), false);
  const std::size_t row_bytes = static_cast<std::size_t>(out_shape.numel()) * sizeof(float);
  for_each_batch(plan, x, identity_order(n), 0, n, false,
                 [&](std::int64_t at, std::int64_t rows, const Tensor& out) {
                   detail::copy_bytes(static_cast<std::byte*>(result.raw_data()) + at * row_bytes,
                                      result.device(), out.raw_data(), out.device(),
                                      rows * row_bytes);
                 });
  detail::finish_queued_work(result.device());  // the copies too, for another thread's reads
  return result;
}

// ---- inspection -------------------------------------------------------------------------

std::int64_t Sequential::count_params() const {
  std::int64_t n = 0;
  for (const Layer& layer : impl().layers_) n += layer->count_params();
  return n;
}

std::string Sequential::summary_string() const {
  const SequentialImpl& m = impl();
  std::ostringstream s;
  const std::string rule(72, '_'), double_rule(72, '=');
  char row[256];
  s << "Model: \"" << m.name_ << "\"\n" << rule << "\n";
  std::snprintf(row, sizeof row, " %-34s %-24s %10s\n", "Layer (type)", "Output Shape", "Param #");
  s << row << double_rule << "\n";
  std::int64_t total = 0, trainable = 0;
  CategoryBytes bytes;
  for (const Layer& layer : m.layers_) {
    const LayerImpl& l = layer.impl();
    std::string shape = "?";
    if (l.built()) {
      shape = detail::batched(1, l.output_shape()).str();
      shape.replace(1, 1, "None");
    }
    const std::string label = l.name() + " (" + l.type_name() + ")";
    std::snprintf(row, sizeof row, " %-34s %-24s %10lld\n", label.c_str(), shape.c_str(),
                  static_cast<long long>(l.count_params()));
    s << row;
    total += l.count_params();
    trainable += l.count_params(true);
    for (Parameter* p : const_cast<LayerImpl&>(l).parameters()) {
      bytes[Category::weights] += p->value.nbytes();
      if (p->gradient.defined()) bytes[Category::gradients] += p->gradient.nbytes();
    }
  }
  s << double_rule << "\n";
  s << "Total params: " << total << " (" << format_bytes(static_cast<std::size_t>(total) * 4)
    << ")\nTrainable params: " << trainable << "\nNon-trainable params: " << total - trainable
    << "\n" << rule << "\n";
  if (m.compiled_ && m.built_) bytes[Category::optimizer] = m.optimizer_->state_bytes();
  s << "Memory held by this model:";
  for (Category c : {Category::weights, Category::gradients, Category::optimizer})
    s << " " << name_of(c) << " " << format_bytes(bytes[c]) << ";";
  s << " activations and workspace are allocated per fit/predict call for its batch size\n";
  return s.str();
}

void Sequential::summary() const {
  std::fputs(summary_string().c_str(), stdout);
  std::fflush(stdout);
}

// ---- weights ----------------------------------------------------------------------------

void Sequential::reset_weights() {
  SequentialImpl& m = impl();
  const ModelUse in_use(m);
  if (!m.built_) return;
  m.core().with_rng([&](RandomGenerator& rng) { initialize_layers(m, rng); });
  if (m.compiled_) m.optimizer_->reset();
}

void Sequential::reset_weights(std::uint64_t seed) {
  SequentialImpl& m = impl();
  const ModelUse in_use(m);
  if (!m.built_) return;
  RandomGenerator rng(seed);
  initialize_layers(m, rng);
  if (m.compiled_) m.optimizer_->reset();
}

std::vector<Tensor> Sequential::get_weights() const {
  const SequentialImpl& m = impl();
  const ModelUse in_use(m);
  std::vector<Tensor> out;
  for (Parameter* p : m.parameters()) out.push_back(p->value.clone());
  return out;
}

void Sequential::set_weights(const std::vector<Tensor>& weights) {
  SequentialImpl& m = impl();
  ModelUse in_use(m);
  for (const Tensor& w : weights) in_use.hold(w);
  const auto params = m.parameters();
  TABULA_EXPECT(weights.size() == params.size(), InvalidArgument,
                "set_weights of model '" << m.name_ << "'", params.size() << " tensors",
                weights.size());
  // Check everything before changing anything.
  for (std::size_t i = 0; i < params.size(); ++i) {
    TABULA_EXPECT(weights[i].shape() == params[i]->value.shape() &&
                      weights[i].dtype() == params[i]->value.dtype(),
                  InvalidArgument, "set_weights tensor " << i << " for '" << params[i]->value.name()
                                                         << "'",
                  params[i]->value.shape().str() << " " << name_of(params[i]->value.dtype()),
                  weights[i].shape().str() << " " << name_of(weights[i].dtype()));
  }
  for (std::size_t i = 0; i < params.size(); ++i) {
    detail::copy_bytes(params[i]->value.raw_data(), params[i]->value.device(),
                       weights[i].raw_data(), weights[i].device(), weights[i].nbytes());
  }
}

}  // namespace tabula

namespace tabula {

namespace {

std::string weight_name(const Layer& layer, const Parameter& p) {
  return layer.name() + "/" + p.name;
}

}  // namespace

void Sequential::save_weights(const std::string& path) const {
  const SequentialImpl& m = impl();
  const ModelUse in_use(m);
  TABULA_EXPECT(m.built_, InvalidArgument, "save_weights of model '" << m.name_ << "'",
                "a built model", "a model whose input shape is not known yet");
  std::vector<io::NamedTensor> tensors;
  for (const Layer& layer : m.layers_)
    for (Parameter* p : layer->parameters()) tensors.push_back({weight_name(layer, *p), p->value});
  io::save_safetensors(path, tensors, {{"format", "tabula"}, {"model", m.name_}});
}

void Sequential::load_weights(const std::string& path) {
  SequentialImpl& m = impl();
  const ModelUse in_use(m);
  TABULA_EXPECT(m.built_, InvalidArgument, "load_weights of model '" << m.name_ << "'",
                "a built model", "a model whose input shape is not known yet");
  const io::SafetensorsFile file = io::SafetensorsFile::open(path);
  // Match every weight to an entry and check shapes and dtypes before copying anything, so
  // that a file that does not fit leaves the model as it was.
  std::vector<std::pair<Parameter*, const io::SafetensorsEntry*>> plan;
  std::size_t expected = 0;
  for (const Layer& layer : m.layers_) {
    for (Parameter* p : layer->parameters()) {
      ++expected;
      const std::string name = weight_name(layer, *p);
      const io::SafetensorsEntry* entry = file.find(name);
      if (entry == nullptr) {
        TABULA_THROW(FormatError, "weights file '" << path << "' has no tensor '" << name
                                                   << "' for model '" << m.name_ << "'");
      }
      TABULA_EXPECT(entry->shape == p->value.shape() && entry->dtype == p->value.dtype(),
                    FormatError, "tensor '" << name << "' in '" << path << "'",
                    p->value.shape().str() << " " << name_of(p->value.dtype()),
                    entry->shape.str() << " " << name_of(entry->dtype));
      plan.emplace_back(p, entry);
    }
  }
  if (file.entries().size() != expected) {
    std::string extra;
    for (const auto& e : file.entries()) {
      const bool used = std::any_of(plan.begin(), plan.end(),
                                    [&](const auto& step) { return step.second == &e; });
      if (!used) extra += (extra.empty() ? "'" : ", '") + e.name + "'";
    }
    TABULA_THROW(FormatError, "weights file '" << path << "' has tensors that model '" << m.name_
                                               << "' does not: " << extra);
  }
  for (auto& [p, entry] : plan) file.copy_into(*entry, p->value);
}

}  // namespace tabula
