// The `tabula` program end to end: it is run as a user runs it, and its files are read back.

#include <gtest/gtest.h>

#include <filesystem>

#include "experiment/experiment_fixtures.hpp"
#include "support/command.hpp"
#include "support/expect_error.hpp"
#include "support/process_memory.hpp"
#include "support/temp_dir.hpp"

namespace tabula {
namespace {

using testing::expect_contains;

using ProgramRun = testing::CommandResult;

// Runs the program with `args` (a shell-quoted string) and collects what it prints.
ProgramRun tabula_cli(const std::string& args) {
  return testing::run_command(std::string("'") + TABULA_CLI_PATH + "' " + args + " 2>&1");
}

std::size_t count(const std::string& text, const std::string& part) {
  return testing::count_occurrences(text, part);
}

class TabulaProgram : public ::testing::TestWithParam<std::string> {};

TEST_P(TabulaProgram, ASweepRecordsAFailedTrialAndGoesOn) {
  testing::TempDir dir("cli");
  const std::string sweep = dir.write("s.yaml", testing::small_sweep("[16]", "[0, 64KiB, 0]"));
  const ProgramRun run = tabula_cli("sweep '" + sweep + "' --isolate " + GetParam() + " --out '" +
                             dir.file("out") + "'");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  expect_contains(run.output, {"Trial 0", "Trial 2", "FAILED (OutOfMemory)", "3 of 3 trials",
                               "1 failed"});
  // ASan's quarantine keeps freed memory resident, so only a plain build can judge the RSS.
  if (!testing::under_sanitizer()) expect_contains(run.output, {"0 left memory behind"});
  const std::string results = dir.read("out/results.jsonl");
  EXPECT_EQ(count(results, "\n"), 3u);
  EXPECT_EQ(count(results, "\"status\":\"ok\""), 2u);
  EXPECT_EQ(count(results, "\"type\":\"OutOfMemory\""), 1u);
  EXPECT_EQ(count(results, "\"isolation\":\"" + GetParam() + "\""), 3u);
  EXPECT_FALSE(dir.read("out/report.html").empty());
  EXPECT_EQ(count(dir.read("out/summary.csv"), "\n"), 4u);
}

INSTANTIATE_TEST_SUITE_P(EachIsolation, TabulaProgram, ::testing::Values("none", "process"));

TEST(TabulaProgramProcess, TrialsRunInProcessesOfTheirOwn) {
  testing::TempDir dir("cli");
  const std::string sweep = dir.write("s.yaml", testing::small_sweep("[8, 16]"));
  const ProgramRun run = tabula_cli("sweep '" + sweep + "' --isolate process -q --out '" + dir.file("out") + "'");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const std::string results = dir.read("out/results.jsonl");
  const auto pid_of = [&](std::size_t line) {
    std::size_t at = 0;
    for (std::size_t i = 0; i < line; ++i) at = results.find('\n', at) + 1;
    const std::size_t p = results.find("\"pid\":", at) + 6;
    return std::stol(results.substr(p));
  };
  EXPECT_NE(pid_of(0), pid_of(1));
}

TEST(TabulaProgramProcess, ATrialPastItsTimeoutIsKilledAndRecorded) {
  testing::TempDir dir("cli");
  // The most epochs a sweep may ask for: minutes of training (1000 once took 0.43 s).
  const std::string sweep = dir.write(
      "s.yaml", testing::small_sweep("[8]").replace(testing::small_sweep("[8]").find("epochs: 1"),
                                                    9, "epochs: 1000000"));
  const ProgramRun run = tabula_cli("sweep '" + sweep + "' --isolate process --timeout 1 -q --out '" +
                             dir.file("out") + "'");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  expect_contains(dir.read("out/results.jsonl"),
                  {"\"status\":\"failed\"", "\"type\":\"timeout\"", "timeout of 1"});
}

TEST(TabulaProgramSignals, CtrlCStopsAfterTheCurrentTrialWithEverythingWritten) {
  testing::TempDir dir("cli");
  // Trials of 500 epochs (~0.2 s here): the signal must land while one runs, and 16 trials of
  // one epoch took less (a few ms each) than the 50 ms poll below.
  std::string yaml =
      testing::small_sweep("[8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23]");
  yaml.replace(yaml.find("epochs: 1"), 9, "epochs: 500");
  const std::string sweep = dir.write("s.yaml", yaml);
  const std::string out = dir.file("out");
  // SIGINT as Ctrl-C sends it, once the first trial is recorded (a second trial is running).
  const ProgramRun run = testing::run_command(
      std::string("'") + TABULA_CLI_PATH + "' sweep '" + sweep + "' --out '" + out +
      "' > '" + dir.file("log") + "' 2>&1 & pid=$!; "
      "for i in $(seq 600); do [ -s '" + out + "/results.jsonl' ] && break; sleep 0.05; done; "
      "kill -INT $pid; wait $pid; echo \"exit=$?\"");
  EXPECT_NE(run.output.find("exit=130"), std::string::npos) << run.output << dir.read("log");
  const std::string log = dir.read("log");
  expect_contains(log, {"stopping after the current trial", "(stopped by Ctrl-C)"});
  const std::size_t recorded = count(dir.read("out/results.jsonl"), "\n");
  EXPECT_GE(recorded, 1u);
  EXPECT_LT(recorded, 16u);
  EXPECT_EQ(count(dir.read("out/summary.csv"), "\n"), recorded + 1);  // every record in the views
  EXPECT_NE(dir.read("out/report.html").find("</html>"), std::string::npos);
}

TEST(TabulaProgramErrors, AMalformedSweepFileExitsNonZeroAndRunsNothing) {
  testing::TempDir dir("cli");
  const std::string sweep = dir.write("bad.yaml", testing::small_sweep("[8]", "", "dropout: 0.5\n"));
  const ProgramRun run = tabula_cli("sweep '" + sweep + "' --out '" + dir.file("out") + "'");
  EXPECT_NE(run.exit_code, 0);
  expect_contains(run.output, {"bad.yaml:", "unknown key 'dropout'", "expected one of"});
  EXPECT_FALSE(std::filesystem::exists(dir.file("out")));
}

TEST(TabulaProgramErrors, AMissingSweepFileIsNamed) {
  const ProgramRun run = tabula_cli("sweep /nonexistent/sweep.yaml");
  EXPECT_NE(run.exit_code, 0);
  expect_contains(run.output, {"/nonexistent/sweep.yaml"});
}

TEST(TabulaProgramErrors, ResultsAreKeptUnlessResumeIsAsked) {
  testing::TempDir dir("cli");
  const std::string sweep = dir.write("s.yaml", testing::small_sweep("[8]"));
  const std::string out = " --out '" + dir.file("out") + "'";
  ASSERT_EQ(tabula_cli("sweep '" + sweep + "' -q" + out).exit_code, 0);
  const std::string before = dir.read("out/results.jsonl");
  const ProgramRun again = tabula_cli("sweep '" + sweep + "' -q" + out);
  EXPECT_NE(again.exit_code, 0);
  expect_contains(again.output, {"already holds results", "--resume"});
  EXPECT_EQ(dir.read("out/results.jsonl"), before);
  const ProgramRun resumed = tabula_cli("sweep '" + sweep + "' --resume" + out);
  EXPECT_EQ(resumed.exit_code, 0) << resumed.output;
  expect_contains(resumed.output, {"0 of 1 trials run now, 1 already in the results"});
}

TEST(TabulaProgramVerbs, EveryVerbHasHelp) {
  for (const std::string verb : {"demo", "sweep", "train", "memory"}) {
    const ProgramRun run = tabula_cli(verb + " --help");
    EXPECT_EQ(run.exit_code, 0) << verb;
    expect_contains(run.output, {"Usage:", verb});
  }
}

TEST(TabulaProgramVerbs, TrainSavesTheWeightsAndReportsTheMemory) {
  testing::TempDir dir("cli");
  const std::string model = dir.write(
      "m.yaml",
      "model:\n  layers: [Flatten, {type: Dense, units: 16, activation: relu},"
      " {type: Dense, units: 10, activation: softmax}]\n"
      "  loss: sparse_categorical_crossentropy\n  metrics: [accuracy]\n"
      "data: {train_samples: 512, test_samples: 128}\nfit: {epochs: 1, batch_size: 64}\n");
  const ProgramRun run = tabula_cli("train '" + model + "' --out '" + dir.file("out") + "'");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  expect_contains(run.output, {"Total params", "test_accuracy:", "after clear 0 B in use, 0 B reserved"});
  EXPECT_TRUE(std::filesystem::exists(dir.file("out/model.safetensors")));
  EXPECT_FALSE(std::filesystem::exists(dir.file("out/model.safetensors.tmp")));
}

TEST(TabulaProgramVerbs, MemoryShowsWhatAModelHoldsAndThatClearingGivesItBack) {
  testing::TempDir dir("cli");
  const std::string model = dir.write(
      "m.yaml", "model:\n  layers: [Flatten, {type: Dense, units: 256}]\n  loss: mse\n");
  const ProgramRun run = tabula_cli("memory '" + model + "'");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  expect_contains(run.output, {"Devices:", "cpu", "Sessions:", "memory", "dense/kernel",
                               "weights", "After clear(): in use 0 B, reserved 0 B"});
  const ProgramRun plain = tabula_cli("memory");
  EXPECT_EQ(plain.exit_code, 0) << plain.output;
  expect_contains(plain.output, {"Process: RSS", "Pools:", "Sessions: 0 live"});
}

}  // namespace
}  // namespace tabula
