#include "support/expect_error.hpp"

#include <vector>

namespace tabula::testing {

void expect_contains(const std::string& message, std::initializer_list<std::string> parts) {
  for (const std::string& part : parts) {
    EXPECT_NE(message.find(part), std::string::npos)
        << "message lacks \"" << part << "\":\n  " << message;
  }
}

Shape with_batch(std::int64_t n, const Shape& per_sample) {
  std::vector<std::int64_t> dims{n};
  dims.insert(dims.end(), per_sample.dims().begin(), per_sample.dims().end());
  return Shape(dims);
}

}  // namespace tabula::testing
