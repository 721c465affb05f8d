#pragma once
// Shared helpers for tests that check errors: the message of the exception a call throws (of
// exactly the expected type), that a message names every expected part, and a batched shape.

#include <gtest/gtest.h>

#include <cstdint>
#include <exception>
#include <functional>
#include <initializer_list>
#include <string>
#include <typeinfo>

#include "tabula/core/shape.hpp"

namespace tabula::testing {

/// The message of the exception `f` throws, which must be exactly of type `E` (a FormatError
/// is an Error, so thrown_message<Error> checks that it is not one of the derived kinds).
/// Adds a test failure, and returns "", when `f` throws nothing; adds one when it throws
/// another type.
template <typename E>
std::string thrown_message(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    EXPECT_TRUE(typeid(e) == typeid(E)) << "threw " << typeid(e).name() << ": " << e.what();
    return e.what();
  }
  ADD_FAILURE() << "nothing was thrown";
  return {};
}

/// Expects (non-fatally) that every one of `parts` occurs in `message`.
void expect_contains(const std::string& message, std::initializer_list<std::string> parts);

/// `per_sample` with a leading batch axis of size `n`.
Shape with_batch(std::int64_t n, const Shape& per_sample);

}  // namespace tabula::testing
