#include "tabula/experiment/sweep_runner.hpp"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <memory>

#include "tabula/core/errors.hpp"
#include "tabula/experiment/trial_process.hpp"
#include "tabula/experiment/trial_runner.hpp"
#include "tabula/memory/memory_info.hpp"

namespace tabula::experiment {

namespace {

std::string clock_text(double seconds) {
  const long s = std::lround(seconds);
  char text[32];
  if (s >= 3600) std::snprintf(text, sizeof text, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  else std::snprintf(text, sizeof text, "%ld:%02ld", s / 60, s % 60);
  return text;
}

std::string signed_bytes(std::int64_t b) {
  // Appended rather than "-" + text: GCC 12 at -O3 warns (-Wrestrict) on the latter.
  std::string s(1, b < 0 ? '-' : '+');
  s += format_bytes(static_cast<std::size_t>(b < 0 ? -b : b));
  return s;
}

// The sweep's own progress: a bar with the ETA on a terminal, a plain line otherwise.
class SweepProgress {
 public:
  SweepProgress(std::FILE* out, int verbose, std::size_t total)
      : out_(out), verbose_(verbose), total_(total), terminal_(verbose == 1 && ::isatty(::fileno(out))),
        start_(std::chrono::steady_clock::now()) {}

  bool terminal() const { return terminal_; }

  void begin(const PlannedTrial& t, std::size_t done) {
    if (verbose_ == 0) return;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    std::string eta = done_here_ ? clock_text(elapsed / static_cast<double>(done_here_) *
                                              static_cast<double>(total_ - done))
                                 : "?";
    if (terminal_) {
      constexpr int kBar = 24;
      const int filled = total_ ? static_cast<int>(kBar * done / total_) : kBar;
      std::string bar(static_cast<std::size_t>(filled), '=');
      if (filled < kBar) bar += '>' + std::string(static_cast<std::size_t>(kBar - filled - 1), '.');
      std::fprintf(out_, "\033[1mSweep [%s] %zu/%zu trials, ETA %s\033[0m\n", bar.c_str(), done,
                   total_, eta.c_str());
    }
    std::fprintf(out_, "Trial %d (%zu/%zu, ETA %s): %s\n", t.index, done + 1, total_, eta.c_str(),
                 to_string(t.parameters).empty() ? "(no parameters)" : to_string(t.parameters).c_str());
    std::fflush(out_);
  }

  void end(const TrialResult& r, const std::string& metric) {
    ++done_here_;
    if (verbose_ == 0) return;
    const auto& m = r.memory;
    if (r.ok) {
      const auto it = r.metrics.find(metric);
      std::fprintf(out_, "  ok: %s %.4f, %.1f s, RSS %s (%s vs baseline), library %s after clear%s\n",
                   metric.c_str(), it == r.metrics.end() ? NAN : it->second, r.seconds,
                   format_bytes(m.rss_after).c_str(), signed_bytes(m.rss_growth()).c_str(),
                   format_bytes(m.current_after_clear + m.reserved_after_clear).c_str(),
                   m.leaked() ? "  ** LEFT MEMORY BEHIND **" : "");
    } else {
      std::string first_line = r.error.substr(0, r.error.find('\n'));
      std::fprintf(out_, "  FAILED (%s): %s\n", r.error_type.c_str(), first_line.c_str());
    }
    std::fflush(out_);
  }

 private:
  std::FILE* out_;
  int verbose_;
  std::size_t total_;
  bool terminal_;
  std::chrono::steady_clock::time_point start_;
  std::size_t done_here_ = 0;
};

}  // namespace

std::optional<TrialResult> best_result(const SweepSpec& sweep, const std::vector<TrialResult>& results) {
  const TrialResult* best = nullptr;
  double best_value = 0;
  for (const TrialResult& r : results) {
    if (!r.ok) continue;
    const auto it = r.metrics.find(sweep.metric.name);
    if (it == r.metrics.end() || std::isnan(it->second)) continue;
    const bool better = sweep.metric.maximize ? it->second > best_value : it->second < best_value;
    if (best == nullptr || better) best = &r, best_value = it->second;
  }
  if (best == nullptr) return std::nullopt;
  return *best;
}

SweepSummary run_sweep(const SweepSpec& sweep, const SweepOptions& options) {
  if (options.isolation == Isolation::process && options.trial_command.empty())
    throw InvalidArgument("run_sweep: process isolation needs options.trial_command");
  ResultsStore store(options.out_dir, sweep, options.resume);
  const std::size_t tolerance = options.memory_tolerance.value_or(sweep.memory_tolerance);

  SweepSummary summary;
  summary.planned = sweep.trials.size();
  summary.out_dir = options.out_dir;
  std::vector<const PlannedTrial*> pending;
  for (const PlannedTrial& t : sweep.trials) {
    if (store.contains(t.index)) ++summary.skipped;
    else pending.push_back(&t);
  }

  SweepProgress progress(options.out, options.verbose, summary.planned);
  const int fit_verbose = options.verbose == 0 ? 0 : (progress.terminal() ? 1 : 2);
  std::unique_ptr<TrialRunner> runner;
  if (options.isolation == Isolation::none)
    runner = std::make_unique<TrialRunner>(TrialRunnerOptions{
        .memory_tolerance = tolerance, .verbose = fit_verbose, .out = options.out});

  const double clock_origin = store.elapsed();
  const auto start = std::chrono::steady_clock::now();
  for (const PlannedTrial* trial : pending) {
    if (options.stop != nullptr && options.stop->load()) {
      summary.stopped = true;
      break;
    }
    progress.begin(*trial, summary.skipped + summary.run);
    if (runner) runner->prepare(*trial);  // data and warm-up before the trial's clock starts
    const double started =
        clock_origin + std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    TrialResult r;
    if (runner) {
      r = runner->run(*trial);
    } else {
      r = run_trial_in_child(sweep.path, *trial,
                             {.command = options.trial_command,
                              .timeout_seconds = options.trial_timeout,
                              .verbose = fit_verbose});
      if (options.memory_tolerance) r.memory.tolerance = tolerance;
    }
    r.started = started;
    store.append(r);
    ++summary.run;
    if (!r.ok) ++summary.failed;
    if (r.memory.leaked()) ++summary.leaked;
    progress.end(r, sweep.metric.name);
  }
  summary.best = best_result(sweep, store.results());
  return summary;
}

}  // namespace tabula::experiment
