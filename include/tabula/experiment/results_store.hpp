#pragma once
/// @file
/// A sweep's results directory: what survives the sweep, a crash of it, and a `--resume`.

#include <string>
#include <vector>

#include "tabula/experiment/sweep_spec.hpp"
#include "tabula/experiment/trial_result.hpp"

namespace tabula::experiment {

/// @brief The files of one sweep in one directory:
/// - `results.jsonl`: one JSON record per trial, appended as each trial ends, each line with
///   one `write`, so a sweep killed at any point leaves whole lines (at most a torn last one,
///   which `--resume` drops);
/// - `timeline.jsonl`: one line per trial with its memory samples;
/// - `summary.csv` and `report.html`, rewritten (to a temporary name, then renamed) after
///   every trial; the temporaries a killed sweep left are removed when the store opens.
/// Not thread-safe.
class ResultsStore {
 public:
  /// Opens (and creates) `directory` for `sweep`.
  /// @param resume false: the directory must not hold results yet (Error otherwise, naming
  ///   it and `--resume`); true: the records there are read back (a torn last line is cut
  ///   off) and each must be a trial of this sweep with the same parameters.
  /// @throws Error for a directory that cannot be made or written; FormatError for records
  ///   that are damaged or belong to another sweep.
  ResultsStore(std::string directory, const SweepSpec& sweep, bool resume);

  const std::string& directory() const noexcept { return directory_; }
  std::string path(const std::string& file) const { return directory_ + "/" + file; }

  /// Every trial recorded so far, in the order they ended.
  const std::vector<TrialResult>& results() const noexcept { return results_; }
  bool contains(int index) const;
  /// Where the sweep's clock goes on: the end of the last recorded trial (0 when none).
  double elapsed() const noexcept { return elapsed_; }

  /// Records a finished trial (results.jsonl, timeline.jsonl), then rewrites summary.csv and
  /// report.html. @throws Error when a file cannot be written.
  void append(const TrialResult& result);

 private:
  void read_back();
  void write_views() const;

  std::string directory_;
  const SweepSpec* sweep_;
  std::vector<TrialResult> results_;
  double elapsed_ = 0.0;
};

}  // namespace tabula::experiment
