// The `tabula` program: sweeps whose memory stays flat, single trainings, and a look at
// memory. The work is done by the library (tabula/experiment); this file is the command line.

#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>

#include "demo_sweep.hpp"
#include "tabula/tabula.hpp"

namespace tb = tabula;
namespace ex = tabula::experiment;

namespace {

std::atomic<bool> g_stop{false};

void on_interrupt(int) {
  g_stop.store(true);
  constexpr char kMessage[] =
      "\ntabula: stopping after the current trial (Ctrl-C again to abort now)\n";
  // write(2) is async-signal-safe; stdio is not.
  [[maybe_unused]] const ssize_t n = ::write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
}

void install_interrupt_handler() {
  struct sigaction action {};
  action.sa_handler = on_interrupt;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESETHAND;  // the second Ctrl-C gets the default action: stop at once
  ::sigaction(SIGINT, &action, nullptr);
}

std::string self_executable() {
  std::error_code ec;
  const auto path = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) throw tb::Error("cannot find this program's path (/proc/self/exe): " + ec.message());
  return path.string();
}

ex::Isolation isolation_from(const std::string& name) {
  return name == "process" ? ex::Isolation::process : ex::Isolation::none;
}

int verbosity(bool quiet) { return quiet ? 0 : 1; }

void print_summary(const ex::SweepSpec& sweep, const ex::SweepSummary& s) {
  std::printf("\n%zu of %zu trials run now", s.run, s.planned);
  if (s.skipped) std::printf(", %zu already in the results", s.skipped);
  std::printf(": %zu failed, %zu left memory behind%s\n", s.failed, s.leaked,
              s.stopped ? " (stopped by Ctrl-C)" : "");
  if (s.best) {
    std::printf("best: trial %d (%s) with %s %.4f\n", s.best->index,
                ex::to_string(s.best->parameters).c_str(), sweep.metric.name.c_str(),
                s.best->metrics.at(sweep.metric.name));
  }
  std::printf("results: %s/results.jsonl, summary.csv, report.html\n", s.out_dir.c_str());
}

struct SweepArgs {
  std::string isolate = "none";
  std::string out;
  bool resume = false;
  bool quiet = false;
  double timeout = 0;
  std::string tolerance;
};

void add_sweep_options(CLI::App* cmd, SweepArgs& a, bool with_resume) {
  cmd->add_option("--isolate", a.isolate, "where trials run: none (this process, a fresh session "
                  "each) or process (a child process each)")
      ->check(CLI::IsMember({"none", "process"}))
      ->capture_default_str();
  cmd->add_option("--out", a.out, "results directory");
  if (with_resume)
    cmd->add_flag("--resume", a.resume, "skip the trials already in the results directory");
  cmd->add_option("--timeout", a.timeout,
                  "with --isolate process: kill a trial running longer (seconds)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--tolerance", a.tolerance,
                  "RSS growth a trial may leave over the baseline (e.g. 4MiB); overrides the "
                  "sweep file's memory_tolerance");
  cmd->add_flag("-q,--quiet", a.quiet, "print nothing but errors");
}

int run_sweep_command(const ex::SweepSpec& sweep, const SweepArgs& a) {
  ex::SweepOptions options;
  options.out_dir = a.out;
  options.isolation = isolation_from(a.isolate);
  options.resume = a.resume;
  options.verbose = verbosity(a.quiet);
  options.trial_timeout = a.timeout;
  options.stop = &g_stop;
  if (!a.tolerance.empty()) {
    const ex::SweepSpec probe = ex::parse_sweep(
        "method: grid\nmetric: {name: loss}\nmemory_tolerance: " + a.tolerance +
            "\nmodel: {layers: [{type: Flatten}, {type: Dense, units: 1}], loss: mse}\n"
            "data: {train_samples: 2, test_samples: 0}\n",
        "--tolerance");
    options.memory_tolerance = probe.memory_tolerance;
  }
  if (options.isolation == ex::Isolation::process) options.trial_command = {self_executable(), "trial"};
  install_interrupt_handler();
  if (!a.quiet)
    std::printf("Sweep '%s': %zu trials (%s search), isolation %s, results in %s\n",
                sweep.name.c_str(), sweep.trials.size(), sweep.method.c_str(), a.isolate.c_str(),
                a.out.c_str());
  const ex::SweepSummary summary = ex::run_sweep(sweep, options);
  if (!a.quiet) print_summary(sweep, summary);
  return summary.stopped ? 130 : 0;
}

int train_command(const std::string& path, std::string out, bool quiet) {
  const ex::TrialSpec spec = ex::load_trial_spec(path);
  if (out.empty()) out = "runs/" + std::filesystem::path(path).stem().string();
  std::filesystem::create_directories(out);
  const std::string weights = out + "/model.safetensors";
  ex::TrialRunnerOptions options;
  options.verbose = quiet ? 0 : (::isatty(STDOUT_FILENO) ? 1 : 2);
  options.on_trained = [&](tb::Sequential& model) {
    if (!quiet) model.summary();
    // save_weights writes a temporary beside the file and renames it: a crash never leaves
    // a half-written file under the real name. Those that earlier crashes left are removed.
    ex::remove_stale_temporaries(weights);
    model.save_weights(weights);
  };
  ex::TrialRunner runner(options);
  ex::PlannedTrial trial{0, {}, spec};
  const ex::TrialResult r = runner.run(trial);
  if (!r.ok) {
    std::cerr << "tabula train: " << path << ": training failed (" << r.error_type << "): "
              << r.error << "\n";
    return 1;
  }
  if (!quiet) {
    for (const auto& [k, v] : r.metrics) std::printf("%s: %.4f\n", k.c_str(), v);
    std::printf("trained in %.1f s; weights: %s\n", r.seconds, weights.c_str());
    std::printf("memory: peak %s in the session (weights %s, gradients %s, optimizer %s, "
                "activations %s); after clear %s in use, %s reserved; RSS %s (baseline %s)\n",
                tb::format_bytes(r.memory.library_peak).c_str(),
                tb::format_bytes(r.memory.peak_by_category[tb::Category::weights]).c_str(),
                tb::format_bytes(r.memory.peak_by_category[tb::Category::gradients]).c_str(),
                tb::format_bytes(r.memory.peak_by_category[tb::Category::optimizer]).c_str(),
                tb::format_bytes(r.memory.peak_by_category[tb::Category::activations]).c_str(),
                tb::format_bytes(r.memory.current_after_clear).c_str(),
                tb::format_bytes(r.memory.reserved_after_clear).c_str(),
                tb::format_bytes(r.memory.rss_after).c_str(),
                tb::format_bytes(r.memory.rss_baseline).c_str());
  }
  return 0;
}

void print_device(tb::Device d) {
  const tb::MemoryInfo m = tb::memory_info(d);
  std::printf("  %-7s in use %s, reserved %s, peak %s, sessions' limits %s\n", d.str().c_str(),
              tb::format_bytes(m.current).c_str(), tb::format_bytes(m.reserved).c_str(),
              tb::format_bytes(m.peak).c_str(),
              m.limit ? tb::format_bytes(m.limit).c_str() : "none");
}

void print_sessions() {
  const auto sessions = tb::live_sessions();
  std::printf("Sessions: %zu live\n", sessions.size());
  for (const auto& s : sessions)
    std::printf("  %-12s %-7s in use %s, reserved %s, %zu objects, cleared %zu times\n",
                s.name.c_str(), s.device.str().c_str(), tb::format_bytes(s.memory.current).c_str(),
                tb::format_bytes(s.memory.reserved).c_str(), s.memory.live_objects, s.clear_count);
}

int memory_command(const std::string& model_path) {
  const tb::ProcessMemory before = tb::process_memory();
  std::printf("tabula %s, CUDA %s (%d devices)\n", TABULA_VERSION_STRING,
              TABULA_WITH_CUDA ? "built in" : "not built", tb::cuda_device_count());
  std::printf("Process: RSS %s, peak RSS %s\n", tb::format_bytes(before.rss).c_str(),
              tb::format_bytes(before.peak_rss).c_str());
  const tb::PoolOptions pool;
  std::printf("Pools: one per session and device; requests up to %s share %s segments, larger "
              "ones get their own, rounded to %s; clear() gives every segment back\n",
              tb::format_bytes(pool.small_request_limit).c_str(),
              tb::format_bytes(pool.small_segment_size).c_str(),
              tb::format_bytes(pool.large_segment_granularity).c_str());
  std::printf("Devices:\n");
  print_device(tb::Device::cpu());
  for (int i = 0; i < tb::cuda_device_count(); ++i) print_device(tb::Device::cuda(i));
  if (model_path.empty()) {
    print_sessions();
    return 0;
  }
  // What the model costs: built and compiled in a session of its own, then cleared.
  const ex::TrialSpec spec = ex::load_trial_spec(model_path);
  tb::Session session({.device = tb::Device::cpu(), .memory_limit = spec.memory_limit, .name = "memory"});
  {
    tb::SessionScope use(session);
    tb::Sequential model = spec.make_model();
    model.build({28, 28});  // Fashion-MNIST's per-sample shape; compile follows the build
    std::printf("\nModel %s, built and compiled:\n%s\n", model_path.c_str(),
                model.summary_string().c_str());
    print_sessions();
    std::printf("Largest live objects of session 'memory':\n");
    auto objects = session.live_objects();
    std::sort(objects.begin(), objects.end(),
              [](const tb::LiveObject& a, const tb::LiveObject& b) { return a.bytes > b.bytes; });
    for (std::size_t i = 0; i < objects.size() && i < 10; ++i)
      std::printf("  %-32s %-11s %10s  %ld handles\n", objects[i].name.c_str(),
                  std::string(tb::name_of(objects[i].category)).c_str(),
                  tb::format_bytes(objects[i].bytes).c_str(), objects[i].handles);
  }
  session.clear();
  const tb::MemoryInfo after = session.memory_info();
  std::printf("\nAfter clear(): in use %s, reserved %s; RSS %s (was %s before the model)\n",
              tb::format_bytes(after.current).c_str(), tb::format_bytes(after.reserved).c_str(),
              tb::format_bytes(tb::process_memory().rss).c_str(),
              tb::format_bytes(before.rss).c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tabula: Keras-style models in C++ whose memory is measured and really given back.\n"
               "Sweeps of many trials keep their memory flat; every trial's figures are recorded."};
  app.require_subcommand(1);
  app.set_version_flag("--version", TABULA_VERSION_STRING);

  SweepArgs demo_args;
  demo_args.out = "tabula-demo";
  CLI::App* demo = app.add_subcommand(
      "demo", "run a ready sweep: six Fashion-MNIST MLPs, each in a fresh session; prints "
              "accuracy, time and memory before/after each trial");
  add_sweep_options(demo, demo_args, false);

  SweepArgs sweep_args;
  std::string sweep_file;
  CLI::App* sweep = app.add_subcommand("sweep", "run the trials of a sweep file (W&B-style YAML)");
  sweep->add_option("SWEEP.yaml", sweep_file, "the sweep file")->required()->check(CLI::ExistingFile);
  add_sweep_options(sweep, sweep_args, true);

  std::string model_file, train_out;
  bool train_quiet = false;
  CLI::App* train = app.add_subcommand("train", "train one model file; save its weights and a summary");
  train->add_option("MODEL.yaml", model_file, "the model file (model, data, fit sections)")
      ->required()->check(CLI::ExistingFile);
  train->add_option("--out", train_out, "where the weights go (default runs/<file stem>)");
  train->add_flag("-q,--quiet", train_quiet, "print nothing but errors");

  std::string memory_model;
  CLI::App* memory = app.add_subcommand(
      "memory", "show devices, pools, sessions and their figures; with a model file, what that "
                "model holds by category and that clearing gives it back");
  memory->add_option("MODEL.yaml", memory_model, "a model file to measure")->check(CLI::ExistingFile);

  // The child side of --isolate process; not for people.
  std::string trial_sweep;
  int trial_index = -1, result_fd = -1, trial_verbose = 0;
  CLI::App* trial = app.add_subcommand("trial", "run one trial of a sweep for --isolate process");
  trial->group("");
  trial->add_option("SWEEP.yaml", trial_sweep)->required();
  trial->add_option("--index", trial_index)->required();
  trial->add_option("--result-fd", result_fd)->required();
  trial->add_option("--verbose", trial_verbose);

  CLI11_PARSE(app, argc, argv);

  try {
    if (*demo) {
      // The demo's directory is its own: each run starts it afresh.
      std::filesystem::create_directories(demo_args.out);
      for (const char* f : {"results.jsonl", "timeline.jsonl", "summary.csv", "report.html"})
        std::filesystem::remove(demo_args.out + "/" + f);
      const std::string path = demo_args.out + "/sweep.yaml";
      ex::write_file_atomically(path, tb::tools::kDemoSweep);
      return run_sweep_command(ex::load_sweep(path), demo_args);
    }
    if (*sweep) {
      const ex::SweepSpec spec = ex::load_sweep(sweep_file);
      if (sweep_args.out.empty()) sweep_args.out = "runs/" + spec.name;
      return run_sweep_command(spec, sweep_args);
    }
    if (*train) return train_command(model_file, train_out, train_quiet);
    if (*memory) return memory_command(memory_model);
    if (*trial) {
      ex::TrialRunnerOptions options;
      options.verbose = trial_verbose;
      return ex::serve_trial(trial_sweep, trial_index, result_fd, options);
    }
  } catch (const tb::Error& e) {
    std::cerr << "tabula: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "tabula: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
