#pragma once
/// @file
/// Runs trials in this process, each in a fresh session, and measures what it gave back.

#include <cstddef>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "tabula/core/tensor.hpp"
#include "tabula/experiment/sweep_spec.hpp"
#include "tabula/experiment/trial_result.hpp"
#include "tabula/nn/sequential.hpp"
#include "tabula/session/session.hpp"

namespace tabula::experiment {

/// @brief Keyword arguments of `TrialRunner`.
struct TrialRunnerOptions {
  std::size_t memory_tolerance = std::size_t{4} << 20;  ///< RSS growth a trial may leave
  int verbose = 0;               ///< passed to fit: 0 silent, 1 progress bar, 2 a line an epoch
  std::FILE* out = stdout;       ///< where fit's progress goes
  std::size_t timeline_capacity = 1024;  ///< samples kept per trial
  /// Called with the trained model before its session is cleared (save it, print its
  /// summary); what it throws fails the trial like a training error.
  std::function<void(Sequential& model)> on_trained = {};
};

/// @brief Runs trials one after another in this process.
///
/// Owns a data session that keeps the dataset loaded across trials (one copy per subset
/// size). Before the first trial it runs a warm-up (two batches of that trial's model in a
/// scratch session, then cleared), so that one-time costs of the process (BLAS threads and
/// buffers, allocator arenas) are in the RSS baseline instead of in the first trial's growth.
/// Each trial gets a fresh session, which is cleared when the trial ends whatever happened;
/// the trial's result records what the library and the OS say afterwards.
/// Not thread-safe.
class TrialRunner {
 public:
  explicit TrialRunner(TrialRunnerOptions options = {});
  ~TrialRunner();
  TrialRunner(const TrialRunner&) = delete;
  TrialRunner& operator=(const TrialRunner&) = delete;

  /// Runs one trial. Errors of the trial (OutOfMemory, bad shapes) make a failed result;
  /// only a dataset that cannot be loaded throws (every trial would fail the same way).
  /// Samples in the result's timeline count from this call.
  TrialResult run(const PlannedTrial& trial);
  /// Loads the trial's data and, before the first trial, warms up and takes the baseline;
  /// `run` does it when it was not done. Throws what loading the dataset throws.
  void prepare(const PlannedTrial& trial);

  /// The RSS baseline (0 until the first trial's warm-up).
  std::size_t rss_baseline() const noexcept { return baseline_; }

 private:
  struct Data {
    Tensor train_x, train_y, test_x, test_y;
  };
  const Data& data_for(const DataSpec& spec);
  void warm_up(const TrialSpec& spec, const Data& data);

  TrialRunnerOptions options_;
  Session data_session_;
  std::map<std::string, Data> data_;  // by directory and subset sizes
  std::size_t baseline_ = 0;
};

}  // namespace tabula::experiment
