// libFuzzer target: read_csv_string on any text, with and without a header and with the usual
// delimiters, either throws a tabula::Error naming the text, or returns a rows x columns table;
// a table whose header names each column once is read again with the columns reversed, and
// must give the same numbers reversed.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "fuzz_contract.hpp"
#include "tabula/data/csv.hpp"

namespace {

constexpr const char* kName = "fuzz.csv";

using tabula::data::CsvOptions;
using tabula::data::CsvTable;
using tabula::data::read_csv_string;

void expect_consistent(const CsvTable& table) {
  const auto& dims = table.values.shape().dims();
  if (dims.size() != 2 || dims[1] != static_cast<std::int64_t>(table.column_names.size())) {
    tabula::fuzz::broken_promise("a table's shape and column names disagree");
  }
}

/// Reads `text` again with the columns of `table` in reverse order: the same bits, mirrored.
void expect_reversed_columns_mirror(const std::string& text, CsvOptions options,
                                    const CsvTable& table) {
  const auto& names = table.column_names;
  if (std::set<std::string>(names.begin(), names.end()).size() != names.size()) return;
  options.columns.assign(names.rbegin(), names.rend());
  CsvTable reversed;
  try {
    reversed = read_csv_string(text, options, kName);
  } catch (const tabula::Error& e) {
    tabula::fuzz::broken_promise(std::string("reversed columns refused: ") + e.what());
  }
  expect_consistent(reversed);
  if (reversed.values.shape() != table.values.shape()) {
    tabula::fuzz::broken_promise("reversed columns give another shape");
  }
  const auto a = table.values.to_vector<float>(), b = reversed.values.to_vector<float>();
  const std::size_t columns = names.size();
  for (std::size_t i = 0; i < a.size(); ++i) {
    const std::size_t row = i / columns, column = i % columns;
    if (std::memcmp(&a[i], &b[row * columns + (columns - 1 - column)], sizeof(float)) != 0) {
      tabula::fuzz::broken_promise("reversed columns give other numbers");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  bool accepted = false;
  for (const CsvOptions& options : {CsvOptions{}, CsvOptions{.header = false},
                                    CsvOptions{.delimiter = ';'},
                                    CsvOptions{.delimiter = '\t', .header = false},
                                    CsvOptions{.delimiter = ' '}}) {
    accepted |= tabula::fuzz::read_or_refuse(kName, [&] {
      const CsvTable table = read_csv_string(text, options, kName);
      expect_consistent(table);
      if (options.header) expect_reversed_columns_mirror(text, options, table);
    });
  }
  tabula::fuzz::last_input_accepted = accepted;
  return 0;
}
