#pragma once
// What the OS says about this test process's memory, for tests of the memory promises.

#include <cstddef>

namespace tabula::testing {

/// Resident set size of this process from /proc/self/statm, in bytes.
std::size_t rss_bytes();

/// True when the tests run under a sanitizer (ASan/TSan shadow memory makes RSS figures
/// meaningless, so RSS tolerances are checked only in the plain build).
bool under_sanitizer();

/// True under ThreadSanitizer, which slows single-threaded number crunching by 10-50x while
/// adding nothing to it: whole-dataset training tests skip themselves there.
bool under_thread_sanitizer();

inline constexpr std::size_t kMiB = std::size_t{1} << 20;

}  // namespace tabula::testing
