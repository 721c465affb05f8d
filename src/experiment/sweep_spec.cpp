#include "tabula/experiment/sweep_spec.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numbers>
#include <random>

#include "experiment/detail/spec_file.hpp"
#include "experiment/detail/spec_node.hpp"
#include "experiment/detail/trial_reader.hpp"
#include "tabula/core/errors.hpp"
#include "tabula/session/session.hpp"

namespace tabula::experiment {

namespace {

using detail::SpecNode;

enum class Distribution {
  constant,
  categorical,
  int_uniform,
  uniform,
  q_uniform,
  log_uniform,
  log_uniform_values,
  q_log_uniform_values,
  normal,
  q_normal,
  log_normal,
};

struct DistributionName {
  std::string_view name;
  Distribution distribution;
};

constexpr DistributionName kDistributions[] = {
    {"constant", Distribution::constant},
    {"categorical", Distribution::categorical},
    {"int_uniform", Distribution::int_uniform},
    {"uniform", Distribution::uniform},
    {"q_uniform", Distribution::q_uniform},
    {"log_uniform", Distribution::log_uniform},
    {"log_uniform_values", Distribution::log_uniform_values},
    {"q_log_uniform_values", Distribution::q_log_uniform_values},
    {"normal", Distribution::normal},
    {"q_normal", Distribution::q_normal},
    {"log_normal", Distribution::log_normal},
};

// One entry of `parameters`, checked.
struct ParameterDef {
  std::string name;
  Distribution distribution = Distribution::constant;
  std::vector<ParameterValue> values;  // constant: one; categorical: the choices
  std::vector<double> probabilities;   // categorical, optional
  double min = 0, max = 0, q = 1, mu = 0, sigma = 1;
  std::int64_t int_min = 0, int_max = 0;  // int_uniform's bounds, exact (doubles are not)
  bool integer = false;  // int_uniform, or q_* with integer bounds and q
};

ParameterDef read_parameter(const std::string& name, const SpecNode& node) {
  node.expect_map({"value", "values", "probabilities", "min", "max", "distribution", "q", "mu",
                   "sigma"});
  ParameterDef p;
  p.name = name;
  const bool bounded = node.has("min") || node.has("max");
  const bool gaussian = node.has("mu") || node.has("sigma");
  if (node.has("distribution")) {
    const SpecNode d = node.at("distribution");
    const std::string text = d.as_string();
    bool found = false;
    for (const auto& [n, dist] : kDistributions)
      if (n == text) p.distribution = dist, found = true;
    if (!found) {
      std::string all;
      for (const auto& [n, dist] : kDistributions) all += (all.empty() ? "" : ", ") + std::string(n);
      d.fail("one of " + all);
    }
  } else if (node.has("values")) {
    p.distribution = Distribution::categorical;
  } else if (node.has("value")) {
    p.distribution = Distribution::constant;
  } else if (bounded) {
    const bool ints = node.has("min") && node.has("max") &&
                      node.at("min").as_value().index() == 1 &&
                      node.at("max").as_value().index() == 1;
    p.distribution = ints ? Distribution::int_uniform : Distribution::uniform;
  } else if (gaussian) {
    p.distribution = Distribution::normal;
  } else {
    node.fail("one of value, values, min/max or mu/sigma");
  }

  switch (p.distribution) {
    case Distribution::constant:
      p.values.push_back(node.at("value").as_value());
      break;
    case Distribution::categorical: {
      const auto items = node.at("values").items();
      if (items.empty()) node.at("values").fail("a list of at least one value");
      for (const SpecNode& v : items) p.values.push_back(v.as_value());
      if (node.has("probabilities")) {
        const SpecNode pn = node.at("probabilities");
        double sum = 0;
        for (const SpecNode& v : pn.items()) {
          const double x = v.as_double();
          if (x < 0) v.fail("a probability >= 0");
          p.probabilities.push_back(x);
          sum += x;
        }
        if (p.probabilities.size() != p.values.size())
          pn.fail("one probability per value (" + std::to_string(p.values.size()) + ")");
        if (std::fabs(sum - 1.0) > 1e-6) pn.fail("probabilities that add up to 1");
      }
      break;
    }
    case Distribution::int_uniform:
    case Distribution::uniform:
    case Distribution::q_uniform:
    case Distribution::log_uniform:
    case Distribution::log_uniform_values:
    case Distribution::q_log_uniform_values: {
      const SpecNode lo = node.at("min"), hi = node.at("max");
      if (p.distribution == Distribution::int_uniform) {
        p.int_min = lo.as_int();
        p.int_max = hi.as_int();
        if (p.int_min > p.int_max) hi.fail("max >= min (" + std::to_string(p.int_min) + ")");
        p.min = static_cast<double>(p.int_min);
        p.max = static_cast<double>(p.int_max);
        p.integer = true;
      } else {
        p.min = lo.as_double();
        p.max = hi.as_double();
      }
      if (!(p.min <= p.max)) hi.fail("max >= min (" + to_string(ParameterValue(p.min)) + ")");
      const bool log_values = p.distribution == Distribution::log_uniform_values ||
                              p.distribution == Distribution::q_log_uniform_values;
      if (log_values && p.min <= 0) lo.fail("min > 0 for a log-uniform distribution");
      break;
    }
    case Distribution::normal:
    case Distribution::q_normal:
    case Distribution::log_normal:
      if (node.has("mu")) p.mu = node.at("mu").as_double();
      if (node.has("sigma")) {
        p.sigma = node.at("sigma").as_double();
        if (p.sigma <= 0) node.at("sigma").fail("sigma > 0");
      }
      break;
  }
  if (p.distribution == Distribution::q_uniform ||
      p.distribution == Distribution::q_log_uniform_values ||
      p.distribution == Distribution::q_normal) {
    if (node.has("q")) {
      p.q = node.at("q").as_double();
      if (p.q <= 0) node.at("q").fail("q > 0");
    }
    const bool integral = p.q == std::floor(p.q) && p.min == std::floor(p.min) &&
                          p.max == std::floor(p.max);
    p.integer = integral && (!node.has("q") || node.at("q").as_value().index() == 1);
  }
  return p;
}

// The engine's bits as a double in [0, 1): the same on every platform, unlike std's
// distributions, so a seed plans the same trials everywhere.
double uniform01(std::mt19937_64& engine) {
  return static_cast<double>(engine() >> 11) * 0x1.0p-53;
}

double standard_normal(std::mt19937_64& engine) {
  const double u1 = 1.0 - uniform01(engine);  // (0, 1]
  const double u2 = uniform01(engine);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

ParameterValue number(double x, bool integer) {
  if (integer) return static_cast<std::int64_t>(std::llround(x));
  return x;
}

ParameterValue draw(const ParameterDef& p, std::mt19937_64& engine) {
  const double u = uniform01(engine);
  auto quantize = [&](double x) { return number(std::round(x / p.q) * p.q, p.integer); };
  switch (p.distribution) {
    case Distribution::constant: return p.values[0];
    case Distribution::categorical: {
      if (p.probabilities.empty())
        return p.values[std::min(p.values.size() - 1,
                                 static_cast<std::size_t>(u * static_cast<double>(p.values.size())))];
      double cumulative = 0;
      for (std::size_t i = 0; i < p.values.size(); ++i) {
        cumulative += p.probabilities[i];
        if (u < cumulative) return p.values[i];
      }
      return p.values.back();
    }
    case Distribution::int_uniform: {
      // In uint64: the span of [INT64_MIN, INT64_MAX] does not fit in an int64 (nor, exactly,
      // in a double), and u < 1 keeps u * (span + 1) below 2^64.
      const std::uint64_t span =
          static_cast<std::uint64_t>(p.int_max) - static_cast<std::uint64_t>(p.int_min);
      const auto offset = std::min(
          span, static_cast<std::uint64_t>(u * (static_cast<double>(span) + 1.0)));
      return static_cast<std::int64_t>(static_cast<std::uint64_t>(p.int_min) + offset);
    }
    case Distribution::uniform: return p.min + u * (p.max - p.min);
    case Distribution::q_uniform: return quantize(p.min + u * (p.max - p.min));
    case Distribution::log_uniform: return std::exp(p.min + u * (p.max - p.min));
    case Distribution::log_uniform_values:
      return std::exp(std::log(p.min) + u * (std::log(p.max) - std::log(p.min)));
    case Distribution::q_log_uniform_values:
      return quantize(std::exp(std::log(p.min) + u * (std::log(p.max) - std::log(p.min))));
    case Distribution::normal: return p.mu + p.sigma * standard_normal(engine);
    case Distribution::q_normal: return quantize(p.mu + p.sigma * standard_normal(engine));
    case Distribution::log_normal: return std::exp(p.mu + p.sigma * standard_normal(engine));
  }
  return p.values.empty() ? ParameterValue(0.0) : p.values[0];
}

// The most trials a sweep may plan. Each is read and checked before any runs, so the plan's
// cost grows with it; at seconds to minutes a trial, this many already take days.
constexpr std::int64_t kMaxTrials = 10000;

// How many of a sweep's trials are built and compiled while it is read (every trial's layers
// and optimizer are made): enough for the shapes of a usual grid, and bounded, since each
// build costs what its model's weights do.
constexpr std::size_t kBuiltTrials = 16;

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

std::vector<Parameters> plan_grid(const std::vector<ParameterDef>& defs, const SpecNode& root) {
  std::size_t count = 1;
  for (const auto& p : defs) {
    if (p.distribution != Distribution::constant && p.distribution != Distribution::categorical)
      root.at("parameters").at(p.name).fail_message(
          "grid search takes 'value' or 'values'; this parameter has a distribution: list "
          "its values, or use method: random");
    count *= p.values.size();
    if (count > static_cast<std::size_t>(kMaxTrials))
      root.at("parameters").fail_message("the grid has more than " + std::to_string(kMaxTrials) +
                                         " trials");
  }
  std::vector<Parameters> out;
  out.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    Parameters params;
    std::size_t rest = i;
    // The last parameter varies fastest, as in nested loops written in file order.
    for (std::size_t k = defs.size(); k-- > 0;) {
      params[defs[k].name] = defs[k].values[rest % defs[k].values.size()];
      rest /= defs[k].values.size();
    }
    out.push_back(std::move(params));
  }
  return out;
}

}  // namespace

SweepSpec parse_sweep(const std::string& text, const std::string& source) {
  const YAML::Node document = detail::parse_yaml(text, source);
  const detail::SpecContext file_context{source, nullptr, /*sweep_keys=*/true};
  const SpecNode root = SpecNode::root(document, file_context);
  std::vector<std::string_view> keys(detail::kTrialKeys);
  for (std::string_view k : {"name", "description", "method", "metric", "parameters", "run_cap",
                             "seed", "memory_tolerance"})
    keys.push_back(k);
  root.expect_map(keys);

  SweepSpec sweep;
  sweep.path = source;
  sweep.name = root.has("name") ? root.at("name").as_string()
                                : std::filesystem::path(source).stem().string();
  if (root.has("description")) sweep.description = root.at("description").as_string();
  const SpecNode method = root.at("method");
  sweep.method = method.as_string();
  if (sweep.method != "grid" && sweep.method != "random") method.fail("'grid' or 'random'");

  const SpecNode metric = root.at("metric");
  metric.expect_map({"name", "goal"});
  sweep.metric.name = metric.at("name").as_string();
  if (metric.has("goal")) {
    const std::string goal = metric.at("goal").as_string();
    if (goal != "maximize" && goal != "minimize") metric.at("goal").fail("'maximize' or 'minimize'");
    sweep.metric.maximize = goal == "maximize";
  }

  if (root.has("run_cap")) sweep.run_cap = root.at("run_cap").as_int(1, kMaxTrials);
  if (sweep.method == "random" && !sweep.run_cap)
    root.fail_message("run_cap is required with method: random (how many trials to draw)");
  if (root.has("seed")) sweep.seed = static_cast<std::uint64_t>(root.at("seed").as_int(0, INT64_MAX));
  if (root.has("memory_tolerance")) sweep.memory_tolerance = root.at("memory_tolerance").as_bytes();

  std::vector<ParameterDef> defs;
  if (root.has("parameters")) {
    const SpecNode parameters = root.at("parameters");
    if (!parameters.is_null()) {
      for (const std::string& name : parameters.keys()) {
        defs.push_back(read_parameter(name, parameters.at(name)));
        sweep.parameter_names.push_back(name);
      }
    }
  }

  std::vector<Parameters> planned;
  if (sweep.method == "grid") {
    planned = plan_grid(defs, root);
    if (sweep.run_cap && planned.size() > static_cast<std::size_t>(*sweep.run_cap))
      planned.resize(static_cast<std::size_t>(*sweep.run_cap));
  } else {
    std::mt19937_64 engine(splitmix64(sweep.seed));
    for (std::int64_t i = 0; i < *sweep.run_cap; ++i) {
      Parameters params;
      for (const auto& p : defs) params[p.name] = draw(p, engine);
      planned.push_back(std::move(params));
    }
  }

  Session scratch({.device = Device::cpu(), .name = "check"});  // for the trials only made
  for (std::size_t i = 0; i < planned.size(); ++i) {
    PlannedTrial trial;
    trial.index = static_cast<int>(i);
    trial.parameters = std::move(planned[i]);
    const detail::SpecContext context{source, &trial.parameters};
    const SpecNode trial_root = SpecNode::root(document, context);
    try {
      trial.spec = detail::read_trial(
          trial_root, i < kBuiltTrials ? detail::TrialCheck::build : detail::TrialCheck::make,
          &scratch);
    } catch (const FormatError& e) {
      if (trial.parameters.empty()) throw;
      throw FormatError(std::string(e.what()) + " (in trial " + std::to_string(i) + ": " +
                        to_string(trial.parameters) + ")");
    }
    trial.spec.source = source;
    trial.spec.seed = splitmix64(sweep.seed + i + 1);
    const auto names = trial.spec.result_names();
    if (std::find(names.begin(), names.end(), sweep.metric.name) == names.end()) {
      std::string known;
      for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
      metric.at("name").fail_message("'" + sweep.metric.name +
                                     "' is not a figure the trials report; they report: " + known);
    }
    sweep.trials.push_back(std::move(trial));
  }
  return sweep;
}

SweepSpec load_sweep(const std::string& path) {
  return parse_sweep(detail::read_text_file(path), path);
}

}  // namespace tabula::experiment
