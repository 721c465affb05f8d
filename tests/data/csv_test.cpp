#include "tabula/data/csv.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "support/expect_error.hpp"
#include "tabula/tabula.hpp"

namespace tabula::data {
namespace {

namespace fs = std::filesystem;
using testing::expect_contains;
using testing::thrown_message;

class CsvTest : public ::testing::Test {
 protected:
  Session session_{{.name = "csv"}};
  SessionScope use_{session_};
};

std::string format_error(const std::string& text, const CsvOptions& options = {}) {
  return thrown_message<FormatError>([&] { (void)read_csv_string(text, options, "table.csv"); });
}

TEST_F(CsvTest, ParsesAHeaderAndRowsOfNumbers) {
  const CsvTable t = read_csv_string("a,b,c\n1,2,3\n4.5,-6,1e3\n", {});
  EXPECT_EQ(t.column_names, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(t.values.shape(), Shape({2, 3}));
  EXPECT_EQ(t.values.dtype(), DType::float32);
  EXPECT_EQ(t.values.category(), Category::data);
  EXPECT_EQ(t.values.to_vector<float>(), (std::vector<float>{1, 2, 3, 4.5f, -6, 1000}));
}

TEST_F(CsvTest, SelectsColumnsInTheRequestedOrderAndLeavesOthersUnparsed) {
  const CsvTable t = read_csv_string("name,x,y\nshirt,1,2\nboot,3,4\n", {.columns = {"y", "x"}});
  EXPECT_EQ(t.column_names, (std::vector<std::string>{"y", "x"}));
  EXPECT_EQ(t.values.to_vector<float>(), (std::vector<float>{2, 1, 4, 3}));
}

TEST_F(CsvTest, UnquotesFieldsWithDelimitersQuotesAndLineBreaks) {
  const std::string text =
      "\"a,1\",\"say \"\"hi\"\"\",\"multi\nline\"\n"
      "\"1.5\", \"2\" ,3\n";
  const CsvTable t = read_csv_string(text, {});
  EXPECT_EQ(t.column_names, (std::vector<std::string>{"a,1", "say \"hi\"", "multi\nline"}));
  EXPECT_EQ(t.values.to_vector<float>(), (std::vector<float>{1.5f, 2, 3}));
}

TEST_F(CsvTest, SkipsEmptyLinesAndAcceptsCrlfAndAByteOrderMark) {
  const CsvTable t = read_csv_string(
      "\xEF\xBB\xBF"
      "a,b\r\n\r\n1,2\r\n\n   \n3,4",
      {});
  EXPECT_EQ(t.column_names, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(t.values.shape(), Shape({2, 2}));
  EXPECT_EQ(t.values.to_vector<float>(), (std::vector<float>{1, 2, 3, 4}));
}

TEST_F(CsvTest, ReadsWithoutAHeaderAndWithAnotherDelimiter) {
  const CsvTable t = read_csv_string("1;2\n3;4\n", {.delimiter = ';', .header = false});
  EXPECT_EQ(t.column_names, (std::vector<std::string>{"0", "1"}));
  EXPECT_EQ(t.values.to_vector<float>(), (std::vector<float>{1, 2, 3, 4}));
  const CsvTable tabs = read_csv_string("x\ty\n5\t6\n", {.delimiter = '\t', .columns = {"y"}});
  EXPECT_EQ(tabs.values.to_vector<float>(), (std::vector<float>{6}));
}

TEST_F(CsvTest, AcceptsSpacesPlusSignsAndSpecialValues) {
  const auto v = read_csv_string("a,b,c,d\n 1 ,+2,nan,-inf\n", {}).values.to_vector<float>();
  ASSERT_EQ(v.size(), 4u);
  EXPECT_EQ(v[0], 1.0f);
  EXPECT_EQ(v[1], 2.0f);
  EXPECT_TRUE(std::isnan(v[2]));
  EXPECT_EQ(v[3], -INFINITY);
}

TEST_F(CsvTest, AHeaderWithoutRowsGivesZeroRows) {
  const CsvTable t = read_csv_string("a,b\n", {});
  EXPECT_EQ(t.values.shape(), Shape({0, 2}));
  EXPECT_EQ(read_csv_string("", {.header = false}).values.shape(), Shape({0, 0}));
}

TEST_F(CsvTest, ANonNumberIsReportedWithItsLineColumnAndText) {
  expect_contains(format_error("a,b\n1,2\n3,abc\n"),
                  {"CSV 'table.csv' line 3, column 'b'", "expected a number, got 'abc'"});
  expect_contains(format_error("a,b\n1,2x\n"), {"line 2, column 'b'", "got '2x'"});
  expect_contains(format_error("a,b\n1,\n"), {"line 2, column 'b'", "got ''"});
  expect_contains(format_error("a,b\n1,++2\n"), {"got '++2'"});
  expect_contains(format_error("a,b\n1,1e39\n"),
                  {"expected a number in float32's range", "got '1e39'"});
}

TEST_F(CsvTest, LineNumbersCountSkippedLinesAndLineBreaksInQuotes) {
  expect_contains(format_error("a,b\n\n\"x\ny\",2\n\r\n1,oops\n"),
                  {"line 3, column 'a'", "'x\ny'"});
  expect_contains(format_error("a,b\n\n\"x\ny\",2\n\r\n1,oops\n", {.columns = {"b"}}),
                  {"line 6, column 'b'", "'oops'"});
}

TEST_F(CsvTest, RaggedRowsAreAFormatError) {
  expect_contains(
      format_error("a,b,c\n1,2,3\n4,5\n"),
      {"CSV 'table.csv' line 3", "expected 3 fields (as in the header)", "got 2 fields"});
  expect_contains(format_error("a,b\n7\n"), {"line 2", "expected 2 fields", "got 1 field "});
  expect_contains(format_error("1,2\n3,4,5\n", {.header = false}),
                  {"line 2", "expected 2 fields (as in the first line)", "got 3 fields"});
}

TEST_F(CsvTest, BrokenQuotingIsAFormatError) {
  expect_contains(format_error("a,b\n1,\"2\n3,4\n"),
                  {"line 2", "unterminated quoted field", "got the end of the data"});
  expect_contains(
      format_error("a,b\n1,\"2\"x\n"),
      {"line 2", "expected a delimiter or the end of the line after a closing quote", "got 'x'"});
}

TEST_F(CsvTest, NoHeaderLineIsAFormatError) {
  expect_contains(format_error(""), {"CSV 'table.csv'", "expected a header line"});
  expect_contains(format_error("\n\r\n"), {"expected a header line"});
}

TEST_F(CsvTest, AnUnknownColumnIsAnInvalidArgumentListingTheAvailableOnes) {
  const std::string message = thrown_message<InvalidArgument>([] {
    (void)read_csv_string("alpha,beta\n1,2\n", {.columns = {"beta", "gamma"}}, "t.csv");
  });
  expect_contains(message,
                  {"t.csv", "unknown column 'gamma'", "available columns: 'alpha', 'beta'"});
}

TEST_F(CsvTest, ReadsFilesAndNamesThemInErrors) {
  const fs::path dir = fs::temp_directory_path() / ("tabula_csv_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string good = (dir / "good.csv").string();
  const std::string bad = (dir / "bad.csv").string();
  std::ofstream(good) << "x,y\n1,2\n3,4\n";
  std::ofstream(bad) << "x,y\n1,2\n3,four\n";

  const CsvTable t = read_csv(good);
  EXPECT_EQ(t.values.to_vector<float>(), (std::vector<float>{1, 2, 3, 4}));
  expect_contains(thrown_message<FormatError>([&] { (void)read_csv(bad); }),
                  {"CSV '" + bad + "' line 3, column 'y'", "expected a number, got 'four'"});
  const std::string missing = (dir / "missing.csv").string();
  expect_contains(thrown_message<Error>([&] { (void)read_csv(missing); }),
                  {"'" + missing + "'", "No such file or directory"});
  fs::remove_all(dir);
}

}  // namespace
}  // namespace tabula::data
