#pragma once
// A YAML node of a model or sweep file that knows where it is (file, line, key path) and
// resolves `${parameter}` references, so every error can say exactly what was wrong where.

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tabula/experiment/parameter_value.hpp"

namespace tabula::experiment::detail {

/// What every node of one document shares: the file's name and the trial's parameters (null
/// in a model file, where references are errors, and for a sweep's own keys, read before any
/// trial has values).
struct SpecContext {
  std::string source;
  const Parameters* parameters = nullptr;
  bool sweep_keys = false;  ///< the sweep's own keys: says so when one refers to a parameter
};

/// Not thread-safe; a view: the context must outlive it.
class SpecNode {
 public:
  SpecNode(YAML::Node node, std::string path, const SpecContext& context, int line);
  /// The document's root.
  static SpecNode root(const YAML::Node& node, const SpecContext& context);

  const std::string& path() const noexcept { return path_; }
  int line() const noexcept { return line_; }
  bool is_map() const { return node_.IsMap(); }
  bool is_sequence() const { return node_.IsSequence(); }
  bool is_scalar() const { return node_.IsScalar(); }
  bool is_null() const { return !node_.IsDefined() || node_.IsNull(); }

  /// Fails unless this is a map whose keys are all in `keys`.
  void expect_map(std::initializer_list<std::string_view> keys) const {
    expect_map(std::vector<std::string_view>(keys));
  }
  void expect_map(const std::vector<std::string_view>& keys) const;
  bool has(std::string_view key) const;
  /// The value at `key`. @throws FormatError when it is absent.
  SpecNode at(std::string_view key) const;
  std::optional<SpecNode> find(std::string_view key) const;
  /// The keys of a map, in file order.
  std::vector<std::string> keys() const;

  /// The items of a sequence. @throws FormatError when this is not one.
  std::vector<SpecNode> items() const;

  /// Scalars, with `${name}` resolved. Each throws FormatError naming what was expected.
  std::int64_t as_int() const;
  std::int64_t as_int(std::int64_t min, std::int64_t max) const;
  double as_double() const;
  bool as_bool() const;
  std::string as_string() const;
  /// A size in bytes: an integer, or a number with a unit ("64MiB", "1.5 GiB", "512 KB").
  std::size_t as_bytes() const;
  /// A scalar as the most specific type it reads as (a quoted scalar stays a string).
  ParameterValue as_value() const;
  /// An integer, or a list of `count` integers: `3` -> {3, 3}, `[3, 5]` -> {3, 5}.
  std::vector<std::int64_t> as_int_list(std::optional<std::size_t> count = std::nullopt) const;

  /// @throws FormatError "FILE:LINE: PATH: expected EXPECTED, got GOT".
  [[noreturn]] void fail(const std::string& expected) const;
  [[noreturn]] void fail_message(const std::string& message) const;

 private:
  /// The value a `${name}` scalar refers to, if this is one.
  std::optional<ParameterValue> reference() const;
  std::string got() const;
  std::string reference_note() const;

  YAML::Node node_;
  std::string path_;
  const SpecContext* context_;
  int line_;
};

}  // namespace tabula::experiment::detail
