#include "support/process_memory.hpp"

#include <cstdlib>
#include <string>

#include "tabula/memory/process_memory.hpp"

namespace tabula::testing {

std::size_t rss_bytes() { return process_memory().rss; }

bool under_sanitizer() {
  const char* value = std::getenv("TABULA_TEST_SANITIZER");
  return value != nullptr && std::string(value) != "";
}

bool under_thread_sanitizer() {
  const char* value = std::getenv("TABULA_TEST_SANITIZER");
  return value != nullptr && std::string(value) == "thread";
}

}  // namespace tabula::testing
