#pragma once
/// @file
/// Reading numeric tables from CSV files into float32 tensors.

#include <string>
#include <vector>

#include "tabula/core/tensor.hpp"

namespace tabula::data {

/// @brief Keyword arguments of `read_csv`.
struct CsvOptions {
  char delimiter = ',';
  /// The first non-empty line names the columns. Without a header the columns are named
  /// "0", "1", ... (as pandas numbers them).
  bool header = true;
  /// The columns to read, in this order; empty: every column. Columns not listed are not
  /// parsed, so they may hold text.
  std::vector<std::string> columns = {};
};

/// @brief A CSV file's numbers: one row per record, one column per selected field.
struct CsvTable {
  std::vector<std::string> column_names;  ///< the selected columns, in `values`' order
  Tensor values;                          ///< float32, shape (rows, columns)
};

/// @brief Reads a CSV file into a float32 tensor of category `data` in the current session.
///
/// Fields may be quoted ("a, b" keeps its delimiter; "" is a quote inside quotes; quoted fields
/// may span lines). Empty lines are skipped; CRLF line ends and a UTF-8 byte-order mark are
/// accepted. Numbers are parsed with `std::from_chars` (so "1e-3", "nan" and "inf" work);
/// spaces around them and a leading '+' are allowed.
///
/// @throws Error when the file cannot be opened or read (the message names the path and the
///   system's reason)
/// @throws FormatError naming the file and line: a field that is not a number ("column 'x':
///   expected a number, got 'abc'"), a record with another number of fields than the header
///   (or first record), an unterminated quote, text after a closing quote, or no header line
/// @throws InvalidArgument when a requested column does not exist (the message lists those
///   that do)
CsvTable read_csv(const std::string& path, const CsvOptions& options = {});

/// @brief Like `read_csv`, from text in memory.
/// @param name_for_errors what error messages call the text, in place of a path
CsvTable read_csv_string(const std::string& text, const CsvOptions& options = {},
                         const std::string& name_for_errors = "<string>");

}  // namespace tabula::data
