#include "tabula/core/errors.hpp"

#include <string_view>

namespace tabula::detail {

std::string source_location_string(const char* file, int line) {
  // Keep the path from the last "src/", "include/" or "tools/" on; the rest is the builder's
  // machine.
  std::string_view path(file);
  for (std::string_view root : {"/src/", "/include/", "/tools/"}) {
    if (auto pos = path.rfind(root); pos != std::string_view::npos) {
      path.remove_prefix(pos + 1);
      break;
    }
  }
  std::string out;
  out.reserve(path.size() + 12);
  out.append(path).append(":").append(std::to_string(line));
  return out;
}

}  // namespace tabula::detail
