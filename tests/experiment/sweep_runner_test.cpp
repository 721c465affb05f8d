// Sweeps in this process: one record per trial as it ends, resumable, memory flat.

#include "tabula/experiment/sweep_runner.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "experiment/experiment_fixtures.hpp"
#include "support/expect_error.hpp"
#include "support/process_memory.hpp"
#include "support/temp_dir.hpp"
#include "tabula/core/errors.hpp"

namespace tabula::experiment {
namespace {

using testing::expect_contains;
using testing::thrown_message;

std::size_t count_lines(const std::string& text) {
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

SweepOptions quiet(const std::string& dir) {
  SweepOptions o;
  o.out_dir = dir;
  o.verbose = 0;
  return o;
}

TEST(SweepRunner, WritesARecordPerTrialAndTheSummaryAndReport) {
  testing::TempDir dir("sweep");
  const SweepSpec sweep = parse_sweep(testing::small_sweep("[8, 16, 24]"), "small.yaml");
  const SweepSummary s = run_sweep(sweep, quiet(dir.file("out")));
  EXPECT_EQ(s.planned, 3u);
  EXPECT_EQ(s.run, 3u);
  EXPECT_EQ(s.failed, 0u);
  ASSERT_TRUE(s.best.has_value());
  EXPECT_EQ(count_lines(dir.read("out/results.jsonl")), 3u);
  EXPECT_EQ(count_lines(dir.read("out/timeline.jsonl")), 3u);
  const std::string csv = dir.read("out/summary.csv");
  EXPECT_EQ(count_lines(csv), 4u);  // header + 3 trials
  expect_contains(csv, {"trial,status,hidden,", "test_accuracy", "rss_growth_bytes", "\n0,ok,8,"});
  const std::string html = dir.read("out/report.html");
  expect_contains(html, {"<!DOCTYPE html>", "\"metric\":\"test_accuracy\"", "chartsDrawn"});
  EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org/2000/svg"));  // no network
}

TEST(SweepRunner, AFailedTrialIsRecordedAndTheSweepGoesOn) {
  testing::TempDir dir("sweep");
  const SweepSpec sweep = parse_sweep(testing::small_sweep("[16]", "[0, 64KiB, 0]"), "small.yaml");
  const SweepSummary s = run_sweep(sweep, quiet(dir.file("out")));
  EXPECT_EQ(s.run, 3u);
  EXPECT_EQ(s.failed, 1u);
  const std::string results = dir.read("out/results.jsonl");
  expect_contains(results, {"\"status\":\"failed\"", "\"type\":\"OutOfMemory\""});
  EXPECT_EQ(count_lines(results), 3u);
}

TEST(SweepRunner, RefusesADirectoryThatHoldsResultsUnlessResuming) {
  testing::TempDir dir("sweep");
  const SweepSpec sweep = parse_sweep(testing::small_sweep("[8]"), "small.yaml");
  run_sweep(sweep, quiet(dir.file("out")));
  const std::string before = dir.read("out/results.jsonl");
  expect_contains(thrown_message<Error>([&] { run_sweep(sweep, quiet(dir.file("out"))); }),
                  {"results.jsonl already holds results", "--resume"});
  EXPECT_EQ(dir.read("out/results.jsonl"), before);  // nothing lost
}

TEST(SweepRunner, ResumeRunsOnlyWhatIsMissingAndDropsATornLastLine) {
  testing::TempDir dir("sweep");
  const SweepSpec two = parse_sweep(testing::small_sweep("[8, 16]"), "small.yaml");
  run_sweep(two, quiet(dir.file("out")));
  const std::string first_two = dir.read("out/results.jsonl");
  {
    std::ofstream torn(dir.file("out/results.jsonl"), std::ios::app);
    torn << "{\"trial\": 2, \"params\": {\"hid";  // a kill in the middle of a line
  }
  const SweepSpec four = parse_sweep(testing::small_sweep("[8, 16, 24, 32]"), "small.yaml");
  SweepOptions o = quiet(dir.file("out"));
  o.resume = true;
  const SweepSummary s = run_sweep(four, o);
  EXPECT_EQ(s.skipped, 2u);
  EXPECT_EQ(s.run, 2u);
  const std::string all = dir.read("out/results.jsonl");
  EXPECT_EQ(all.substr(0, first_two.size()), first_two);
  EXPECT_EQ(count_lines(all), 4u);
  EXPECT_EQ(all.find("\"hid\""), std::string::npos);
}

TEST(SweepRunner, ResumeRefusesTheResultsOfAnotherSweep) {
  testing::TempDir dir("sweep");
  run_sweep(parse_sweep(testing::small_sweep("[8]"), "small.yaml"), quiet(dir.file("out")));
  SweepOptions o = quiet(dir.file("out"));
  o.resume = true;
  const SweepSpec other = parse_sweep(testing::small_sweep("[12]"), "other.yaml");
  expect_contains(thrown_message<FormatError>([&] { run_sweep(other, o); }),
                  {"results.jsonl:1", "trial 0", "\"hidden\":8", "another sweep"});
}

TEST(SweepRunner, AStopRequestEndsTheSweepAfterTheCurrentTrial) {
  testing::TempDir dir("sweep");
  const SweepSpec sweep = parse_sweep(testing::small_sweep("[8, 16, 24]"), "small.yaml");
  std::atomic<bool> stop{true};
  SweepOptions o = quiet(dir.file("out"));
  o.stop = &stop;
  const SweepSummary s = run_sweep(sweep, o);
  EXPECT_TRUE(s.stopped);
  EXPECT_EQ(s.run, 0u);
  EXPECT_TRUE(std::filesystem::exists(dir.file("out/timeline.jsonl")));
}

TEST(SweepRunner, FiftyTrialsOfVariedSizesLeaveRssFlatAndTheLibraryAtZero) {
  if (testing::under_sanitizer()) GTEST_SKIP() << "RSS figures are meaningless under a sanitizer";
  testing::TempDir dir("sweep");
  const std::string text =
      "name: fifty\nmethod: random\nrun_cap: 50\nseed: 5\n"
      "metric: {name: test_accuracy, goal: maximize}\n"
      "parameters:\n"
      "  hidden: {min: 16, max: 512}\n"
      "  second: {values: [16, 64, 256]}\n"
      "  lr: {min: 0.0005, max: 0.01, distribution: log_uniform_values}\n"
      "model:\n"
      "  layers:\n"
      "    - Flatten\n"
      "    - {type: Dense, units: $hidden, activation: relu}\n"
      "    - {type: Dense, units: $second, activation: relu}\n"
      "    - {type: Dense, units: 10, activation: softmax}\n"
      "  optimizer: {type: adam, learning_rate: $lr}\n"
      "  loss: sparse_categorical_crossentropy\n"
      "  metrics: [accuracy]\n"
      "data: {train_samples: 1024, test_samples: 256}\n"
      "fit: {epochs: 1, batch_size: 64}\n";
  const SweepSpec sweep = parse_sweep(text, "fifty.yaml");
  const SweepSummary s = run_sweep(sweep, quiet(dir.file("out")));
  ASSERT_EQ(s.run, 50u);
  EXPECT_EQ(s.failed, 0u);
  EXPECT_EQ(s.leaked, 0u);
  ResultsStore store(dir.file("out"), sweep, /*resume=*/true);
  const auto& results = store.results();
  ASSERT_EQ(results.size(), 50u);
  std::size_t largest = 0, smallest = SIZE_MAX;
  for (const TrialResult& r : results) {
    EXPECT_EQ(r.memory.current_after_clear, 0u) << "trial " << r.index;
    EXPECT_EQ(r.memory.reserved_after_clear, 0u) << "trial " << r.index;
    largest = std::max(largest, r.memory.library_peak);
    smallest = std::min(smallest, r.memory.library_peak);
  }
  EXPECT_GT(largest, 2 * smallest);  // the sizes did vary
  const auto growth = static_cast<std::int64_t>(results.back().memory.rss_after) -
                      static_cast<std::int64_t>(results.front().memory.rss_after);
  EXPECT_LE(growth, static_cast<std::int64_t>(4 * testing::kMiB))
      << "RSS after the last trial grew " << growth << " bytes over the first";
}

}  // namespace
}  // namespace tabula::experiment
