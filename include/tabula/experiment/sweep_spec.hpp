#pragma once
/// @file
/// Sweep files in the shape sweep users know (W&B-style YAML) and the trials they plan.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tabula/experiment/parameter_value.hpp"
#include "tabula/experiment/trial_spec.hpp"

namespace tabula::experiment {


/// @brief What a sweep optimises: `metric: {name: val_accuracy, goal: maximize}`.
struct MetricSpec {
  std::string name;
  bool maximize = false;  ///< goal: maximize (true) or minimize (false)
};

/// @brief One planned trial: its index in the sweep, its parameters and the model they make.
struct PlannedTrial {
  int index = 0;
  Parameters parameters;
  TrialSpec spec;
};

/// @brief A parsed, validated sweep file.
///
/// Keys: `name`, `description`, `method` (grid | random), `metric` (`name`, `goal`),
/// `parameters` (each `value`, `values` [+ `probabilities`], or `min`/`max` [+ `distribution`,
/// `q`], or `mu`/`sigma`), `run_cap`, `seed`, `memory_tolerance`, and the trial template:
/// `model`, `data`, `fit`, `memory_limit`, whose scalars may be `${parameter}`.
struct SweepSpec {
  std::string path;  ///< the file, as given
  std::string name;  ///< `name`, else the file's stem
  std::string description;
  std::string method;  ///< "grid" or "random"
  MetricSpec metric;
  std::optional<std::int64_t> run_cap;
  std::uint64_t seed = 0;
  std::size_t memory_tolerance = std::size_t{4} << 20;  ///< RSS growth a trial may leave
  /// Every trial, resolved and checked (layers and optimizers made once in a scratch session).
  std::vector<PlannedTrial> trials;
  /// The parameter names, in file order.
  std::vector<std::string> parameter_names;
};

/// @brief Reads, plans and checks a sweep file; nothing is trained.
/// @throws FormatError naming the file, the line, the key and what was expected.
SweepSpec load_sweep(const std::string& path);

/// @brief As `load_sweep`, from text; `source` names it in messages.
SweepSpec parse_sweep(const std::string& text, const std::string& source);

/// @brief As `load_trial_spec`, from text.
TrialSpec parse_trial_spec(const std::string& text, const std::string& source);

}  // namespace tabula::experiment
