#include "tabula/experiment/trial_runner.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "tabula/core/errors.hpp"
#include "tabula/data/fashion_mnist.hpp"
#include "tabula/data/to_categorical.hpp"
#include "tabula/memory/process_memory.hpp"
#include "tabula/nn/callbacks.hpp"
#include "tabula/nn/sequential.hpp"
#include "tabula/session/memory_timeline.hpp"
#include "tabula/session/session_scope.hpp"

namespace tabula::experiment {

namespace {

// The first `n` samples of `t` as a tensor of their own (in the current session).
Tensor first_samples(const Tensor& t, std::int64_t n) {
  if (n >= t.shape()[0]) return t;
  std::vector<std::int64_t> dims = t.shape().dims();
  dims[0] = n;
  const Shape shape(dims);
  const std::size_t bytes = t.nbytes() / static_cast<std::size_t>(t.shape()[0]) *
                            static_cast<std::size_t>(n);
  return tabula::detail::from_bytes(t.raw_data(), bytes, shape, t.dtype(),
                                    {.dtype = t.dtype(), .category = Category::data,
                                     .name = t.name() + "_subset"});
}

// Labels as the loss wants them: class indices for the sparse loss, one-hot otherwise.
Tensor targets_for(const TrialSpec& spec, const Tensor& labels) {
  if (spec.loss == "sparse_categorical_crossentropy") return labels;
  return utils::to_categorical(labels, 10);
}

std::size_t rss_now() { return process_memory().rss; }

}  // namespace

TrialRunner::TrialRunner(TrialRunnerOptions options)
    : options_(options), data_session_({.device = Device::cpu(), .memory_limit = 0, .name = "sweep_data"}) {}

TrialRunner::~TrialRunner() = default;

const TrialRunner::Data& TrialRunner::data_for(const DataSpec& spec) {
  const std::string directory =
      spec.directory.empty() ? datasets::fashion_mnist::default_directory() : spec.directory;
  const std::string key = directory + "|" + std::to_string(spec.train_samples) + "|" +
                          std::to_string(spec.test_samples);
  if (auto it = data_.find(key); it != data_.end()) return it->second;
  SessionScope use(data_session_);
  // Only the subsets trials use stay loaded: the full dataset goes once they are cut from it
  // (a later subset size reads the files again, about half a second).
  auto [train, test] = datasets::fashion_mnist::load_data(directory);
  Data d{first_samples(train.x, spec.train_samples), first_samples(train.y, spec.train_samples),
         first_samples(test.x, spec.test_samples), first_samples(test.y, spec.test_samples)};
  train = {};
  test = {};
  data_session_.release_cached_memory();
  return data_.emplace(key, std::move(d)).first->second;
}

void TrialRunner::warm_up(const TrialSpec& spec, const Data& data) {
  Session scratch({.device = Device::cpu(), .memory_limit = spec.memory_limit, .name = "warm_up"});
  try {
    SessionScope use(scratch);
    const std::int64_t n = std::min<std::int64_t>(2 * spec.fit.batch_size, data.train_x.shape()[0]);
    Sequential model = spec.make_model();
    model.fit(first_samples(data.train_x, n), targets_for(spec, first_samples(data.train_y, n)),
              {.epochs = 1, .batch_size = spec.fit.batch_size, .verbose = 0, .shuffle = false});
  } catch (const Error&) {
    // A warm-up that fails (the model is too large for its limit) warms up less; the trial
    // itself will report the failure.
  }
  scratch.clear();
}

void TrialRunner::prepare(const PlannedTrial& trial) {
  const Data& data = data_for(trial.spec.data);
  if (baseline_ == 0) {
    warm_up(trial.spec, data);
    baseline_ = rss_now();
  }
}

TrialResult TrialRunner::run(const PlannedTrial& trial) {
  const auto called = std::chrono::steady_clock::now();
  const TrialSpec& spec = trial.spec;
  prepare(trial);
  const Data& data = data_for(spec.data);

  TrialResult r;
  r.index = trial.index;
  r.parameters = trial.parameters;
  r.seed = spec.seed;
  r.pid = static_cast<long>(::getpid());
  r.memory.rss_baseline = baseline_;
  r.memory.tolerance = options_.memory_tolerance;
  r.memory.rss_before = rss_now();

  Session session({.device = Device::cpu(),
                   .memory_limit = spec.memory_limit,
                   .name = "trial_" + std::to_string(trial.index),
                   .seed = spec.seed});
  MemoryTimeline timeline(Device::cpu(), {.interval = std::chrono::milliseconds(20),
                                          .capacity = options_.timeline_capacity});
  timeline.start();
  const auto start = std::chrono::steady_clock::now();
  try {
    SessionScope use(session);
    Sequential model = spec.make_model();
    FitOptions fit{.epochs = spec.fit.epochs,
                   .batch_size = spec.fit.batch_size,
                   .verbose = options_.verbose,
                   .validation_split = spec.fit.validation_split,
                   .shuffle = spec.fit.shuffle};
    if (spec.fit.early_stopping_monitor)
      fit.callbacks.push_back(callbacks::EarlyStopping(
          {.monitor = *spec.fit.early_stopping_monitor, .patience = spec.fit.early_stopping_patience}));
    const History history = model.fit(data.train_x, targets_for(spec, data.train_y), fit);
    r.history = history.history;
    for (const auto& [name, values] : history.history)
      if (!values.empty()) r.metrics[name] = values.back();
    if (spec.data.test_samples > 0) {
      const auto test = model.evaluate(data.test_x, targets_for(spec, data.test_y),
                                       {.batch_size = std::max<std::int64_t>(spec.fit.batch_size, 256)});
      for (const auto& [name, value] : test) r.metrics["test_" + name] = value;
    }
    if (options_.on_trained) options_.on_trained(model);
    r.ok = true;
  } catch (const OutOfMemory& e) {
    r.error_type = "OutOfMemory";
    r.error = e.what();
  } catch (const InvalidArgument& e) {
    r.error_type = "InvalidArgument";
    r.error = e.what();
  } catch (const Error& e) {
    r.error_type = "Error";
    r.error = e.what();
  } catch (const std::bad_alloc&) {
    r.error_type = "bad_alloc";
    r.error = "the C++ heap refused an allocation (std::bad_alloc)";
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  const MemoryInfo used = session.memory_info();
  r.memory.library_peak = used.peak;
  r.memory.peak_by_category = used.peak_by_category;
  session.clear();
  const MemoryInfo after = session.memory_info();
  r.memory.current_after_clear = after.current;
  r.memory.reserved_after_clear = after.reserved;
  r.memory.rss_after = rss_now();
  timeline.stop();
  r.timeline = timeline.samples();
  // Samples count from the call, like the sweep's clock, so that preparing shows as a gap.
  const double offset = std::chrono::duration<double>(start - called).count();
  for (MemorySample& s : r.timeline) s.seconds += offset;
  r.memory.rss_peak = r.memory.rss_after;
  for (const MemorySample& s : r.timeline) r.memory.rss_peak = std::max(r.memory.rss_peak, s.rss);
  return r;
}

}  // namespace tabula::experiment
