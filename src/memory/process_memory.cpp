#include "tabula/memory/process_memory.hpp"

#include <unistd.h>

#include <fstream>
#include <string>

#include "tabula/core/errors.hpp"

namespace tabula {

namespace {

// VmHWM from /proc/self/status, in bytes; 0 when the line is absent (some kernels lack it).
std::size_t peak_resident_bytes() {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    if (key == "VmHWM:") {
      std::size_t kib = 0;
      status >> kib;
      return kib * 1024;
    }
    status.ignore(4096, '\n');
  }
  return 0;
}

}  // namespace

ProcessMemory process_memory() {
  std::ifstream statm("/proc/self/statm");
  std::size_t pages_total = 0;
  std::size_t pages_resident = 0;
  if (!(statm >> pages_total >> pages_resident))
    TABULA_THROW(Error, "process_memory: cannot read /proc/self/statm (is /proc mounted?)");
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return {pages_resident * page, peak_resident_bytes()};
}

}  // namespace tabula
