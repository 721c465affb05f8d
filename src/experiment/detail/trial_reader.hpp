#pragma once
// Reads the trial template of a model or sweep file (`model`, `data`, `fit`, `memory_limit`)
// into a resolved TrialSpec.

#include <string_view>
#include <vector>

#include "experiment/detail/spec_node.hpp"
#include "tabula/session/session.hpp"
#include "tabula/experiment/trial_spec.hpp"

namespace tabula::experiment::detail {

/// The top-level keys `read_trial` reads; a file's own keys add to these.
inline const std::vector<std::string_view> kTrialKeys = {"model", "data", "fit", "memory_limit"};

/// How far `read_trial` goes beyond reading: building costs what the model's weights do, so a
/// sweep builds a few of its trials and makes the layers of all.
enum class TrialCheck {
  make,   ///< make every layer and the optimizer: their arguments are checked
  build,  ///< that, then build and compile the model on Fashion-MNIST's (28, 28) samples
};

/// Reads `model`, `data`, `fit` and `memory_limit` from `root` (other keys are the caller's).
/// Makes every layer and the optimizer once in a scratch session (and with `build`, builds
/// and compiles the model there), so that values the layers refuse are reported against the
/// file before anything runs. A `make` check uses `scratch` when given (making allocates
/// nothing; a session per trial would cost more than the check), a `build` check its own.
/// @throws FormatError naming the file, line and key.
TrialSpec read_trial(const SpecNode& root, TrialCheck check = TrialCheck::build,
                     Session* scratch = nullptr);

}  // namespace tabula::experiment::detail
