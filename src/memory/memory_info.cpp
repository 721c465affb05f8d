#include "tabula/memory/memory_info.hpp"

#include <cstdio>

namespace tabula {

std::string format_bytes(std::size_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024.0 && unit < 4) {
    value /= 1024.0;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, value < 10 ? "%.2f %s" : "%.1f %s", value, kUnits[unit]);
  return text;
}

std::string MemoryInfo::str() const {
  std::string s = device.str() + ": current " + format_bytes(current);
  std::string split;
  for (Category c : kAllCategories) {
    if (by_category[c] == 0) continue;
    split += (split.empty() ? "" : ", ") + std::string(name_of(c)) + " " +
             format_bytes(by_category[c]);
  }
  if (!split.empty()) s += " (" + split + ")";
  s += ", peak " + format_bytes(peak) + ", reserved " + format_bytes(reserved) + ", limit " +
       (limit ? format_bytes(limit) : std::string("none")) + ", " +
       std::to_string(allocations) + " allocations, " + std::to_string(live_objects) +
       " live objects";
  return s;
}

}  // namespace tabula
