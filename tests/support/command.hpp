#pragma once
// Running a program as a user would, for end-to-end tests, and counting what it printed.

#include <cstddef>
#include <string>

namespace tabula::testing {

struct CommandResult {
  int exit_code = -1;   ///< 128 + the signal when it was killed; -1 when it could not start
  std::string output;   ///< what it printed (stdout, and stderr when the command redirects it)
};

/// Runs `command` through /bin/sh and collects its standard output.
CommandResult run_command(const std::string& command);

/// How many times `part` occurs in `text` (overlapping occurrences count).
std::size_t count_occurrences(const std::string& text, const std::string& part);

}  // namespace tabula::testing
