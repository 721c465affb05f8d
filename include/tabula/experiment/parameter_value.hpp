#pragma once
/// @file
/// The value of one sweep parameter in one trial, and the set of them.

#include <cstdint>
#include <map>
#include <string>
#include <variant>

namespace tabula::experiment {

/// @brief A parameter's value: what a YAML scalar can be.
using ParameterValue = std::variant<bool, std::int64_t, double, std::string>;

/// @brief One trial's parameters by name, in name order.
using Parameters = std::map<std::string, ParameterValue>;

/// "true", "128", "0.001", "relu": the shortest text that reads back as the same value.
std::string to_string(const ParameterValue& value);

/// "hidden=128 lr=0.001", for progress lines and tables.
std::string to_string(const Parameters& parameters);

}  // namespace tabula::experiment
