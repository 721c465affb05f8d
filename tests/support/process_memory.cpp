#include "support/process_memory.hpp"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>

namespace tabula::testing {

std::size_t rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t pages_total = 0, pages_resident = 0;
  if (!(statm >> pages_total >> pages_resident))
    throw std::runtime_error("cannot read /proc/self/statm");
  return pages_resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

bool under_sanitizer() {
  const char* value = std::getenv("TABULA_TEST_SANITIZER");
  return value != nullptr && std::string(value) != "";
}

bool under_thread_sanitizer() {
  const char* value = std::getenv("TABULA_TEST_SANITIZER");
  return value != nullptr && std::string(value) == "thread";
}

}  // namespace tabula::testing
