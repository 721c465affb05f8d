#pragma once
/// @file
/// What one trial of a sweep produced: metrics, time, memory figures and status.

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tabula/experiment/parameter_value.hpp"
#include "tabula/memory/category.hpp"
#include "tabula/session/memory_timeline.hpp"

namespace tabula::experiment {

/// @brief The memory figures of one trial: the OS's (RSS) and the library's.
struct TrialMemory {
  std::size_t rss_baseline = 0;  ///< the process's RSS after data and a warm-up, before trials
  std::size_t rss_before = 0;    ///< RSS when the trial started
  std::size_t rss_peak = 0;      ///< highest RSS sampled during the trial
  std::size_t rss_after = 0;     ///< RSS after the trial's session was cleared
  std::size_t library_peak = 0;  ///< the trial session's peak bytes in use
  CategoryBytes peak_by_category;       ///< the trial session's peak per category
  std::size_t current_after_clear = 0;  ///< must be 0
  std::size_t reserved_after_clear = 0; ///< must be 0
  std::size_t tolerance = 0;            ///< RSS growth allowed over the baseline
  /// `rss_after - rss_baseline` (negative when the process holds less than at the baseline).
  std::int64_t rss_growth() const noexcept {
    return static_cast<std::int64_t>(rss_after) - static_cast<std::int64_t>(rss_baseline);
  }
  /// True when the trial left memory behind: library figures not zero after clearing, or RSS
  /// grown past the baseline by more than the tolerance.
  bool leaked() const noexcept {
    return current_after_clear != 0 || reserved_after_clear != 0 ||
           rss_growth() > static_cast<std::int64_t>(tolerance);
  }
};

/// @brief One trial's outcome, as written to results.jsonl.
struct TrialResult {
  int index = 0;
  Parameters parameters;
  bool ok = false;          ///< false: failed (see `error`)
  std::string error_type;   ///< "OutOfMemory", "InvalidArgument", "killed", ... when failed
  std::string error;        ///< the message, when failed
  std::map<std::string, double> metrics;               ///< final figures: loss, val_…, test_…
  std::map<std::string, std::vector<double>> history;  ///< per epoch
  double started = 0.0;     ///< seconds since the sweep began (continues across --resume)
  double seconds = 0.0;     ///< the trial's wall time
  std::uint64_t seed = 0;
  std::string isolation = "none";  ///< "none" or "process"
  long pid = 0;                    ///< the process that ran it
  TrialMemory memory;
  /// Samples of the trial's process, `seconds` since the trial started.
  std::vector<MemorySample> timeline;
};

}  // namespace tabula::experiment
