// The sweep report: its CSV, and its HTML as a real browser draws it.

#include "tabula/experiment/report.hpp"

#include <gtest/gtest.h>

#include <filesystem>

#include "experiment/experiment_fixtures.hpp"
#include "support/command.hpp"
#include "support/expect_error.hpp"
#include "support/temp_dir.hpp"
#include "tabula/experiment/sweep_runner.hpp"

namespace tabula::experiment {
namespace {

using testing::expect_contains;

std::string find_chromium() {
  for (const char* p : {"/usr/bin/chromium", "/usr/bin/chromium-headless-shell",
                        "/usr/bin/chromium-browser", "/usr/bin/google-chrome"})
    if (std::filesystem::exists(p)) return p;
  return "";
}

std::string output_of(const std::string& command) { return testing::run_command(command).output; }

std::size_t count(const std::string& text, const std::string& part) {
  return testing::count_occurrences(text, part);
}

TrialResult result(int index, bool ok, double accuracy) {
  TrialResult r;
  r.index = index;
  r.parameters = {{"hidden", std::int64_t{8 * (index + 1)}}, {"act", std::string("a,\"b\"")}};
  r.ok = ok;
  if (ok) r.metrics = {{"loss", 0.5}, {"test_accuracy", accuracy}};
  else r.error_type = "OutOfMemory", r.error = "limit 64 KiB";
  r.memory.rss_baseline = 1000;
  r.memory.rss_after = 1500;
  r.memory.tolerance = 1000;
  return r;
}

TEST(SummaryCsv, HasARowPerTrialInIndexOrderWithQuotedFields) {
  SweepSpec sweep;
  sweep.parameter_names = {"hidden", "act"};
  const std::string csv = summary_csv(sweep, {result(1, true, 0.8), result(0, false, 0)});
  const std::string header =
      "trial,status,hidden,act,loss,test_accuracy,seconds,library_peak_bytes,rss_after_bytes,"
      "rss_growth_bytes,bytes_after_clear,leaked,error\n";
  EXPECT_EQ(csv.substr(0, header.size()), header);
  expect_contains(csv, {"\n0,failed,8,\"a,\"\"b\"\"\",,,", "0,false,OutOfMemory: limit 64 KiB\n",
                        "\n1,ok,16,\"a,\"\"b\"\"\",0.5,0.8,0,0,1500,500,0,false,\n"});
  EXPECT_LT(csv.find("\n0,"), csv.find("\n1,"));
}

TEST(ReportHtml, EmbedsItsDataSafelyInsideTheScript) {
  SweepSpec sweep;
  sweep.name = "</script><b>x";
  const std::string html = report_html(sweep, {});
  EXPECT_EQ(count(html, "</script>"), 2u);  // the data's own "</script>" is written "<\/script>"
  EXPECT_NE(html.find("<\\/script><b>x"), std::string::npos);
}

TEST(ReportHtml, DrawsEveryChartInHeadlessChromium) {
  const std::string chromium = find_chromium();
  if (chromium.empty()) GTEST_SKIP() << "Chromium is not installed (Debian's chromium package)";
  testing::TempDir dir("report");
  const SweepSpec sweep = parse_sweep(testing::small_sweep("[8, 16]", "[0, 64KiB]"), "small.yaml");
  SweepOptions options;
  options.out_dir = dir.file("out");
  options.verbose = 0;
  run_sweep(sweep, options);
  const std::string page = "file://" + dir.file("out/report.html");
  const std::string flags = " --headless --no-sandbox --disable-gpu --hide-scrollbars"
                            " --user-data-dir='" + dir.file("profile") + "'";
  const std::string dom =
      output_of("timeout 120 '" + chromium + "'" + flags + " --dump-dom '" + page + "' 2>/dev/null");
  ASSERT_FALSE(dom.empty()) << "Chromium printed no page";
  EXPECT_NE(dom.find("data-charts-drawn=\"3\""), std::string::npos) << "the script did not finish";
  EXPECT_EQ(count(dom, "class=\"bar\""), 2u);          // two ok trials with the metric
  EXPECT_EQ(count(dom, "class=\"failed-mark\""), 2u);  // two trials out of memory
  EXPECT_EQ(count(dom, "class=\"area\""), 7u);         // one area per category
  EXPECT_EQ(count(dom, "class=\"rss\""), 1u);
  EXPECT_GE(count(dom, "class=\"peak\""), 6u);  // weights, gradients, optimizer... of 2 trials
  EXPECT_EQ(count(dom, "<td class=\"l err"), 4u);  // a status cell per trial
  EXPECT_NE(dom.find("failed (OutOfMemory)"), std::string::npos);

  // The screenshot is kept as a build artifact, for a person to look at.
  const std::filesystem::path artifacts = TABULA_TEST_ARTIFACTS_DIR;
  std::filesystem::create_directories(artifacts);
  const std::string shot = (artifacts / "sweep-report.png").string();
  std::filesystem::remove(shot);
  output_of("timeout 120 '" + chromium + "'" + flags + " --window-size=1100,1400 --screenshot='" +
            shot + "' '" + page + "' 2>/dev/null");
  std::filesystem::copy_file(dir.file("out/report.html"), artifacts / "sweep-report.html",
                             std::filesystem::copy_options::overwrite_existing);
  ASSERT_TRUE(std::filesystem::exists(shot));
  EXPECT_GT(std::filesystem::file_size(shot), 20000u);  // a drawn page, not a blank one
}

}  // namespace
}  // namespace tabula::experiment
