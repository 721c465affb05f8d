#include "tabula/core/errors.hpp"

#include <cstring>

namespace tabula::detail {

std::string source_location_string(const char* file, int line) {
  // Keep the path from the last "src/" or "include/" on; the rest is the builder's machine.
  std::string path(file);
  for (const char* root : {"/src/", "/include/", "/tools/"}) {
    if (auto pos = path.rfind(root); pos != std::string::npos) {
      path = path.substr(pos + 1);
      break;
    }
  }
  return path + ":" + std::to_string(line);
}

}  // namespace tabula::detail
