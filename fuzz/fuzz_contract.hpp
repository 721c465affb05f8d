#pragma once
// What every fuzz target holds a reader to: for any input it returns a value or throws a
// tabula::Error whose message names the input. Anything else is a bug in the reader: another
// exception escaping (std::out_of_range, YAML::Exception, std::bad_alloc), an OutOfMemory (a
// small input must never make a reader ask for memory it does not describe), a crash, a
// sanitizer report, a leak. A broken promise aborts, which libFuzzer and the replay both report
// with the input that caused it.
//
// Each input is read in a fresh session of its own, so nothing a reader allocates outlives the
// input and LeakSanitizer sees every byte that is not given back.

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "tabula/core/errors.hpp"
#include "tabula/session/session.hpp"
#include "tabula/session/session_scope.hpp"

namespace tabula::fuzz {

/// Whether the last input was read without an error (by at least one of the ways a target
/// reads it); the replay uses it to check that a seed corpus holds valid files only. Each
/// target sets it before it returns.
inline bool last_input_accepted = false;

[[noreturn]] inline void broken_promise(std::string_view what) {
  std::fprintf(stderr, "fuzz contract broken: %.*s\n", static_cast<int>(what.size()), what.data());
  std::fflush(stderr);
  std::abort();
}

/// Runs `read` in a fresh session. Returns true when it returned, false when it threw a
/// tabula::Error naming `name`; aborts on anything else. TABULA_FUZZ_PRINT_ERRORS=1 prints each
/// refusal, which tells why a seed that should be valid is not.
template <typename Read>
bool read_or_refuse(std::string_view name, Read&& read) {
  static const bool print_errors = std::getenv("TABULA_FUZZ_PRINT_ERRORS") != nullptr;
  Session session({.name = "fuzz"});
  SessionScope use(session);
  try {
    read();
    return true;
  } catch (const OutOfMemory& e) {
    broken_promise(std::string("OutOfMemory from a small input: ") + e.what());
  } catch (const Error& e) {
    const std::string_view message = e.what();
    if (message.find(name) == std::string_view::npos) {
      broken_promise(std::string("an error that does not name '") + std::string(name) +
                     "': " + e.what());
    }
    if (print_errors) std::fprintf(stderr, "refused: %s\n", e.what());
    return false;
  }
}

}  // namespace tabula::fuzz
