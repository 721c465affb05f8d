#include "nn/detail/progress_bar.hpp"

#include <unistd.h>

#include <cmath>
#include <vector>

namespace tabula::detail {

namespace {

std::string duration(double seconds) {
  char text[32];
  if (seconds >= 3600) {
    std::snprintf(text, sizeof text, "%d:%02d:%02d", static_cast<int>(seconds / 3600),
                  static_cast<int>(std::fmod(seconds, 3600) / 60),
                  static_cast<int>(std::fmod(seconds, 60)));
  } else if (seconds >= 60) {
    std::snprintf(text, sizeof text, "%d:%02d", static_cast<int>(seconds / 60),
                  static_cast<int>(std::fmod(seconds, 60)));
  } else {
    std::snprintf(text, sizeof text, "%.0fs", seconds);
  }
  return text;
}

}  // namespace

std::string format_logs(const Logs& logs) {
  std::vector<std::string> order;
  if (logs.count("loss")) order.push_back("loss");
  for (const auto& [k, v] : logs)
    if (k != "loss" && k.rfind("val_", 0) != 0) order.push_back(k);
  if (logs.count("val_loss")) order.push_back("val_loss");
  for (const auto& [k, v] : logs)
    if (k != "val_loss" && k.rfind("val_", 0) == 0) order.push_back(k);
  std::string s;
  char value[64];
  for (const auto& k : order) {
    std::snprintf(value, sizeof value, "%.4f", logs.at(k));
    s += " - " + k + ": " + value;
  }
  return s;
}

ProgressBar::ProgressBar(std::int64_t steps, int verbose, std::FILE* out)
    : steps_(steps),
      verbose_(verbose),
      out_(out),
      terminal_(verbose == 1 && ::isatty(::fileno(out))),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

std::string ProgressBar::line(std::int64_t step, const Logs& logs, bool final) const {
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const int width = std::to_string(steps_).size();
  char head[64];
  std::snprintf(head, sizeof head, "%*lld/%lld ", width, static_cast<long long>(step),
                static_cast<long long>(steps_));
  std::string s = head;
  if (verbose_ == 1) {
    constexpr int kBar = 30;
    const int filled = steps_ ? static_cast<int>(kBar * step / steps_) : kBar;
    s += "[";
    for (int i = 0; i < kBar; ++i) {
      if (i < filled) s += (!final && i == filled - 1) ? '>' : '=';
      else s += '.';
    }
    s += "] ";
  }
  if (final) {
    char per_step[32];
    const double ms = step ? 1000.0 * elapsed / static_cast<double>(step) : 0.0;
    std::snprintf(per_step, sizeof per_step, "%.0fms/step", ms);
    s += "- " + duration(elapsed) + " " + per_step;
  } else {
    const double eta = step ? elapsed / static_cast<double>(step) * (steps_ - step) : 0.0;
    s += "- ETA: " + duration(eta);
  }
  return s + format_logs(logs);
}

void ProgressBar::update(std::int64_t step, const Logs& logs) {
  if (!terminal_) return;
  const auto now = std::chrono::steady_clock::now();
  if (step < steps_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  std::fprintf(out_, "\r%s\033[K", line(step, logs, false).c_str());
  std::fflush(out_);
}

void ProgressBar::finish(const Logs& logs) {
  if (verbose_ == 0) return;
  std::fprintf(out_, "%s%s\n", terminal_ ? "\r" : "", line(steps_, logs, true).c_str());
  if (terminal_) std::fprintf(out_, "\033[K");
  std::fflush(out_);
}

}  // namespace tabula::detail
