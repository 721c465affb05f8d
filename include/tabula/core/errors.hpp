#pragma once
/// @file
/// The one small exception hierarchy of tabula, and the macros that throw from it.
///
/// Every message says what was wrong, what was expected, what was got, and where in tabula the
/// check failed, so that a user reading a log can act without a debugger.

#include <cstddef>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace tabula {

/// @brief Base of every exception tabula throws.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

/// @brief An allocation was refused by a session's limit or by the OS/driver, after cached
/// memory had been given back and the request retried once.
///
/// The message names the request, the device, the limit, the bytes in use per category and the
/// largest live holders. The structured fields are there for programs (a sweep records them).
class OutOfMemory : public Error {
 public:
  OutOfMemory(const std::string& message, std::size_t requested, std::size_t limit)
      : Error(message), requested_(requested), limit_(limit) {}

  /// Bytes that were asked for.
  std::size_t requested() const noexcept { return requested_; }
  /// The limit in force, or 0 when the OS/driver refused without a limit.
  std::size_t limit() const noexcept { return limit_; }

 private:
  std::size_t requested_;
  std::size_t limit_;
};

/// @brief A handle (tensor, layer, model) was used after its session was cleared.
class SessionCleared : public Error {
 public:
  using Error::Error;
};

/// @brief An argument had a value the operation cannot accept.
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

/// @brief A file or byte stream does not have the format it claims.
class FormatError : public Error {
 public:
  using Error::Error;
};

namespace detail {

/// "src/core/shape.cpp:42" from a full path: enough to find the check, short enough to read.
std::string source_location_string(const char* file, int line);

template <typename E>
[[noreturn]] void throw_with_location(const std::string& message, const char* file, int line) {
  throw E(message + " [" + source_location_string(file, line) + "]");
}

}  // namespace detail
}  // namespace tabula

/// Throws `Type` with a streamed message and the source location:
/// `TABULA_THROW(InvalidArgument, "shape: expected rank 2, got " << rank);`
#define TABULA_THROW(Type, stream_expr)                                                   \
  do {                                                                                    \
    std::ostringstream tabula_message_;                                                   \
    tabula_message_ << stream_expr;                                                       \
    ::tabula::detail::throw_with_location<::tabula::Type>(tabula_message_.str(), __FILE__, \
                                                          __LINE__);                      \
  } while (false)

/// Checks a condition that user input can violate and throws `Type` naming what was expected
/// and what was got: `TABULA_EXPECT(a == b, InvalidArgument, "Dense units", "> 0", units);`
#define TABULA_EXPECT(condition, Type, what, expected, got)                                 \
  do {                                                                                      \
    if (!(condition)) {                                                                     \
      TABULA_THROW(Type, what << ": expected " << expected << ", got " << got);             \
    }                                                                                       \
  } while (false)
