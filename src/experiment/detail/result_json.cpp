#include "experiment/detail/result_json.hpp"

#include <cmath>
#include <limits>

#include "tabula/core/errors.hpp"

namespace tabula::experiment::detail {

using nlohmann::json;

json to_json(const ParameterValue& value) {
  switch (value.index()) {
    case 0: return std::get<bool>(value);
    case 1: return std::get<std::int64_t>(value);
    case 2: return std::get<double>(value);
    default: return std::get<std::string>(value);
  }
}

json to_json(const Parameters& parameters) {
  json j = json::object();
  for (const auto& [k, v] : parameters) j[k] = to_json(v);
  return j;
}

Parameters parameters_from_json(const json& j) {
  Parameters p;
  for (const auto& [k, v] : j.items()) {
    if (v.is_boolean()) p[k] = v.get<bool>();
    else if (v.is_number_integer()) p[k] = v.get<std::int64_t>();
    else if (v.is_number()) p[k] = v.get<double>();
    else if (v.is_string()) p[k] = v.get<std::string>();
    else throw FormatError("parameter '" + k + "': expected a scalar, got " + v.dump());
  }
  return p;
}

namespace {

json to_json(const CategoryBytes& bytes) {
  json j = json::object();
  for (Category c : kAllCategories) j[std::string(name_of(c))] = bytes[c];
  return j;
}

CategoryBytes bytes_from_json(const json& j) {
  CategoryBytes b;
  for (Category c : kAllCategories) b[c] = j.at(std::string(name_of(c))).get<std::size_t>();
  return b;
}

// JSON has no NaN or infinity: a diverged loss is written as null and read back as NaN.
json number(double x) { return std::isfinite(x) ? json(x) : json(nullptr); }
double number_from(const json& j) {
  return j.is_null() ? std::numeric_limits<double>::quiet_NaN() : j.get<double>();
}

json to_json(const std::map<std::string, double>& figures) {
  json j = json::object();
  for (const auto& [k, v] : figures) j[k] = number(v);
  return j;
}

json to_json(const std::map<std::string, std::vector<double>>& history) {
  json j = json::object();
  for (const auto& [k, values] : history) {
    json a = json::array();
    for (double v : values) a.push_back(number(v));
    j[k] = a;
  }
  return j;
}

}  // namespace

json to_json(const TrialResult& r) {
  const TrialMemory& m = r.memory;
  json j = {
      {"trial", r.index},
      {"params", to_json(r.parameters)},
      {"status", r.ok ? "ok" : "failed"},
      {"metrics", to_json(r.metrics)},
      {"history", to_json(r.history)},
      {"started", r.started},
      {"seconds", r.seconds},
      {"seed", r.seed},
      {"isolation", r.isolation},
      {"pid", r.pid},
      {"memory",
       {{"rss_baseline", m.rss_baseline},
        {"rss_before", m.rss_before},
        {"rss_peak", m.rss_peak},
        {"rss_after", m.rss_after},
        {"rss_growth", m.rss_growth()},
        {"library_peak", m.library_peak},
        {"peak_by_category", to_json(m.peak_by_category)},
        {"current_after_clear", m.current_after_clear},
        {"reserved_after_clear", m.reserved_after_clear},
        {"tolerance", m.tolerance},
        {"leaked", m.leaked()}}},
  };
  if (!r.ok) j["error"] = {{"type", r.error_type}, {"message", r.error}};
  return j;
}

TrialResult result_from_json(const json& j) {
  try {
    TrialResult r;
    r.index = j.at("trial").get<int>();
    r.parameters = parameters_from_json(j.at("params"));
    r.ok = j.at("status").get<std::string>() == "ok";
    if (j.contains("error")) {
      r.error_type = j.at("error").at("type").get<std::string>();
      r.error = j.at("error").at("message").get<std::string>();
    }
    for (const auto& [k, v] : j.at("metrics").items()) r.metrics[k] = number_from(v);
    for (const auto& [k, values] : j.at("history").items())
      for (const json& v : values) r.history[k].push_back(number_from(v));
    r.started = j.at("started").get<double>();
    r.seconds = j.at("seconds").get<double>();
    r.seed = j.at("seed").get<std::uint64_t>();
    r.isolation = j.at("isolation").get<std::string>();
    r.pid = j.at("pid").get<long>();
    const json& m = j.at("memory");
    r.memory.rss_baseline = m.at("rss_baseline").get<std::size_t>();
    r.memory.rss_before = m.at("rss_before").get<std::size_t>();
    r.memory.rss_peak = m.at("rss_peak").get<std::size_t>();
    r.memory.rss_after = m.at("rss_after").get<std::size_t>();
    r.memory.library_peak = m.at("library_peak").get<std::size_t>();
    r.memory.peak_by_category = bytes_from_json(m.at("peak_by_category"));
    r.memory.current_after_clear = m.at("current_after_clear").get<std::size_t>();
    r.memory.reserved_after_clear = m.at("reserved_after_clear").get<std::size_t>();
    r.memory.tolerance = m.at("tolerance").get<std::size_t>();
    if (j.contains("timeline"))
      for (const json& s : j.at("timeline")) r.timeline.push_back(sample_from_json(s));
    return r;
  } catch (const json::exception& e) {
    throw FormatError(std::string("trial record: ") + e.what());
  }
}

json to_json(const MemorySample& s) {
  json j = json::array({s.seconds, s.current, s.reserved, s.rss});
  for (Category c : kAllCategories) j.push_back(s.by_category[c]);
  return j;
}

MemorySample sample_from_json(const json& j) {
  if (!j.is_array() || j.size() != 4 + kCategoryCount)
    throw FormatError("timeline sample: expected an array of " +
                      std::to_string(4 + kCategoryCount) + " numbers, got " + j.dump());
  MemorySample s;
  s.seconds = j[0].get<double>();
  s.current = j[1].get<std::size_t>();
  s.reserved = j[2].get<std::size_t>();
  s.rss = j[3].get<std::size_t>();
  for (std::size_t i = 0; i < kCategoryCount; ++i)
    s.by_category[kAllCategories[i]] = j[4 + i].get<std::size_t>();
  return s;
}

}  // namespace tabula::experiment::detail
