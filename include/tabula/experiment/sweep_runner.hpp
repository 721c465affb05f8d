#pragma once
/// @file
/// Runs a sweep: every planned trial in a fresh session (or a fresh process), results written
/// as each trial ends.

#include <atomic>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "tabula/experiment/results_store.hpp"
#include "tabula/experiment/sweep_spec.hpp"
#include "tabula/experiment/trial_result.hpp"

namespace tabula::experiment {

/// @brief Where trials run.
enum class Isolation {
  none,     ///< in this process, one fresh session per trial
  process,  ///< one child process per trial (fork + exec of `trial_command`)
};

/// @brief Keyword arguments of `run_sweep`.
struct SweepOptions {
  std::string out_dir;  ///< the results directory (created)
  Isolation isolation = Isolation::none;
  bool resume = false;  ///< skip the trials already in `out_dir`'s results
  /// 0: silent; 1: progress (bars with ETA on a terminal, plain lines otherwise); 2: a line
  /// per epoch even on a terminal.
  int verbose = 1;
  std::FILE* out = stdout;
  /// With Isolation::process: the program and leading arguments that run one trial.
  std::vector<std::string> trial_command;
  double trial_timeout = 0;  ///< seconds, with Isolation::process; 0: none
  /// When set (by a SIGINT handler, say), the sweep stops after the trial that is running.
  const std::atomic<bool>* stop = nullptr;
  /// Overrides the sweep file's `memory_tolerance` when set.
  std::optional<std::size_t> memory_tolerance;
};

/// @brief What a sweep did.
struct SweepSummary {
  std::size_t planned = 0;
  std::size_t run = 0;      ///< trials run by this call
  std::size_t skipped = 0;  ///< already in the results (--resume)
  std::size_t failed = 0;   ///< of those run
  std::size_t leaked = 0;   ///< of those run: left memory behind
  bool stopped = false;     ///< `stop` was set before every trial had run
  std::optional<TrialResult> best;  ///< the best ok trial by the metric, over all results
  std::string out_dir;
};

/// @brief Runs the trials of `sweep` that `out_dir` does not hold yet, appending each result
/// as it ends, and keeps summary.csv and report.html up to date.
/// @throws Error before any trial runs for a results directory that cannot be used (or holds
///   results without `resume`); FormatError for results that belong to another sweep.
SweepSummary run_sweep(const SweepSpec& sweep, const SweepOptions& options);

/// @brief The best ok result by the sweep's metric, if any.
std::optional<TrialResult> best_result(const SweepSpec& sweep, const std::vector<TrialResult>& results);

}  // namespace tabula::experiment
