// Trials in this process: a fresh session each, cleared whatever happens, with its figures.

#include "tabula/experiment/trial_runner.hpp"

#include <gtest/gtest.h>

#include "experiment/experiment_fixtures.hpp"
#include "support/process_memory.hpp"
#include "tabula/session/session.hpp"

namespace tabula::experiment {
namespace {

TEST(TrialRunner, ATrialTrainsInAFreshSessionAndGivesEveryByteBack) {
  const SweepSpec sweep = parse_sweep(testing::small_sweep("[16]"), "small.yaml");
  TrialRunner runner;
  const TrialResult r = runner.run(sweep.trials[0]);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_GT(r.metrics.at("test_accuracy"), 0.3);  // 10 classes: chance is 0.1
  EXPECT_EQ(r.history.at("loss").size(), 1u);
  EXPECT_GT(r.memory.library_peak, 0u);
  EXPECT_GT(r.memory.peak_by_category[Category::weights], 0u);
  EXPECT_GT(r.memory.peak_by_category[Category::optimizer], 0u);
  EXPECT_EQ(r.memory.current_after_clear, 0u);
  EXPECT_EQ(r.memory.reserved_after_clear, 0u);
  EXPECT_GT(r.memory.rss_baseline, 0u);
  EXPECT_FALSE(r.timeline.empty());
  EXPECT_EQ(r.seed, sweep.trials[0].spec.seed);
  // Only the runner's data session is left on the device.
  for (const SessionSummary& s : live_sessions())
    EXPECT_TRUE(s.name != "trial_0" || s.memory.current == 0) << s.name;
}

TEST(TrialRunner, AModelTooLargeForItsLimitFailsWithOutOfMemoryAndTheNextTrialRuns) {
  const SweepSpec sweep =
      parse_sweep(testing::small_sweep("[16]", "[64KiB, 0]"), "small.yaml");
  ASSERT_EQ(sweep.trials.size(), 2u);
  TrialRunner runner;
  const TrialResult failed = runner.run(sweep.trials[0]);
  EXPECT_FALSE(failed.ok);
  EXPECT_EQ(failed.error_type, "OutOfMemory");
  EXPECT_NE(failed.error.find("limit"), std::string::npos) << failed.error;
  EXPECT_EQ(failed.memory.current_after_clear, 0u);
  EXPECT_EQ(failed.memory.reserved_after_clear, 0u);
  const TrialResult next = runner.run(sweep.trials[1]);
  EXPECT_TRUE(next.ok) << next.error;
}

TEST(TrialRunner, TheSameTrialRunTwiceGivesTheSameFigures) {
  const SweepSpec sweep = parse_sweep(testing::small_sweep("[16]"), "small.yaml");
  TrialRunner runner;
  const TrialResult a = runner.run(sweep.trials[0]);
  const TrialResult b = runner.run(sweep.trials[0]);
  ASSERT_TRUE(a.ok && b.ok);
  EXPECT_EQ(a.metrics.at("loss"), b.metrics.at("loss"));
  EXPECT_EQ(a.metrics.at("test_accuracy"), b.metrics.at("test_accuracy"));
}

}  // namespace
}  // namespace tabula::experiment
