#include "experiment/detail/spec_node.hpp"

#include <cctype>
#include <cmath>
#include <limits>
#include <sstream>

#include "tabula/core/errors.hpp"

namespace tabula::experiment::detail {

namespace {

bool is_name(std::string_view s) {
  if (s.empty() || !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  return true;
}

// "name" when `text` is exactly "${name}" or "$name".
std::optional<std::string> reference_name(std::string_view text) {
  if (text.size() >= 4 && text.substr(0, 2) == "${" && text.back() == '}') {
    const std::string_view name = text.substr(2, text.size() - 3);
    if (is_name(name)) return std::string(name);
  } else if (text.size() >= 2 && text[0] == '$' && is_name(text.substr(1))) {
    return std::string(text.substr(1));
  }
  return std::nullopt;
}

std::optional<std::int64_t> parse_int(const std::string& s) {
  if (s.empty()) return std::nullopt;
  std::size_t used = 0;
  try {
    const long long v = std::stoll(s, &used, 10);
    if (used == s.size()) return v;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

std::optional<double> parse_double(const std::string& s) {
  if (s.empty()) return std::nullopt;
  if (s == ".inf" || s == ".nan" || s == "-.inf") return std::nullopt;  // not a useful value
  std::size_t used = 0;
  try {
    const double v = std::stod(s, &used);
    if (used == s.size() && std::isfinite(v)) return v;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

std::optional<bool> parse_bool(const std::string& s) {
  if (s == "true" || s == "True" || s == "TRUE" || s == "yes" || s == "on") return true;
  if (s == "false" || s == "False" || s == "FALSE" || s == "no" || s == "off") return false;
  return std::nullopt;
}

}  // namespace

SpecNode::SpecNode(YAML::Node node, std::string path, const SpecContext& context, int line)
    : node_(std::move(node)), path_(std::move(path)), context_(&context), line_(line) {
  if (node_.IsDefined() && node_.Mark().line >= 0) line_ = node_.Mark().line + 1;
}

SpecNode SpecNode::root(const YAML::Node& node, const SpecContext& context) {
  return SpecNode(node, "", context, 1);
}

void SpecNode::fail_message(const std::string& message) const {
  std::ostringstream s;
  s << context_->source << ":" << line_ << ": " << (path_.empty() ? "(top level)" : path_)
    << ": " << message;
  throw FormatError(s.str());
}

void SpecNode::fail(const std::string& expected) const {
  fail_message("expected " + expected + ", got " + got() + reference_note());
}

std::string SpecNode::got() const {
  if (!node_.IsDefined()) return "nothing";
  if (node_.IsNull()) return "an empty value";
  if (node_.IsMap()) return "a map";
  if (node_.IsSequence()) return "a list";
  if (const auto ref = reference()) {
    const std::string text = to_string(*ref);
    return ref->index() == 3 ? "'" + text + "'" : text;
  }
  return "'" + node_.Scalar() + "'";
}

std::string SpecNode::reference_note() const {
  if (!node_.IsScalar()) return "";
  const auto name = reference_name(node_.Scalar());
  return name ? " (from parameter '" + *name + "')" : "";
}

std::optional<ParameterValue> SpecNode::reference() const {
  if (!node_.IsScalar()) return std::nullopt;
  const auto name = reference_name(node_.Scalar());
  if (!name) return std::nullopt;
  if (context_->parameters == nullptr)
    fail_message("'" + node_.Scalar() + "' refers to a parameter, but " +
                 (context_->sweep_keys
                      ? "the sweep's own keys take none (only model, data, fit and memory_limit do)"
                      : "only sweep files have parameters"));
  const auto it = context_->parameters->find(*name);
  if (it == context_->parameters->end()) {
    std::string known;
    for (const auto& [k, v] : *context_->parameters) known += (known.empty() ? "" : ", ") + k;
    fail_message("'" + node_.Scalar() + "' refers to no parameter; the parameters are: " +
                 (known.empty() ? "(none)" : known));
  }
  return it->second;
}

void SpecNode::expect_map(const std::vector<std::string_view>& keys) const {
  if (!node_.IsMap()) fail("a map");
  for (auto it = node_.begin(); it != node_.end(); ++it) {
    const std::string key = it->first.Scalar();
    bool known = false;
    for (auto k : keys) known = known || k == key;
    if (!known) {
      std::string allowed;
      for (auto k : keys) allowed += (allowed.empty() ? "" : ", ") + std::string(k);
      SpecNode where(it->first, path_.empty() ? key : path_ + "." + key, *context_, line_);
      where.fail_message("unknown key '" + key + "'; expected one of: " + allowed);
    }
  }
}

bool SpecNode::has(std::string_view key) const {
  return node_.IsMap() && node_[std::string(key)].IsDefined();
}

std::optional<SpecNode> SpecNode::find(std::string_view key) const {
  if (!has(key)) return std::nullopt;
  return at(key);
}

SpecNode SpecNode::at(std::string_view key) const {
  const std::string k(key);
  const std::string path = path_.empty() ? k : path_ + "." + k;
  if (!node_.IsMap()) fail("a map with '" + k + "'");
  const YAML::Node child = node_[k];
  if (!child.IsDefined()) SpecNode(child, path, *context_, line_).fail_message("is required");
  return SpecNode(child, path, *context_, line_);
}

std::vector<std::string> SpecNode::keys() const {
  if (!node_.IsMap()) fail("a map");
  std::vector<std::string> out;
  for (auto it = node_.begin(); it != node_.end(); ++it) out.push_back(it->first.Scalar());
  return out;
}

std::vector<SpecNode> SpecNode::items() const {
  if (!node_.IsSequence()) fail("a list");
  std::vector<SpecNode> out;
  std::size_t i = 0;
  for (auto it = node_.begin(); it != node_.end(); ++it, ++i)
    out.emplace_back(*it, path_ + "[" + std::to_string(i) + "]", *context_, line_);
  return out;
}

ParameterValue SpecNode::as_value() const {
  if (const auto ref = reference()) return *ref;
  if (!node_.IsScalar()) fail("a scalar (number, string or boolean)");
  const std::string& s = node_.Scalar();
  if (node_.Tag() == "!") return s;  // quoted: a string, even "128"
  if (const auto i = parse_int(s)) return *i;
  if (const auto d = parse_double(s)) return *d;
  if (const auto b = parse_bool(s)) return *b;
  return s;
}

std::int64_t SpecNode::as_int() const {
  if (node_.IsScalar()) {
    const ParameterValue v = as_value();
    if (const auto* i = std::get_if<std::int64_t>(&v)) return *i;
  }
  fail("an integer");
}

std::int64_t SpecNode::as_int(std::int64_t min, std::int64_t max) const {
  const std::int64_t v = as_int();
  if (v < min || v > max) {
    std::string range = max == std::numeric_limits<std::int64_t>::max()
                            ? "an integer >= " + std::to_string(min)
                            : "an integer in [" + std::to_string(min) + ", " +
                                  std::to_string(max) + "]";
    fail(range);
  }
  return v;
}

double SpecNode::as_double() const {
  if (node_.IsScalar()) {
    const ParameterValue v = as_value();
    if (const auto* d = std::get_if<double>(&v)) return *d;
    if (const auto* i = std::get_if<std::int64_t>(&v)) return static_cast<double>(*i);
  }
  fail("a number");
}

bool SpecNode::as_bool() const {
  if (node_.IsScalar()) {
    const ParameterValue v = as_value();
    if (const auto* b = std::get_if<bool>(&v)) return *b;
  }
  fail("true or false");
}

std::string SpecNode::as_string() const {
  if (!node_.IsScalar()) fail("a string");
  if (const auto ref = reference()) return to_string(*ref);
  // Embedded references: "weights-${hidden}.safetensors".
  const std::string& s = node_.Scalar();
  std::string out;
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t open = s.find("${", i);
    if (open == std::string::npos) {
      out += s.substr(i);
      break;
    }
    const std::size_t close = s.find('}', open);
    if (close == std::string::npos) {
      out += s.substr(i);
      break;
    }
    out += s.substr(i, open - i);
    const std::string token = s.substr(open, close - open + 1);
    if (reference_name(token)) {
      SpecNode part(YAML::Node(token), path_, *context_, line_);
      out += part.as_string();
    } else {
      // "${not a name}" is text, as it is when it is the whole scalar; resolving it as a
      // part would find the same token again, forever.
      out += token;
    }
    i = close + 1;
  }
  return out;
}

std::size_t SpecNode::as_bytes() const {
  if (!node_.IsScalar()) fail("a size (bytes, or a number with B, KiB, MiB, GiB, KB, MB, GB)");
  const ParameterValue v = as_value();
  if (const auto* i = std::get_if<std::int64_t>(&v)) {
    if (*i < 0) fail("a size >= 0");
    return static_cast<std::size_t>(*i);
  }
  const std::string* text = std::get_if<std::string>(&v);
  if (text != nullptr) {
    std::size_t pos = 0;
    while (pos < text->size() && (std::isdigit(static_cast<unsigned char>((*text)[pos])) ||
                                  (*text)[pos] == '.'))
      ++pos;
    std::string unit = text->substr(pos);
    while (!unit.empty() && unit.front() == ' ') unit.erase(0, 1);
    const auto number = parse_double(text->substr(0, pos));
    double scale = 0;
    if (unit == "B") scale = 1;
    else if (unit == "KiB") scale = 1024.0;
    else if (unit == "MiB") scale = 1024.0 * 1024;
    else if (unit == "GiB") scale = 1024.0 * 1024 * 1024;
    else if (unit == "KB" || unit == "kB") scale = 1e3;
    else if (unit == "MB") scale = 1e6;
    else if (unit == "GB") scale = 1e9;
    if (number && scale > 0 && *number * scale < 9.2e18)
      return static_cast<std::size_t>(std::llround(*number * scale));
  }
  fail("a size (bytes, or a number with B, KiB, MiB, GiB, KB, MB, GB)");
}

std::vector<std::int64_t> SpecNode::as_int_list(std::optional<std::size_t> count) const {
  std::vector<std::int64_t> out;
  if (node_.IsSequence()) {
    for (const SpecNode& item : items()) out.push_back(item.as_int());
    if (count && out.size() != *count)
      fail("a list of " + std::to_string(*count) + " integers");
  } else {
    const std::int64_t v = as_int();
    out.assign(count.value_or(1), v);
  }
  return out;
}

}  // namespace tabula::experiment::detail
