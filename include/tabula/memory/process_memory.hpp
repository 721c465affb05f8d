#pragma once
/// @file
/// What the operating system says this process holds: the figure tabula's own must agree with.

#include <cstddef>

namespace tabula {

/// @brief The process's resident memory as the kernel counts it.
struct ProcessMemory {
  std::size_t rss = 0;       ///< resident set size now (/proc/self/statm), bytes
  std::size_t peak_rss = 0;  ///< highest resident set size so far (VmHWM), bytes
};

/// @brief Reads the process's resident memory from /proc/self.
/// @throws Error when /proc/self cannot be read (not Linux, or /proc not mounted).
ProcessMemory process_memory();

}  // namespace tabula
