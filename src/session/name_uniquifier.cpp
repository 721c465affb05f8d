#include "tabula/session/name_uniquifier.hpp"

namespace tabula {

std::string NameUniquifier::next(std::string_view prefix) {
  std::size_t& count = counts_[std::string(prefix)];
  std::string name(prefix);
  if (count > 0) name.append("_").append(std::to_string(count));
  ++count;
  return name;
}

}  // namespace tabula
