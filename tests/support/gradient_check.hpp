#pragma once
// Finite-difference checks of a layer's backward pass, for every layer's tests.

#include <cstdint>
#include <string>

#include "tabula/core/shape.hpp"
#include "tabula/nn/layer.hpp"

namespace tabula::testing {

struct GradientCheckOptions {
  std::int64_t batch = 3;
  float epsilon = 1e-2f;        ///< central-difference step (float32 data)
  double relative_tolerance = 2e-2;
  double absolute_tolerance = 2e-3;
  std::int64_t max_checked_per_tensor = 400;  ///< elements probed per tensor (evenly spread)
  std::uint64_t seed = 7;
  bool training = true;
  /// Inputs closer than this to 0 are pushed out to it, keeping a kinked function (relu)
  /// away from its kink, where central differences are meaningless.
  float min_abs_input = 0.0f;
};

/// Builds `layer` for per-sample `input` in the current session (if not built), draws random
/// inputs and a random upstream gradient r, and compares backward's dL/dx and dL/dparameters
/// for L = sum(y * r) with central differences. Returns "" when all match, else a description
/// of the first mismatches (tensor, index, analytic, numeric).
std::string check_gradients(LayerImpl& layer, const Shape& input,
                            const GradientCheckOptions& options = {});

}  // namespace tabula::testing
