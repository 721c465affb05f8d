#include "experiment/detail/spec_file.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "tabula/core/errors.hpp"

namespace tabula::experiment::detail {

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FormatError(path + ": cannot open: " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw FormatError(path + ": cannot read: " + std::strerror(errno));
  return text.str();
}

YAML::Node parse_yaml(const std::string& text, const std::string& source) {
  YAML::Node node;
  try {
    node = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    std::ostringstream s;
    s << source << ":" << e.mark.line + 1 << ":" << e.mark.column + 1
      << ": not valid YAML: " << e.msg;
    // The usual cause: "{units: ${hidden}}", where the braces end the flow map early.
    if (text.find("${") != std::string::npos)
      s << " (inside a flow map {...} or list [...], write a parameter as $name or quote it: "
           "\"${name}\")";
    throw FormatError(s.str());
  }
  if (node.IsNull()) return YAML::Node(YAML::NodeType::Map);
  if (!node.IsMap()) {
    std::ostringstream s;
    s << source << ":1: expected a map of keys at the top level";
    throw FormatError(s.str());
  }
  return node;
}

}  // namespace tabula::experiment::detail
