// Crash safety of the `tabula` program, killed outright (SIGKILL, as the OOM killer or a
// lost machine ends it) at random moments: a sweep keeps every trial it finished, leaves no
// process of its own running, and `--resume` finishes it without rewriting a record; a
// training never leaves a half-written weights file under the real name.
//
// The delays come from a seeded generator; the seed is in every failure message, and
// TABULA_KILL_SEED=<seed> repeats a run.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "experiment/detail/result_json.hpp"
#include "experiment/experiment_fixtures.hpp"
#include "support/process_memory.hpp"
#include "support/temp_dir.hpp"
#include "tabula/tabula.hpp"

extern char** environ;

namespace tabula {
namespace {

namespace fs = std::filesystem;
namespace ex = tabula::experiment;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

void sleep_seconds(double s) {
  if (s > 0) std::this_thread::sleep_for(std::chrono::duration<double>(s));
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> names_in(const std::string& directory) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(directory, ec))
    names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.rfind(prefix, 0) == 0;
}

// The seed of this test run: TABULA_KILL_SEED when set (to repeat a failure), else fresh.
std::uint64_t kill_seed() {
  if (const char* given = std::getenv("TABULA_KILL_SEED")) return std::strtoull(given, nullptr, 10);
  return (std::uint64_t{std::random_device{}()} << 32) ^ std::random_device{}();
}

// What a failure message says so that the same kills can be run again.
std::string repeat_hint(std::uint64_t seed) {
  return "seed " + std::to_string(seed) + " (TABULA_KILL_SEED=" + std::to_string(seed) +
         " repeats it)";
}

// The tabula program started in a process group of its own, so that what it starts (a
// trial's process) can still be found after it is killed; its output goes to `log`. Owns
// the process: one still running at the end is killed with its whole group and reaped.
class Launched {
 public:
  Launched(std::vector<std::string> args, const std::string& log) {
    args.insert(args.begin(), TABULA_CLI_PATH);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t files;
    posix_spawn_file_actions_init(&files);
    posix_spawn_file_actions_addopen(&files, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&files, STDOUT_FILENO, log.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&files, STDOUT_FILENO, STDERR_FILENO);
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attributes, 0);  // a group of its own, numbered as its pid
    start_ = Clock::now();
    const int rc = ::posix_spawn(&pid_, argv[0], &files, &attributes, argv.data(), environ);
    posix_spawnattr_destroy(&attributes);
    posix_spawn_file_actions_destroy(&files);
    if (rc != 0) throw std::runtime_error(std::string("cannot start ") + argv[0] + ": " + std::strerror(rc));
  }
  ~Launched() {
    ::kill(-pid_, SIGKILL);  // the group: nothing of a failed test keeps running
    if (!reaped_) wait();
  }
  Launched(const Launched&) = delete;
  Launched& operator=(const Launched&) = delete;

  pid_t group() const noexcept { return pid_; }
  double seconds() const { return seconds_since(start_); }

  bool running() {
    if (reaped_) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) != pid_) return true;
    reaped_ = true;
    status_ = status;
    return false;
  }
  /// SIGKILL to the program alone (not its group: what it started must die by itself),
  /// then reaped. It may have ended just before: killed() tells.
  void kill() {
    if (running()) ::kill(pid_, SIGKILL);
    wait();
  }
  void wait() {
    if (reaped_) return;
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    reaped_ = true;
    status_ = status;
  }
  bool killed() const { return WIFSIGNALED(status_) && WTERMSIG(status_) == SIGKILL; }
  int exit_code() const { return WIFEXITED(status_) ? WEXITSTATUS(status_) : -1; }
  std::string how_it_ended() const {
    if (killed()) return "killed";
    if (WIFSIGNALED(status_)) return "died of signal " + std::to_string(WTERMSIG(status_));
    return "exited with " + std::to_string(exit_code());
  }

 private:
  pid_t pid_ = -1;
  Clock::time_point start_;
  bool reaped_ = false;
  int status_ = 0;
};

// The processes of `group` still alive, as "pid (name)". Zombies are dead, only waiting to
// be reaped (in a container, nobody may ever reap an orphan's zombie).
std::vector<std::string> live_members(pid_t group) {
  std::vector<std::string> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string stat;
    std::getline(std::ifstream(entry.path() / "stat"), stat);
    const std::size_t end_of_name = stat.rfind(')');
    if (end_of_name == std::string::npos) continue;
    std::istringstream fields(stat.substr(end_of_name + 1));
    char state = '?';
    long parent = 0, pgrp = 0;
    fields >> state >> parent >> pgrp;
    if (pgrp == group && state != 'Z' && state != 'X') found.push_back(stat.substr(0, end_of_name + 1));
  }
  return found;
}

// Waits up to `limit` seconds for the processes of `group` to end; those still alive.
std::vector<std::string> survivors(pid_t group, double limit) {
  const auto start = Clock::now();
  std::vector<std::string> alive = live_members(group);
  while (!alive.empty() && seconds_since(start) < limit) {
    sleep_seconds(0.01);
    alive = live_members(group);
  }
  return alive;
}

std::string joined(const std::vector<std::string>& items) {
  std::string s;
  for (const auto& i : items) s += (s.empty() ? "" : ", ") + i;
  return s;
}

// results.jsonl as its whole lines and what follows the last newline: a line torn by the
// kill, which --resume drops (empty when the file ends cleanly).
struct ResultsText {
  std::vector<std::string> lines;
  std::string torn;
};

ResultsText split_results(const std::string& text) {
  ResultsText r;
  std::size_t start = 0;
  for (std::size_t nl = text.find('\n'); nl != std::string::npos; nl = text.find('\n', start)) {
    r.lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  r.torn = text.substr(start);
  return r;
}

// The end of a log, for a failure message.
std::string tail_of(const std::string& log) {
  const std::string text = read_file(log);
  return text.size() > 4000 ? "..." + text.substr(text.size() - 4000) : text;
}

std::size_t lines_in(const std::string& text) {
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

bool whole_report(const std::string& html) {
  const std::size_t end = html.rfind("</html>");
  return end != std::string::npos && html.find_first_not_of(" \n", end + 7) == std::string::npos;
}

// What one sweep run under kills must show in its results directory.
struct Expected {
  std::string isolation;
  std::size_t planned = 0;
  std::vector<std::string> earlier;  // the records of the previous kill: never rewritten
};

// "" when `out` is as a sweep killed at any moment may leave it: whole records of trials
// 0, 1, ... k-1 in their order (and at most one torn last line), each a valid record of a
// trial that ran to its end in `isolation`, beginning byte for byte with `earlier`; views
// that are whole and hold k or k-1 trials (they are rewritten after each record); nothing
// else but the views' temporaries. Sets `records` to the k records.
std::string killed_sweep_problems(const std::string& out, const Expected& e,
                                  std::vector<std::string>& records) {
  std::ostringstream problems;
  const ResultsText results = split_results(read_file(out + "/results.jsonl"));
  records = results.lines;
  if (records.size() > e.planned)
    problems << records.size() << " records for " << e.planned << " trials; ";
  for (std::size_t i = 0; i < records.size(); ++i) {
    try {
      const ex::TrialResult r = ex::detail::result_from_json(nlohmann::json::parse(records[i]));
      if (r.index != static_cast<int>(i))
        problems << "record " << i << " is of trial " << r.index << " (a duplicate or a gap); ";
      if (!r.ok) problems << "record " << i << " failed: " << r.error_type << ": " << r.error << "; ";
      if (r.isolation != e.isolation)
        problems << "record " << i << " ran with isolation " << r.isolation << "; ";
    } catch (const std::exception& error) {
      problems << "record " << i << " is not a whole record (" << error.what() << "): "
               << records[i].substr(0, 80) << "; ";
    }
  }
  if (records.size() < e.earlier.size() ||
      !std::equal(e.earlier.begin(), e.earlier.end(), records.begin()))
    problems << "the " << e.earlier.size() << " records of the previous kill were rewritten; ";

  const std::size_t k = records.size();
  for (const std::string& name : names_in(out)) {
    if (name == "results.jsonl" || name == "timeline.jsonl") continue;
    if (name == "summary.csv" || name == "report.html") {
      const std::string text = read_file(out + "/" + name);
      if (name == "report.html" && !whole_report(text)) problems << "report.html is not whole; ";
      if (name == "summary.csv") {
        const std::size_t rows = lines_in(text) == 0 ? 0 : lines_in(text) - 1;
        if (text.empty() || text.back() != '\n' || rows > k || rows + 1 < k)
          problems << "summary.csv holds " << rows << " rows (torn?) for " << k << " records; ";
      }
      continue;
    }
    if (starts_with(name, "summary.csv.tmp") || starts_with(name, "report.html.tmp")) continue;
    problems << "unexpected file " << name << "; ";
  }
  if (k == 0 && fs::exists(out + "/summary.csv")) problems << "a summary of no records; ";
  if (lines_in(read_file(out + "/timeline.jsonl")) > k) problems << "more timelines than records; ";
  return problems.str();
}

// A sweep of the kill test: its file, its trials, and how long an unkilled run takes.
struct KillSweep {
  std::string path;
  std::size_t trials = 0;
  double seconds = 0;
};

std::string sweep_text(std::size_t trials) {
  std::string hidden = "[";
  for (std::size_t i = 0; i < trials; ++i) hidden += (i ? ", " : "") + std::to_string(8 + i);
  return testing::small_sweep(hidden + "]");
}

std::vector<std::string> sweep_args(const KillSweep& s, const std::string& out,
                                    const std::string& isolation, bool resume) {
  std::vector<std::string> args = {"sweep", s.path, "--isolate", isolation, "--out", out};
  if (resume) args.push_back("--resume");
  return args;
}

// When a run is killed. Each kind lands in a different part of the sweep's life.
enum class KillAt {
  early,         // before the first trial can have ended: start-up, data, the first fit
  anywhere,      // uniformly over the whole sweep
  after_record,  // just after a chosen record is appended: the timeline's and views' writes
};

const char* kind_name(KillAt k) {
  switch (k) {
    case KillAt::early: return "early";
    case KillAt::anywhere: return "anywhere";
    case KillAt::after_record: return "after a record";
  }
  return "?";
}

// Runs the program and kills it as `at` says, with delays drawn from `random` for a sweep
// that takes `duration` seconds unkilled; returns what was done, for the failure message.
std::string run_and_kill(Launched& run, KillAt at, double duration, std::size_t trials,
                         const std::string& results, std::mt19937_64& random) {
  std::ostringstream what;
  if (at == KillAt::after_record) {
    const std::size_t record =
        std::uniform_int_distribution<std::size_t>(1, trials - 1)(random);
    const double extra = std::uniform_real_distribution<double>(0, 0.002)(random);
    while (run.running() && lines_in(read_file(results)) < record) sleep_seconds(0.0002);
    sleep_seconds(extra);
    what << "killed " << extra * 1e3 << " ms after record " << record << " appeared";
  } else {
    const double limit = at == KillAt::early ? duration / static_cast<double>(trials) : duration;
    const double delay = std::uniform_real_distribution<double>(0, limit)(random);
    sleep_seconds(delay - run.seconds());
    what << "killed at " << delay << " s (" << kind_name(at) << ")";
  }
  run.kill();
  what << ", " << run.how_it_ended();
  return what.str();
}

// Kills `tabula sweep` 20 times at random moments, in both isolation modes, some of the
// resumes killed again, and checks after every kill what a crash may leave and, at the end,
// that --resume completes the sweep with the earlier records untouched.
TEST(SweepKilled, TwentyKillsAtRandomPointsLoseNoFinishedTrialAndResumeCompletesTheRest) {
  const std::uint64_t seed = kill_seed();
  SCOPED_TRACE(repeat_hint(seed));
  std::mt19937_64 random(seed);
  testing::TempDir dir("kill");
  const std::string log = dir.file("log");
  // A trial in a process of its own costs a start-up (exec, the sweep file, the data), so
  // that sweep is shorter; both are shorter under a sanitizer. Still 20 kills.
  const bool slow = testing::under_sanitizer();
  std::map<std::string, KillSweep> sweeps;
  sweeps["none"].trials = slow ? 4 : 8;
  sweeps["process"].trials = slow ? 3 : 4;
  // An unkilled run in each mode: that it passes, and how long the sweep takes.
  for (auto& [isolation, sweep] : sweeps) {
    sweep.path = dir.write(isolation + ".yaml", sweep_text(sweep.trials));
    const std::string out = dir.file("whole-" + isolation);
    Launched run(sweep_args(sweep, out, isolation, false), log);
    run.wait();
    sweep.seconds = run.seconds();
    ASSERT_EQ(run.exit_code(), 0) << tail_of(log);
    std::vector<std::string> records;
    EXPECT_EQ(killed_sweep_problems(out, {isolation, sweep.trials, {}}, records), "");
    ASSERT_EQ(records.size(), sweep.trials);
  }

  const KillAt kinds[] = {KillAt::early, KillAt::anywhere, KillAt::after_record, KillAt::anywhere,
                          KillAt::after_record};
  std::size_t torn = 0, before_any_record = 0, completed_before_kill = 0;
  for (int r = 0; r < 20; ++r) {
    const std::string isolation = r % 2 == 0 ? "none" : "process";
    const KillSweep& sweep = sweeps[isolation];
    const std::size_t trials = sweep.trials;
    const std::string out = dir.file("run" + std::to_string(r));
    // Some runs are killed again while resuming: crash after crash.
    const int kills = 1 + (r % 3 == 2 ? (r % 2 == 0 ? 1 : 2) : 0);
    Expected expected{isolation, trials, {}};
    std::string story = "run " + std::to_string(r) + " (" + isolation + "):";
    for (int k = 0; k < kills; ++k) {
      Launched run(sweep_args(sweep, out, isolation, k > 0), log);
      story += " " + run_and_kill(run, k == 0 ? kinds[r % 5] : KillAt::anywhere,
                                  sweep.seconds, trials, out + "/results.jsonl", random) + ";";
      SCOPED_TRACE(story);
      if (!run.killed()) {
        ASSERT_EQ(run.exit_code(), 0) << tail_of(log);
        ++completed_before_kill;
      }
      // The trial's process dies with the sweep: nothing goes on running, nothing writes.
      const std::string results = read_file(out + "/results.jsonl");
      const std::vector<std::string> alive = survivors(run.group(), 2.0);
      EXPECT_TRUE(alive.empty()) << "still running after the sweep was killed: " << joined(alive);
      EXPECT_EQ(read_file(out + "/results.jsonl"), results) << "written after the kill";

      std::vector<std::string> records;
      const std::string problems = killed_sweep_problems(out, expected, records);
      ASSERT_EQ(problems, "") << "results.jsonl:\n" << results;
      if (!split_results(results).torn.empty()) ++torn;
      if (k == 0 && records.empty()) ++before_any_record;
      expected.earlier = records;
    }

    SCOPED_TRACE(story);
    const std::string resume_log = dir.file("resume.log");
    fs::remove(resume_log);
    Launched resume(sweep_args(sweep, out, isolation, true), resume_log);
    resume.wait();
    ASSERT_EQ(resume.exit_code(), 0) << tail_of(resume_log);
    const std::size_t done = expected.earlier.size();
    std::string said = std::to_string(trials - done) + " of " + std::to_string(trials) + " trials run now";
    if (done > 0) said += ", " + std::to_string(done) + " already in the results";
    EXPECT_NE(read_file(resume_log).find(said), std::string::npos) << tail_of(resume_log);
    std::vector<std::string> records;
    EXPECT_EQ(killed_sweep_problems(out, expected, records), "");
    EXPECT_EQ(records.size(), trials);
    EXPECT_TRUE(split_results(read_file(out + "/results.jsonl")).torn.empty());
    EXPECT_EQ(lines_in(read_file(out + "/summary.csv")), trials + 1);
    EXPECT_TRUE(whole_report(read_file(out + "/report.html")));
    for (const std::string& name : names_in(out))
      EXPECT_EQ(name.find(".tmp"), std::string::npos) << "a temporary left behind: " << name;
  }
  // What the kills hit, for a person reading the log (the seed decides).
  std::printf("seed %llu, 20 runs: %zu killed before any record, %zu ended before their kill, "
              "%zu torn last lines; unkilled: %zu trials %.2f s (none), %zu trials %.2f s "
              "(process)\n", static_cast<unsigned long long>(seed), before_any_record, completed_before_kill, torn, sweeps["none"].trials,
              sweeps["none"].seconds, sweeps["process"].trials, sweeps["process"].seconds);
}

// A trial of many seconds in its own process: the sweep is killed while it runs, and the
// trial's process must end with it, not train on as an orphan that nobody will read.
TEST(SweepKilled, ATrialsProcessDiesWithItsKilledSweep) {
  testing::TempDir dir("kill");
  std::string text = testing::small_sweep("[8]");
  text.replace(text.find("epochs: 1"), 9, "epochs: 1000");
  const std::string sweep = dir.write("s.yaml", text);
  Launched run({"sweep", sweep, "--isolate", "process", "--out", dir.file("out")}, dir.file("log"));
  // Until the trial's process is there (the group holds more than the sweep).
  const auto start = Clock::now();
  while (live_members(run.group()).size() < 2 && run.running() && seconds_since(start) < 60)
    sleep_seconds(0.01);
  ASSERT_EQ(live_members(run.group()).size(), 2u) << tail_of(dir.file("log"));
  sleep_seconds(0.2);  // into its training
  run.kill();
  ASSERT_TRUE(run.killed());
  const std::vector<std::string> alive = survivors(run.group(), 2.0);
  EXPECT_TRUE(alive.empty()) << "the trial's process outlived its sweep: " << joined(alive);
  EXPECT_EQ(read_file(dir.file("out/results.jsonl")), "");
}

// The files of `directory` other than the weights, with their sizes.
std::map<std::string, std::uintmax_t> temporaries_in(const std::string& directory) {
  std::map<std::string, std::uintmax_t> found;
  for (const std::string& name : names_in(directory)) {
    std::error_code ec;
    if (name != "model.safetensors") found[name] = fs::file_size(directory + "/" + name, ec);
  }
  return found;
}

// What kills leave beside a file (its writers' temporaries, named with their pid) goes once
// the writer is gone; a live writer's temporary and other files stay.
TEST(StaleTemporaries, OnlyThoseOfWritersThatAreGoneAreRemoved) {
  testing::TempDir dir("kill");
  const pid_t gone = ::fork();
  if (gone == 0) _exit(0);
  ASSERT_GT(gone, 0);
  ASSERT_EQ(::waitpid(gone, nullptr, 0), gone);
  const std::string dead = std::to_string(gone), alive = std::to_string(::getppid());
  for (const std::string& name : std::vector<std::string>{
           "report.html", "report.html.tmp." + dead, "report.html.tmp." + alive, "report.html.tmpl",
           "report.html.tmp.x" + dead, "summary.csv.tmp." + dead,
           "model.safetensors.tmp-" + dead + "-3"})
    dir.write(name, "x");
  EXPECT_EQ(ex::remove_stale_temporaries(dir.file("report.html")), 1u);
  EXPECT_EQ(ex::remove_stale_temporaries(dir.file("model.safetensors")), 1u);
  EXPECT_EQ(names_in(dir.path().string()),
            (std::vector<std::string>{"report.html", "report.html.tmp." + alive,
                                      "report.html.tmp.x" + dead, "report.html.tmpl",
                                      "summary.csv.tmp." + dead}));
  EXPECT_EQ(ex::remove_stale_temporaries(dir.file("nowhere/report.html")), 0u);
}

// "" when `path` is a whole weights file of `spec`'s model: load_weights reads it all.
std::string weights_problem(const ex::TrialSpec& spec, const std::string& path) {
  Session session({.name = "check"});
  SessionScope use(session);
  try {
    Sequential model = spec.make_model();
    model.build({28, 28});
    model.load_weights(path);
    return "";
  } catch (const std::exception& e) {
    return e.what();
  }
}

// Kills `tabula train` 20 times, half of them at random over its whole run and half just as
// its weights file is being written (a model of 3.3 M weights, 13 MB; 0.8 M under a
// sanitizer), and checks that the real name is always absent or a whole file, and that once
// there it never goes away.
TEST(TrainKilled, TwentyKillsNeverLeaveAHalfWrittenWeightsFileUnderItsRealName) {
  const std::uint64_t seed = kill_seed();
  SCOPED_TRACE(repeat_hint(seed));
  std::mt19937_64 random(seed);
  testing::TempDir dir("kill");
  const std::string units = testing::under_sanitizer() ? "1024" : "4096";
  const std::string model = dir.write(
      "m.yaml",
      "model:\n  layers: [Flatten, {type: Dense, units: " + units + ", activation: relu},"
      " {type: Dense, units: 10, activation: softmax}]\n"
      "  loss: sparse_categorical_crossentropy\n"
      "data: {train_samples: 64, test_samples: 64}\nfit: {epochs: 1, batch_size: 64}\n");
  const ex::TrialSpec spec = ex::load_trial_spec(model);
  const std::string out = dir.file("out"), weights = out + "/model.safetensors";
  const std::string log = dir.file("log");
  const auto train = [&] { return std::vector<std::string>{"train", model, "-q", "--out", out}; };

  // An unkilled run: how long it takes, and when the weights' write begins and ends (the
  // first file in the directory is the temporary; the real name appears with the rename).
  double duration = 0, write_begins = -1, write_ends = -1;
  {
    Launched run(train(), log);
    while (run.running()) {
      const std::vector<std::string> names = names_in(out);
      if (write_begins < 0 && !names.empty()) write_begins = run.seconds();
      if (write_ends < 0 && fs::exists(weights)) write_ends = run.seconds();
      sleep_seconds(0.0002);
    }
    duration = run.seconds();
    ASSERT_EQ(run.exit_code(), 0) << tail_of(log);
    ASSERT_EQ(weights_problem(spec, weights), "");
    ASSERT_EQ(names_in(out), std::vector<std::string>{"model.safetensors"});
    fs::copy_file(weights, dir.file("whole.safetensors"));
  }
  const double write_time =
      write_begins >= 0 && write_ends > write_begins ? write_ends - write_begins : 0.001;

  std::size_t left_temporary = 0, whole = 0;
  for (int r = 0; r < 20; ++r) {
    // Every fourth run starts afresh: a first save, or (every eighth) a replacement of a
    // whole file; the others go on from what the kills before them left.
    if (r % 4 == 0) {
      fs::remove_all(out);
      if (r % 8 == 4) {
        fs::create_directories(out);
        fs::copy_file(dir.file("whole.safetensors"), weights);
      }
    }
    const bool had_weights = fs::exists(weights);
    Launched run(train(), log);
    std::string story = "run " + std::to_string(r) + ": ";
    if (r % 2 == 0) {
      const double delay = std::uniform_real_distribution<double>(0, duration)(random);
      sleep_seconds(delay - run.seconds());
      story += "killed at " + std::to_string(delay) + " s";
    } else {
      // As the write begins: a temporary appears, or one a kill left goes or changes size.
      // Half of these kills land in the first 2 ms, in the middle of the data.
      const double within = r % 4 == 1 ? 0.002 : 1.5 * write_time;
      const double extra = std::uniform_real_distribution<double>(0, within)(random);
      const std::map<std::string, std::uintmax_t> before = temporaries_in(out);
      while (run.running() && temporaries_in(out) == before) sleep_seconds(0.0001);
      sleep_seconds(extra);
      story += "killed " + std::to_string(extra * 1e3) + " ms into the write";
    }
    run.kill();
    SCOPED_TRACE(story + ", " + run.how_it_ended());
    if (!run.killed()) {
      EXPECT_EQ(run.exit_code(), 0) << tail_of(log);
    }

    // save_weights names its temporary "<path>.tmp-<pid>-<n>".
    const std::string own = "model.safetensors.tmp-" + std::to_string(run.group()) + "-";
    for (const std::string& name : names_in(out)) {
      if (name == "model.safetensors") continue;
      EXPECT_TRUE(starts_with(name, "model.safetensors.tmp"))
          << "a file under a name that is not a temporary: " << name;
      if (starts_with(name, own)) ++left_temporary;
    }
    if (had_weights) {
      EXPECT_TRUE(fs::exists(weights)) << "the weights went away while replaced";
    }
    if (fs::exists(weights)) {
      EXPECT_EQ(weights_problem(spec, weights), "") << "a half-written file under the real name";
      ++whole;
    }
  }
  // Proof that kills landed inside the write, when the write is long enough to be seen.
  if (write_begins >= 0 && write_time > 0.005) {
    EXPECT_GE(left_temporary, 1u) << "no kill landed while the weights were being written";
  }

  // A run after all that saves, and removes the temporaries the kills left.
  Launched run(train(), log);
  run.wait();
  ASSERT_EQ(run.exit_code(), 0) << tail_of(log);
  EXPECT_EQ(names_in(out), std::vector<std::string>{"model.safetensors"});
  EXPECT_EQ(weights_problem(spec, weights), "");
  std::printf("seed %llu, 20 train runs: %zu left a temporary, %zu had whole weights after "
              "the kill; unkilled %.2f s, the write %.1f ms\n", static_cast<unsigned long long>(seed),
              left_temporary, whole, duration, write_time * 1e3);
}

}  // namespace
}  // namespace tabula
