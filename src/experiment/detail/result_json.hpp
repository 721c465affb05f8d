#pragma once
// TrialResult <-> JSON: one line of results.jsonl, the message a child trial sends its parent,
// and the timeline lines.

#include <nlohmann/json.hpp>

#include "tabula/experiment/trial_result.hpp"

namespace tabula::experiment::detail {

nlohmann::json to_json(const ParameterValue& value);
nlohmann::json to_json(const Parameters& parameters);
Parameters parameters_from_json(const nlohmann::json& j);

/// The results.jsonl record, without the timeline (which has a file of its own).
nlohmann::json to_json(const TrialResult& result);
/// @throws FormatError for a record that lacks a field or has the wrong type.
TrialResult result_from_json(const nlohmann::json& j);

/// One sample as [seconds, current, reserved, rss, weights, gradients, optimizer, activations,
/// data, workspace, other].
nlohmann::json to_json(const MemorySample& sample);
MemorySample sample_from_json(const nlohmann::json& j);

}  // namespace tabula::experiment::detail
