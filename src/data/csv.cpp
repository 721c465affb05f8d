#include "tabula/data/csv.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <memory>
#include <sstream>
#include <string_view>
#include <system_error>

namespace tabula::data {

namespace {

/// One field of a record as it appears in the text: between the quotes for a quoted field,
/// with any doubled quotes still doubled.
struct Field {
  std::string_view raw;
  bool quoted = false;
  bool has_escapes = false;  ///< raw holds "" pairs that stand for one quote

  std::string text() const {
    if (!has_escapes) return std::string(raw);
    std::string out;
    out.reserve(raw.size());
    for (std::size_t i = 0; i < raw.size(); ++i) {
      out.push_back(raw[i]);
      if (raw[i] == '"') ++i;  // skip the second quote of the pair
    }
    return out;
  }
};

bool is_space(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

/// Splits CSV text into records of fields, skipping empty lines and counting physical lines
/// for messages. Views into the text it was given; not thread-safe.
class RecordReader {
 public:
  RecordReader(std::string_view text, char delimiter, const std::string& name)
      : text_(text), delimiter_(delimiter), name_(name) {
    if (text_.starts_with("\xEF\xBB\xBF")) pos_ = 3;  // UTF-8 byte-order mark
  }

  /// The next non-empty record; false at the end of the text. `line` is where it starts.
  bool next(std::vector<Field>& fields, std::size_t& line) {
    while (pos_ < text_.size()) {
      line = line_;
      fields.clear();
      read_record(fields);
      const bool blank = fields.size() == 1 && !fields[0].quoted && trim(fields[0].raw).empty();
      if (!blank) return true;
    }
    return false;
  }

 private:
  bool at(char c) const { return pos_ < text_.size() && text_[pos_] == c; }
  bool at_field_space() const {
    return pos_ < text_.size() && is_space(text_[pos_]) && text_[pos_] != delimiter_;
  }

  void read_record(std::vector<Field>& fields) {
    while (true) {
      fields.push_back(read_field());
      if (pos_ >= text_.size()) return;
      if (text_[pos_] == delimiter_) {
        ++pos_;
        continue;
      }
      // read_field stops only at the delimiter, a line end or the end of the text.
      if (at('\r')) ++pos_;
      if (at('\n')) {
        ++pos_;
        ++line_;
      }
      return;
    }
  }

  Field read_field() {
    std::size_t start = pos_;
    while (at_field_space()) ++pos_;
    if (at('"')) return read_quoted();
    pos_ = start;
    while (pos_ < text_.size() && text_[pos_] != delimiter_ && text_[pos_] != '\n') ++pos_;
    std::string_view raw = text_.substr(start, pos_ - start);
    if (raw.ends_with('\r')) raw.remove_suffix(1);  // CRLF, or CR at the very end
    return Field{raw, false, false};
  }

  Field read_quoted() {
    const std::size_t open_line = line_;
    const std::size_t start = ++pos_;
    bool escapes = false;
    while (true) {
      const std::size_t quote = text_.find('"', pos_);
      if (quote == std::string_view::npos) {
        TABULA_THROW(FormatError, "CSV '" << name_ << "' line " << open_line
                                          << ": unterminated quoted field: expected a closing "
                                          << "'\"', got the end of the data");
      }
      line_ += static_cast<std::size_t>(
          std::count(text_.begin() + static_cast<std::ptrdiff_t>(pos_),
                     text_.begin() + static_cast<std::ptrdiff_t>(quote), '\n'));
      if (quote + 1 < text_.size() && text_[quote + 1] == '"') {
        escapes = true;
        pos_ = quote + 2;
        continue;
      }
      Field field{text_.substr(start, quote - start), true, escapes};
      pos_ = quote + 1;
      while (at_field_space()) ++pos_;
      const bool line_end =
          at('\n') || (at('\r') && (pos_ + 1 == text_.size() || text_[pos_ + 1] == '\n'));
      if (pos_ < text_.size() && !at(delimiter_) && !line_end) {
        TABULA_THROW(FormatError, "CSV '" << name_ << "' line " << line_
                                          << ": expected a delimiter or the end of the line "
                                          << "after a closing quote, got '" << text_[pos_] << "'");
      }
      return field;
    }
  }

  std::string_view text_;
  char delimiter_;
  const std::string& name_;
  std::size_t pos_ = 0;
  std::size_t line_ = 1;
};

enum class NumberStatus { ok, not_a_number, out_of_range };

NumberStatus parse_number(std::string_view text, float& value) {
  text = trim(text);
  if (text.starts_with('+')) {
    text.remove_prefix(1);
    if (text.starts_with('+') || text.starts_with('-')) return NumberStatus::not_a_number;
  }
  if (text.empty()) return NumberStatus::not_a_number;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec == std::errc::result_out_of_range && ptr == end) return NumberStatus::out_of_range;
  if (ec != std::errc() || ptr != end) return NumberStatus::not_a_number;
  return NumberStatus::ok;
}

std::string quoted_list(const std::vector<std::string>& names) {
  if (names.empty()) return "(none)";
  std::ostringstream out;
  for (std::size_t i = 0; i < names.size(); ++i) out << (i ? ", " : "") << "'" << names[i] << "'";
  return out.str();
}

/// "1 field", "3 fields".
std::string count_of(std::size_t n, const char* noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

struct FileCloser {
  void operator()(std::FILE* f) const noexcept { std::fclose(f); }
};

}  // namespace

CsvTable read_csv_string(const std::string& text, const CsvOptions& options,
                         const std::string& name_for_errors) {
  const std::string& name = name_for_errors;
  TABULA_EXPECT(options.delimiter != '"' && options.delimiter != '\n' && options.delimiter != '\r',
                InvalidArgument, "read_csv('" << name << "') delimiter",
                "a character other than '\"', CR and LF", "'" << options.delimiter << "'");

  RecordReader reader(text, options.delimiter, name);
  std::vector<Field> fields;
  std::size_t line = 0;
  const bool has_first = reader.next(fields, line);

  // Column names: the header's, else the first record's positions.
  std::vector<std::string> names;
  if (options.header) {
    TABULA_EXPECT(has_first, FormatError, "CSV '" << name << "'", "a header line",
                  "no lines (the data is empty)");
    for (const Field& f : fields) names.push_back(f.text());
  } else if (has_first) {
    for (std::size_t i = 0; i < fields.size(); ++i) names.push_back(std::to_string(i));
  }
  const std::size_t field_count = names.size();

  std::vector<std::size_t> selected;
  if (options.columns.empty()) {
    for (std::size_t i = 0; i < field_count; ++i) selected.push_back(i);
  } else {
    for (const std::string& column : options.columns) {
      const auto it = std::find(names.begin(), names.end(), column);
      if (it == names.end()) {
        TABULA_THROW(InvalidArgument, "read_csv('"
                                          << name << "'): unknown column '" << column
                                          << "'; available columns: " << quoted_list(names));
      }
      selected.push_back(static_cast<std::size_t>(it - names.begin()));
    }
  }

  CsvTable table;
  for (std::size_t index : selected) table.column_names.push_back(names[index]);

  std::vector<float> values;
  std::int64_t rows = 0;
  bool have_record = has_first && !options.header;  // without a header the first line is data
  while (have_record || reader.next(fields, line)) {
    have_record = false;
    TABULA_EXPECT(fields.size() == field_count, FormatError, "CSV '" << name << "' line " << line,
                  count_of(field_count, "field")
                      << (options.header ? " (as in the header)" : " (as in the first line)"),
                  count_of(fields.size(), "field"));
    for (std::size_t index : selected) {
      const Field& field = fields[index];
      float value = 0.0f;
      const NumberStatus status =
          field.has_escapes ? NumberStatus::not_a_number : parse_number(field.raw, value);
      if (status != NumberStatus::ok) {
        TABULA_THROW(FormatError,
                     "CSV '" << name << "' line " << line << ", column '" << names[index]
                             << "': expected a number"
                             << (status == NumberStatus::out_of_range ? " in float32's range" : "")
                             << ", got '" << field.text() << "'");
      }
      values.push_back(value);
    }
    ++rows;
  }

  table.values = from_vector(values, Shape{rows, static_cast<std::int64_t>(selected.size())},
                             {.category = Category::data, .name = "csv"});
  return table;
}

CsvTable read_csv(const std::string& path, const CsvOptions& options) {
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (!file) {
    const int err = errno;
    TABULA_THROW(Error, "cannot open CSV file '" << path << "': " << errno_text(err));
  }
  std::string text;
  char block[1 << 16];
  while (true) {
    const std::size_t got = std::fread(block, 1, sizeof block, file.get());
    text.append(block, got);
    if (got < sizeof block) {
      if (std::ferror(file.get())) {
        const int err = errno;
        TABULA_THROW(Error, "cannot read CSV file '" << path << "': " << errno_text(err));
      }
      break;
    }
  }
  return read_csv_string(text, options, path);
}

}  // namespace tabula::data
