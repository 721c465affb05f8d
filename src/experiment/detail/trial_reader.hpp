#pragma once
// Reads the trial template of a model or sweep file (`model`, `data`, `fit`, `memory_limit`)
// into a resolved TrialSpec.

#include <string_view>
#include <vector>

#include "experiment/detail/spec_node.hpp"
#include "tabula/experiment/trial_spec.hpp"

namespace tabula::experiment::detail {

/// The top-level keys `read_trial` reads; a file's own keys add to these.
inline const std::vector<std::string_view> kTrialKeys = {"model", "data", "fit", "memory_limit"};

/// Reads `model`, `data`, `fit` and `memory_limit` from `root` (other keys are the caller's).
/// Makes every layer and the optimizer once in a scratch session, so that values the layers
/// refuse are reported against the file before anything runs.
/// @throws FormatError naming the file, line and key.
TrialSpec read_trial(const SpecNode& root);

}  // namespace tabula::experiment::detail
