#include "tabula/experiment/parameter_value.hpp"

#include <cstdio>
#include <cstdlib>

namespace tabula::experiment {

std::string to_string(const ParameterValue& value) {
  switch (value.index()) {
    case 0: return std::get<bool>(value) ? "true" : "false";
    case 1: return std::to_string(std::get<std::int64_t>(value));
    case 2: {
      // The shortest of %.1g..%.17g that reads back exactly.
      const double d = std::get<double>(value);
      char text[32];
      for (int precision = 1; precision <= 17; ++precision) {
        std::snprintf(text, sizeof text, "%.*g", precision, d);
        if (std::strtod(text, nullptr) == d) break;
      }
      std::string s = text;
      if (s.find_first_of(".eEn") == std::string::npos) s += ".0";  // stays a number
      return s;
    }
    default: return std::get<std::string>(value);
  }
}

std::string to_string(const Parameters& parameters) {
  std::string s;
  for (const auto& [name, value] : parameters)
    s += (s.empty() ? "" : " ") + name + "=" + to_string(value);
  return s;
}

}  // namespace tabula::experiment
