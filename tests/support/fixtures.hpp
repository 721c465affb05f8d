#pragma once
// Known-answer fixtures made with PyTorch (tests/fixtures/make_*.py), read with tabula's own
// safetensors reader.

#include <string>
#include <vector>

#include "tabula/core/tensor.hpp"

namespace tabula::testing {

/// Absolute path of a committed fixture file under tests/fixtures/.
std::string fixture_path(const std::string& file);

/// Tensor `name` of fixture `file`, loaded into the current session.
/// @throws Error when the file or the name is missing.
Tensor load_fixture(const std::string& file, const std::string& name);

/// "" when every element of `actual` is within `relative` (plus `absolute`) of `expected`;
/// else the first mismatches.
std::string compare(const Tensor& actual, const Tensor& expected, double relative = 1e-5,
                    double absolute = 1e-6);

}  // namespace tabula::testing
