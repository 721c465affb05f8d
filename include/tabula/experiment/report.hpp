#pragma once
/// @file
/// The views of a sweep's results: a CSV summary and a self-contained HTML report.

#include <cstddef>
#include <string>
#include <vector>

#include "tabula/experiment/sweep_spec.hpp"
#include "tabula/experiment/trial_result.hpp"

namespace tabula::experiment {

/// @brief One row per trial in index order: trial, status, each parameter, each metric,
/// seconds, RSS after, RSS growth, library bytes after clearing, leaked, error.
std::string summary_csv(const SweepSpec& sweep, const std::vector<TrialResult>& results);

/// @brief A single HTML file that needs no network: the trials table sorted by the sweep's
/// metric (best first, failed trials last), a chart of the metric per trial, the memory
/// timeline of the whole sweep stacked by category with the OS's RSS, and each trial's peak
/// by category. The charts are drawn by the page's own script from data embedded in it; when
/// all three are drawn the body carries `data-charts-drawn="3"`.
std::string report_html(const SweepSpec& sweep, const std::vector<TrialResult>& results);

/// Writes `text` to `path` through a temporary file and a rename: readers see the old file
/// or the new one, never half of one. @throws Error naming the path.
void write_file_atomically(const std::string& path, const std::string& text);

/// Removes what writers of `path` killed mid-write left beside it: files named `path` +
/// ".tmp" + '.' or '-' + the writer's pid (+ anything), as write_file_atomically and
/// save_safetensors name their temporaries, whose process is gone. A live writer's file is
/// kept. Never throws: a file that cannot be removed stays. @return how many were removed.
std::size_t remove_stale_temporaries(const std::string& path) noexcept;

}  // namespace tabula::experiment
