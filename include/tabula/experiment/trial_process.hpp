#pragma once
/// @file
/// Trials in child processes: a crash, a kill or an exhausted machine costs one trial, not the
/// sweep.

#include <string>
#include <vector>

#include "tabula/experiment/sweep_spec.hpp"
#include "tabula/experiment/trial_result.hpp"
#include "tabula/experiment/trial_runner.hpp"

namespace tabula::experiment {

/// @brief How the parent starts a child for one trial.
struct TrialProcessOptions {
  /// The program and leading arguments that run one trial: the child is started (fork, then
  /// exec: a fresh process image, not a copy of the parent's heap) as
  /// `command... SWEEP --index I --result-fd FD --verbose V`.
  std::vector<std::string> command;
  double timeout_seconds = 0;  ///< a child running longer is killed (SIGKILL); 0: no limit
  int verbose = 0;             ///< passed on for fit's progress
};

/// @brief Runs `trial` of the sweep at `sweep_path` in a child and returns its result, or a
/// failed result saying why there is none: the exit code, the signal ("killed by signal 9
/// (Killed)"), the timeout, or a result that could not be read. The child ignores SIGINT so
/// that Ctrl-C stops the sweep after the current trial, and is killed (SIGKILL) when the
/// sweep's process dies first, so that no trial outlives a killed sweep. Never throws for
/// what the child does;
/// @throws Error when no child can be started (fork or pipe refused).
TrialResult run_trial_in_child(const std::string& sweep_path, const PlannedTrial& trial,
                               const TrialProcessOptions& options);

/// @brief The child's side: loads the sweep, runs trial `index` with `runner_options`, writes
/// the result as one JSON document to `result_fd` and closes it.
/// @return the exit code for the child: 0 when a result was written (a failed trial
///   included), 2 when the sweep file or index cannot be used (the message goes to stderr).
int serve_trial(const std::string& sweep_path, int index, int result_fd,
                const TrialRunnerOptions& runner_options);

}  // namespace tabula::experiment
