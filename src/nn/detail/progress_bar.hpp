#pragma once
// Keras-style training progress: "12/469 [>....] - ETA: 3s - loss: 0.6012 - accuracy: 0.79".

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

#include "tabula/nn/callbacks.hpp"

namespace tabula::detail {

/// Prints one epoch's progress. On a terminal (verbose 1) the bar is redrawn in place at most
/// ten times a second; otherwise only the final line of each epoch is printed.
class ProgressBar {
 public:
  ProgressBar(std::int64_t steps, int verbose, std::FILE* out = stdout);
  void update(std::int64_t step, const Logs& logs);
  /// The epoch's final line with every log (validation included).
  void finish(const Logs& logs);

 private:
  std::string line(std::int64_t step, const Logs& logs, bool final) const;

  std::int64_t steps_;
  int verbose_;
  std::FILE* out_;
  bool terminal_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

/// " - loss: 0.4321 - accuracy: 0.8456" in Keras's order: loss first, validation last.
std::string format_logs(const Logs& logs);

}  // namespace tabula::detail
