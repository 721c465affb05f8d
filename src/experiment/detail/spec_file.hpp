#pragma once
// Reading a spec file's text and its YAML, with errors that name the file and the line.

#include <yaml-cpp/yaml.h>

#include <string>

namespace tabula::experiment::detail {

/// The whole file. @throws FormatError naming the path and the OS's reason.
std::string read_text_file(const std::string& path);

/// One YAML document; an empty document is an empty map.
/// @throws FormatError "SOURCE:LINE:COLUMN: not valid YAML: ..." for a syntax error.
YAML::Node parse_yaml(const std::string& text, const std::string& source);

}  // namespace tabula::experiment::detail
