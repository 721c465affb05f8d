// Sweep files: what they plan, and the errors a wrong one gets before anything runs.

#include "tabula/experiment/sweep_spec.hpp"

#include <gtest/gtest.h>

#include <set>

#include "support/expect_error.hpp"
#include "support/process_memory.hpp"
#include "tabula/core/errors.hpp"
#include "tabula/memory/process_memory.hpp"

namespace tabula::experiment {
namespace {

using testing::expect_contains;
using testing::thrown_message;

// A sweep whose `parameters` and model fields the tests fill in.
std::string sweep(const std::string& head, const std::string& dense = "units: ${hidden}") {
  return head +
         "\nmodel:\n"
         "  layers:\n"
         "    - type: Flatten\n"
         "    - type: Dense\n"
         "      " + dense + "\n"
         "      activation: relu\n"
         "    - {type: Dense, units: 10, activation: softmax}\n"
         "  optimizer: {type: adam, learning_rate: 0.001}\n"
         "  loss: sparse_categorical_crossentropy\n"
         "  metrics: [accuracy]\n"
         "data: {train_samples: 256, test_samples: 64}\n"
         "fit: {epochs: 1, batch_size: 64}\n";
}

const std::string kGrid =
    "method: grid\n"
    "metric: {name: test_accuracy, goal: maximize}\n"
    "parameters:\n"
    "  hidden: {values: [16, 32, 64]}\n"
    "  lr: {values: [0.1, 0.01]}";

TEST(SweepSpec, GridPlansEveryCombinationWithTheLastParameterFastest) {
  const SweepSpec s = parse_sweep(sweep(kGrid), "grid.yaml");
  ASSERT_EQ(s.trials.size(), 6u);
  EXPECT_EQ(s.parameter_names, (std::vector<std::string>{"hidden", "lr"}));
  EXPECT_EQ(to_string(s.trials[0].parameters), "hidden=16 lr=0.1");
  EXPECT_EQ(to_string(s.trials[1].parameters), "hidden=16 lr=0.01");
  EXPECT_EQ(to_string(s.trials[5].parameters), "hidden=64 lr=0.01");
  EXPECT_TRUE(s.metric.maximize);
  EXPECT_EQ(s.name, "grid");
}

TEST(SweepSpec, ParameterReferencesTakeTheTrialsValues) {
  const SweepSpec s = parse_sweep(sweep(kGrid), "grid.yaml");
  EXPECT_EQ(s.trials[2].spec.layers[1].description, "Dense(units=32, activation=relu)");
  EXPECT_EQ(s.trials[2].spec.layers[0].type, "Flatten");
  EXPECT_EQ(s.trials[2].spec.data.train_samples, 256);
}

TEST(SweepSpec, RunCapCutsAGrid) {
  const SweepSpec s = parse_sweep(sweep(kGrid + "\nrun_cap: 4"), "grid.yaml");
  EXPECT_EQ(s.trials.size(), 4u);
}

TEST(SweepSpec, TrialsGetDistinctSeedsThatTheSweepSeedReproduces) {
  const SweepSpec a = parse_sweep(sweep(kGrid + "\nseed: 3"), "a.yaml");
  const SweepSpec b = parse_sweep(sweep(kGrid + "\nseed: 3"), "b.yaml");
  std::set<std::uint64_t> seeds;
  for (std::size_t i = 0; i < a.trials.size(); ++i) {
    EXPECT_EQ(a.trials[i].spec.seed, b.trials[i].spec.seed);
    seeds.insert(a.trials[i].spec.seed);
  }
  EXPECT_EQ(seeds.size(), a.trials.size());
}

const std::string kRandom =
    "method: random\n"
    "metric: {name: loss}\n"
    "run_cap: 40\n"
    "seed: 11\n"
    "parameters:\n"
    "  hidden: {min: 8, max: 24}\n"
    "  lr: {min: 0.0001, max: 0.1, distribution: log_uniform_values}\n"
    "  act: {values: [relu, tanh]}\n"
    "  rate: {min: 0.0, max: 0.5}";

TEST(SweepSpec, RandomSearchDrawsWithinBoundsAndTheSeedReproducesIt) {
  const SweepSpec a = parse_sweep(sweep(kRandom), "r.yaml");
  const SweepSpec b = parse_sweep(sweep(kRandom), "r.yaml");
  ASSERT_EQ(a.trials.size(), 40u);
  std::set<std::int64_t> hidden;
  std::set<std::string> acts;
  for (std::size_t i = 0; i < a.trials.size(); ++i) {
    const Parameters& p = a.trials[i].parameters;
    EXPECT_EQ(to_string(p), to_string(b.trials[i].parameters));
    const auto h = std::get<std::int64_t>(p.at("hidden"));  // integer bounds: int_uniform
    EXPECT_GE(h, 8);
    EXPECT_LE(h, 24);
    hidden.insert(h);
    const double lr = std::get<double>(p.at("lr"));
    EXPECT_GE(lr, 0.0001);
    EXPECT_LE(lr, 0.1);
    const double rate = std::get<double>(p.at("rate"));
    EXPECT_GE(rate, 0.0);
    EXPECT_LT(rate, 0.5);
    acts.insert(std::get<std::string>(p.at("act")));
  }
  EXPECT_GT(hidden.size(), 5u);
  EXPECT_EQ(acts.size(), 2u);
  const SweepSpec other = parse_sweep(sweep(kRandom + "\nname: x").replace(
                                          sweep(kRandom).find("seed: 11"), 8, "seed: 12"),
                                      "r.yaml");
  EXPECT_NE(to_string(other.trials[0].parameters), to_string(a.trials[0].parameters));
}

TEST(SweepSpec, IntegerBoundsDrawExactlyEvenWhereADoubleCannotHoldThem) {
  // 2^53 + 1 has no double; the whole int64 range is wider than an int64 can count.
  const std::string head =
      "method: random\nmetric: {name: loss}\nrun_cap: 20\nparameters:\n"
      "  hidden: {value: 8}\n"
      "  exact: {min: 9007199254740993, max: 9007199254740993}\n"
      "  wide: {min: -9223372036854775808, max: 9223372036854775807}";
  const SweepSpec s = parse_sweep(sweep(head), "s.yaml");
  std::set<std::int64_t> wide;
  for (const auto& trial : s.trials) {
    EXPECT_EQ(std::get<std::int64_t>(trial.parameters.at("exact")), 9007199254740993);
    wide.insert(std::get<std::int64_t>(trial.parameters.at("wide")));
  }
  EXPECT_GT(wide.size(), 15u);
}

TEST(SweepSpec, ATrialBeyondThoseBuiltStillHasItsLayersChecked) {
  std::string values;
  for (int i = 0; i < 40; ++i) values += std::to_string(8 + i) + ", ";
  const std::string head = "method: grid\nmetric: {name: loss}\nparameters:\n"
                           "  hidden: {values: [" + values + "0]}";
  expect_contains(thrown_message<FormatError>([&] { parse_sweep(sweep(head), "s.yaml"); }),
                  {"s.yaml:8:", "model.layers[1]", "Dense units", "trial 40: hidden=0"});
}

TEST(SweepSpec, MoreThanTenThousandTrialsAreRefusedBeforeAnyIsRead) {
  expect_contains(thrown_message<FormatError>([] {
                    parse_sweep(sweep("method: random\nmetric: {name: loss}\nrun_cap: 10001\n"
                                      "parameters:\n  hidden: {min: 8, max: 16}"),
                                "s.yaml");
                  }),
                  {"s.yaml:3:", "run_cap", "expected an integer in [1, 10000]", "got '10001'"});
  std::string values;
  for (int i = 0; i < 101; ++i) values += std::to_string(i + 1) + (i < 100 ? ", " : "");
  const std::string grid = "method: grid\nmetric: {name: loss}\nparameters:\n"
                           "  hidden: {values: [" + values + "]}\n  lr: {values: [" + values + "]}";
  expect_contains(thrown_message<FormatError>([&] { parse_sweep(sweep(grid), "s.yaml"); }),
                  {"parameters", "the grid has more than 10000 trials"});
}

TEST(SweepSpec, AnUnknownKeyIsNamedWithItsLine) {
  const std::string m = thrown_message<FormatError>(
      [] { parse_sweep(sweep(kGrid + "\nprogram: train.py"), "s.yaml"); });
  expect_contains(m, {"s.yaml:6:", "unknown key 'program'", "expected one of", "parameters"});
}

TEST(SweepSpec, AWrongTypeNamesTheKeyTheLineAndWhatWasExpected) {
  const std::string m = thrown_message<FormatError>(
      [] { parse_sweep(sweep(kGrid, "units: many"), "s.yaml"); });
  expect_contains(m, {"s.yaml:10:", "model.layers[1].units", "expected an integer", "got 'many'"});
}

TEST(SweepSpec, AParameterValueTheLayerRefusesIsReportedAgainstTheLayerAndTrial) {
  const std::string head =
      "method: grid\nmetric: {name: loss}\nparameters:\n  hidden: {values: [8, 0]}";
  const std::string m = thrown_message<FormatError>([&] { parse_sweep(sweep(head), "s.yaml"); });
  expect_contains(m, {"s.yaml:8:", "model.layers[1]", "Dense units", "> 0", "got 0",
                      "trial 1: hidden=0"});
}

TEST(SweepSpec, AnUnknownParameterReferenceListsTheParameters) {
  const std::string m = thrown_message<FormatError>(
      [] { parse_sweep(sweep(kGrid, "units: ${width}"), "s.yaml"); });
  expect_contains(m, {"s.yaml:10:", "'${width}' refers to no parameter", "hidden, lr"});
}

TEST(SweepSpec, GridSearchRefusesADistribution) {
  const std::string head =
      "method: grid\nmetric: {name: loss}\nparameters:\n  hidden: {min: 8, max: 16}";
  const std::string m = thrown_message<FormatError>([&] { parse_sweep(sweep(head), "s.yaml"); });
  expect_contains(m, {"s.yaml:4:", "parameters.hidden", "grid search takes 'value' or 'values'",
                      "method: random"});
}

TEST(SweepSpec, RandomSearchNeedsARunCap) {
  const std::string head =
      "method: random\nmetric: {name: loss}\nparameters:\n  hidden: {min: 8, max: 16}";
  const std::string m = thrown_message<FormatError>([&] { parse_sweep(sweep(head), "s.yaml"); });
  expect_contains(m, {"s.yaml:1:", "run_cap is required"});
}

TEST(SweepSpec, TheMetricMustBeAFigureTheTrialsReport) {
  const std::string head =
      "method: grid\nmetric: {name: val_accuracy, goal: maximize}\nparameters:\n"
      "  hidden: {value: 8}";
  const std::string m = thrown_message<FormatError>([&] { parse_sweep(sweep(head), "s.yaml"); });
  expect_contains(m, {"s.yaml:2:", "metric.name", "'val_accuracy' is not a figure",
                      "loss, accuracy, test_loss, test_accuracy"});
}

TEST(SweepSpec, ImpossibleBoundsAndGoalsAreRefused) {
  const std::string bounds =
      "method: random\nrun_cap: 2\nmetric: {name: loss}\nparameters:\n  hidden: {min: 16, max: 8}";
  expect_contains(thrown_message<FormatError>([&] { parse_sweep(sweep(bounds), "s.yaml"); }),
                  {"s.yaml:5:", "parameters.hidden.max", "expected max >= min"});
  const std::string goal = "method: grid\nmetric: {name: loss, goal: lowest}\n"
                           "parameters:\n  hidden: {value: 8}";
  expect_contains(thrown_message<FormatError>([&] { parse_sweep(sweep(goal), "s.yaml"); }),
                  {"metric.goal", "'maximize' or 'minimize'", "got 'lowest'"});
  const std::string method = "method: bayes\nmetric: {name: loss}\n"
                             "parameters:\n  hidden: {value: 8}";
  expect_contains(thrown_message<FormatError>([&] { parse_sweep(sweep(method), "s.yaml"); }),
                  {"s.yaml:1:", "method", "'grid' or 'random'", "got 'bayes'"});
}

TEST(SweepSpec, LayersThatCannotTakeTheImagesAreReportedBeforeAnythingRuns) {
  const std::string text =
      "method: grid\nmetric: {name: loss}\n"
      "model:\n"
      "  layers:\n"
      "    - {type: Flatten}\n"
      "    - {type: Conv2D, filters: 4, kernel_size: 3}\n"
      "  loss: mse\n";
  expect_contains(thrown_message<FormatError>([&] { parse_sweep(text, "s.yaml"); }),
                  {"s.yaml:6:", "model.layers[1]", "does not fit its input",
                   "Fashion-MNIST's images are (28, 28)", "Conv2D", "got (784,)"});
}

TEST(SweepSpec, MalformedYamlNamesTheLineAndColumn) {
  expect_contains(thrown_message<FormatError>([] { parse_sweep("method: grid\nmetric: [a\n", "bad.yaml"); }),
                  {"bad.yaml:3:", "not valid YAML"});
}

TEST(SweepSpec, ABracedReferenceInAFlowMapGetsAHint) {
  const std::string text = "method: grid\nmetric: {name: loss}\nmodel: {loss: ${x}}\n";
  expect_contains(thrown_message<FormatError>([&] { parse_sweep(text, "f.yaml"); }),
                  {"f.yaml:3:", "not valid YAML", "write a parameter as $name"});
}

TEST(SweepSpec, AMissingFileIsNamed) {
  expect_contains(thrown_message<FormatError>([] { load_sweep("/nonexistent/sweep.yaml"); }),
                  {"/nonexistent/sweep.yaml", "cannot open"});
}

TEST(SweepSpec, TextLikeAReferenceToNoValidNameStaysText) {
  const SweepSpec s = parse_sweep(sweep(kGrid + "\nname: run-${not a name}-${}"), "s.yaml");
  EXPECT_EQ(s.name, "run-${not a name}-${}");
}

TEST(SweepSpec, AReferenceInTheSweepsOwnKeysSaysThoseTakeNoParameters) {
  expect_contains(thrown_message<FormatError>([] {
                    parse_sweep(sweep(kGrid + "\ndescription: width ${hidden}"), "s.yaml");
                  }),
                  {"s.yaml:6:", "description", "'${hidden}' refers to a parameter",
                   "the sweep's own keys take none"});
}

TEST(SweepSpec, SizesReadWithTheirUnits) {
  const std::string head = "method: grid\nmetric: {name: loss}\nmemory_tolerance: 1.5 MiB\n"
                           "memory_limit: ${limit}\nparameters:\n"
                           "  hidden: {value: 8}\n  limit: {values: [64MiB, 1000, 2GB]}";
  const SweepSpec s = parse_sweep(sweep(head), "s.yaml");
  EXPECT_EQ(s.memory_tolerance, std::size_t{3} << 19);
  EXPECT_EQ(s.trials[0].spec.memory_limit, std::size_t{64} << 20);
  EXPECT_EQ(s.trials[1].spec.memory_limit, 1000u);
  EXPECT_EQ(s.trials[2].spec.memory_limit, 2000000000u);
  expect_contains(thrown_message<FormatError>([&] {
                    parse_sweep(sweep("method: grid\nmetric: {name: loss}\nparameters:\n"
                                      "  hidden: {value: 8}\nmemory_limit: 12 parsecs"),
                                "s.yaml");
                  }),
                  {"s.yaml:5:", "memory_limit", "expected a size", "got '12 parsecs'"});
}

TEST(TrialSpec, AModelFileHasNoParameters) {
  const std::string text =
      "model:\n  layers:\n    - {type: Dense, units: $hidden}\n  loss: mse\n";
  expect_contains(thrown_message<FormatError>([&] { parse_trial_spec(text, "m.yaml"); }),
                  {"m.yaml:3:", "refers to a parameter, but only sweep files have parameters"});
}

TEST(TrialSpec, AbsurdLayerSizesAreFileErrorsNamingTheKey) {
  auto model = [](const std::string& layer) {
    return "model:\n  layers:\n    - Flatten\n    - " + layer + "\n  loss: mse\n";
  };
  expect_contains(thrown_message<FormatError>([&] {
                    parse_trial_spec(model("{type: Dense, units: 9000000000000000000}"), "m.yaml");
                  }),
                  {"m.yaml:4:", "model.layers[1].units", "expected an integer up to 65536"});
  expect_contains(thrown_message<FormatError>([&] {
                    parse_trial_spec(model("{type: Reshape, target_shape: [4294967296, 4294967296]}"),
                                     "m.yaml");
                  }),
                  {"m.yaml:4:", "model.layers[1].target_shape", "product is at most 268435456"});
  expect_contains(thrown_message<FormatError>([&] {
                    parse_trial_spec(model("{type: Reshape, target_shape: [28, 28, 1]}\n"
                                           "    - {type: Conv2D, filters: 4, kernel_size: 100000}"),
                                     "m.yaml");
                  }),
                  {"m.yaml:5:", "model.layers[2].kernel_size", "positive integers up to 256"});
}

TEST(TrialSpec, AReshapeTargetMayInferOneExtent) {
  const TrialSpec t = parse_trial_spec(
      "model:\n  layers:\n    - {type: Reshape, target_shape: [-1, 28, 1]}\n"
      "    - {type: Conv2D, filters: 2, kernel_size: 3}\n  loss: mse\n",
      "m.yaml");
  EXPECT_EQ(t.layers[0].description, "Reshape(target_shape=(-1, 28, 1))");
}

TEST(TrialSpec, ANegativeInputExtentIsReportedAgainstTheLayer) {
  expect_contains(thrown_message<FormatError>([] {
                    parse_trial_spec(
                        "model:\n  layers:\n    - {type: Input, shape: [-1, 28]}\n  loss: mse\n",
                        "m.yaml");
                  }),
                  {"m.yaml:3:", "model.layers[0]", "expected a non-negative extent", "got -1"});
}

TEST(TrialSpec, CheckingAModelLargerThanTheCheckMayHoldDoesNotBuildItInFull) {
  // 200 MiB of weights, and as much again for each of gradients and Adam's two slots: the check
  // stops at 256 MiB; the trial itself would report OutOfMemory if its limit were too small.
  const std::size_t before = process_memory().peak_rss;
  const TrialSpec t = parse_trial_spec(
      "model:\n  layers: [Flatten, {type: Dense, units: 65536}]\n  loss: mse\n", "m.yaml");
  EXPECT_EQ(t.layers.size(), 2u);
  if (!testing::under_sanitizer()) {
    EXPECT_LT(process_memory().peak_rss - before, 400 * testing::kMiB);
  }
}

TEST(TrialSpec, ResultNamesFollowValidationAndTestData) {
  const TrialSpec t = parse_trial_spec(
      "model:\n  layers: [Flatten, {type: Dense, units: 10, activation: softmax}]\n"
      "  loss: sparse_categorical_crossentropy\n  metrics: [accuracy]\n"
      "data: {train_samples: 100, test_samples: 0}\nfit: {validation_split: 0.2}\n",
      "m.yaml");
  EXPECT_EQ(t.result_names(),
            (std::vector<std::string>{"loss", "accuracy", "val_loss", "val_accuracy"}));
}

}  // namespace
}  // namespace tabula::experiment
