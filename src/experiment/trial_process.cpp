#include "tabula/experiment/trial_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <iostream>

#include "experiment/detail/result_json.hpp"
#include "tabula/core/errors.hpp"

namespace tabula::experiment {

namespace {

TrialResult failure(const PlannedTrial& trial, const std::string& type, const std::string& why) {
  TrialResult r;
  r.index = trial.index;
  r.parameters = trial.parameters;
  r.seed = trial.spec.seed;
  r.ok = false;
  r.error_type = type;
  r.error = why;
  return r;
}

std::string describe_status(int status) {
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    return "the trial's process was killed by signal " + std::to_string(sig) + " (" +
           strsignal(sig) + ")" + (sig == SIGKILL ? "; out of memory (the OOM killer) or killed" : "");
  }
  if (WIFEXITED(status))
    return "the trial's process exited with code " + std::to_string(WEXITSTATUS(status)) +
           " without a result";
  return "the trial's process ended with status " + std::to_string(status);
}

bool write_all(int fd, const std::string& text) {
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

TrialResult run_trial_in_child(const std::string& sweep_path, const PlannedTrial& trial,
                               const TrialProcessOptions& options) {
  if (options.command.empty())
    throw InvalidArgument("process isolation needs the command that runs one trial");
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    throw Error(std::string("cannot make a pipe for the trial's result: ") + std::strerror(errno));
  const int read_end = fds[0], write_end = fds[1];

  // Everything the child needs is made before fork: between fork and exec it may only make
  // async-signal-safe calls.
  std::vector<std::string> args = options.command;
  for (const std::string& a : {sweep_path, std::string("--index"), std::to_string(trial.index),
                               std::string("--result-fd"), std::to_string(write_end),
                               std::string("--verbose"), std::to_string(options.verbose)})
    args.push_back(a);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  const auto start = std::chrono::steady_clock::now();
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int e = errno;
    ::close(read_end);
    ::close(write_end);
    throw Error(std::string("cannot start a process for the trial: ") + std::strerror(e));
  }
  if (pid == 0) {
    // The trial dies with the sweep: a sweep killed outright (SIGKILL, the OOM killer) must
    // not leave an orphan training on that nobody will read, racing the --resume. The
    // signal follows the forking thread's end, and this thread waits for the child.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) _exit(127);  // the sweep died before prctl took hold
    ::signal(SIGINT, SIG_IGN);  // Ctrl-C stops the sweep after this trial, not the trial
    ::fcntl(write_end, F_SETFD, 0);  // the result pipe survives exec
    ::execv(argv[0], argv.data());
    _exit(127);
  }
  ::close(write_end);

  std::string text;
  bool timed_out = false;
  char buffer[65536];
  for (;;) {
    int wait_ms = -1;
    if (options.timeout_seconds > 0) {
      const double left = options.timeout_seconds -
                          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (left <= 0) {
        timed_out = true;
        ::kill(pid, SIGKILL);
        break;
      }
      wait_ms = static_cast<int>(left * 1000) + 1;
    }
    pollfd p{read_end, POLLIN, 0};
    const int ready = ::poll(&p, 1, wait_ms);
    if (ready < 0 && errno == EINTR) continue;  // Ctrl-C: the sweep stops after this trial
    if (ready == 0) continue;                   // the deadline is checked above
    const ssize_t n = ::read(read_end, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EOF: the child closed the pipe or ended
    text.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(read_end);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  TrialResult r;
  if (timed_out) {
    r = failure(trial, "timeout",
                "the trial ran past its timeout of " + std::to_string(options.timeout_seconds) +
                    " s and its process was killed");
  } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && !text.empty()) {
    try {
      r = detail::result_from_json(nlohmann::json::parse(text));
    } catch (const std::exception& e) {
      r = failure(trial, "bad_result", std::string("the trial's result could not be read: ") + e.what());
    }
  } else if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
    r = failure(trial, "exec", "the trial's program could not be started: " + args[0]);
  } else {
    r = failure(trial, WIFSIGNALED(status) ? "killed" : "crashed", describe_status(status));
  }
  r.isolation = "process";
  r.pid = static_cast<long>(pid);
  if (!r.ok && r.seconds == 0) r.seconds = seconds;
  return r;
}

int serve_trial(const std::string& sweep_path, int index, int result_fd,
                const TrialRunnerOptions& runner_options) {
  SweepSpec sweep;
  try {
    sweep = load_sweep(sweep_path);
  } catch (const Error& e) {
    std::cerr << "tabula trial: " << e.what() << "\n";
    return 2;
  }
  if (index < 0 || static_cast<std::size_t>(index) >= sweep.trials.size()) {
    std::cerr << "tabula trial: " << sweep_path << " plans " << sweep.trials.size()
              << " trials; there is no trial " << index << "\n";
    return 2;
  }
  TrialRunnerOptions options = runner_options;
  options.memory_tolerance = sweep.memory_tolerance;
  TrialRunner runner(options);
  TrialResult result;
  try {
    result = runner.run(sweep.trials[static_cast<std::size_t>(index)]);
  } catch (const Error& e) {  // the dataset could not be loaded
    result = failure(sweep.trials[static_cast<std::size_t>(index)], "Error", e.what());
  }
  result.isolation = "process";
  nlohmann::json j = detail::to_json(result);
  nlohmann::json samples = nlohmann::json::array();
  for (const MemorySample& s : result.timeline) samples.push_back(detail::to_json(s));
  j["timeline"] = samples;
  const bool ok = write_all(result_fd, j.dump());
  ::close(result_fd);
  return ok ? 0 : 3;
}

}  // namespace tabula::experiment
