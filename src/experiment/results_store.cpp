#include "tabula/experiment/results_store.hpp"

#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "experiment/detail/result_json.hpp"
#include "tabula/core/errors.hpp"
#include "tabula/experiment/report.hpp"

namespace tabula::experiment {

namespace {

constexpr const char* kResults = "results.jsonl";
constexpr const char* kTimeline = "timeline.jsonl";

// Appends `line` + '\n' with a single write on an O_APPEND descriptor: a process killed at
// any moment leaves the line whole or absent (short writes to a regular file happen only
// when the disk is full, which is reported).
void append_line(const std::string& path, const std::string& line) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(path + ": cannot open for appending: " + std::strerror(errno));
  const std::string text = line + "\n";
  const ssize_t written = ::write(fd, text.data(), text.size());
  const int write_errno = errno;
  ::close(fd);
  if (written != static_cast<ssize_t>(text.size()))
    throw Error(path + ": cannot append a record: " +
                (written < 0 ? std::strerror(write_errno) : "short write (disk full?)"));
}

// The file's whole lines; a last line without its newline (torn by a kill) is cut off the
// file, so that appending goes on from a clean end.
std::vector<std::string> whole_lines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in(path, std::ios::binary);
  if (!in) return lines;
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::size_t end = text.rfind('\n');
  const std::size_t keep = end == std::string::npos ? 0 : end + 1;
  if (keep != text.size()) std::filesystem::resize_file(path, keep);
  std::size_t start = 0;
  while (start < keep) {
    const std::size_t nl = text.find('\n', start);
    if (nl > start) lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return lines;
}

}  // namespace

ResultsStore::ResultsStore(std::string directory, const SweepSpec& sweep, bool resume)
    : directory_(std::move(directory)), sweep_(&sweep) {
  std::error_code ec;
  std::filesystem::create_directories(directory_, ec);
  if (ec) throw Error(directory_ + ": cannot create the results directory: " + ec.message());
  const std::string results = path(kResults);
  if (!resume && std::filesystem::exists(results) && std::filesystem::file_size(results) > 0)
    throw Error(results + " already holds results; pass --resume to go on with that sweep, "
                "or --out another directory");
  // A sweep killed while rewriting a view leaves its temporary; those of dead writers go.
  for (const char* view : {"summary.csv", "report.html"}) remove_stale_temporaries(path(view));
  if (resume) read_back();
  // Proves the directory is writable before any trial runs.
  const int fd = ::open(path(kTimeline).c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(path(kTimeline) + ": cannot create: " + std::strerror(errno));
  ::close(fd);
}

void ResultsStore::read_back() {
  const std::string results = path(kResults);
  std::map<int, const PlannedTrial*> planned;
  for (const PlannedTrial& t : sweep_->trials) planned[t.index] = &t;
  int line_number = 0;
  for (const std::string& line : whole_lines(results)) {
    ++line_number;
    const std::string where = results + ":" + std::to_string(line_number);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw FormatError(where + ": not a JSON record: " + e.what());
    }
    TrialResult r;
    try {
      r = detail::result_from_json(j);
    } catch (const FormatError& e) {
      throw FormatError(where + ": " + e.what());
    }
    const auto it = planned.find(r.index);
    if (it == planned.end() || detail::to_json(it->second->parameters) != j.at("params"))
      throw FormatError(where + ": trial " + std::to_string(r.index) + " with " +
                        j.at("params").dump() + " is not a trial of " + sweep_->path +
                        "; these results come from another sweep (use another --out)");
    elapsed_ = std::max(elapsed_, r.started + r.seconds);
    results_.push_back(std::move(r));
  }
  // Timelines are a view: a damaged line loses that trial's chart, not its result.
  for (const std::string& line : whole_lines(path(kTimeline))) {
    try {
      const nlohmann::json j = nlohmann::json::parse(line);
      const int index = j.at("trial").get<int>();
      for (TrialResult& r : results_)
        if (r.index == index)
          for (const auto& s : j.at("samples")) r.timeline.push_back(detail::sample_from_json(s));
    } catch (const std::exception&) {
    }
  }
}

bool ResultsStore::contains(int index) const {
  return std::any_of(results_.begin(), results_.end(),
                     [index](const TrialResult& r) { return r.index == index; });
}

void ResultsStore::append(const TrialResult& result) {
  append_line(path(kResults), detail::to_json(result).dump());
  nlohmann::json samples = nlohmann::json::array();
  for (const MemorySample& s : result.timeline) samples.push_back(detail::to_json(s));
  append_line(path(kTimeline), nlohmann::json{{"trial", result.index}, {"samples", samples}}.dump());
  results_.push_back(result);
  elapsed_ = std::max(elapsed_, result.started + result.seconds);
  write_views();
#ifdef __GLIBC__
  // The views are built in large temporary strings; give their pages back now rather than
  // let them count as the next trial's growth.
  malloc_trim(0);
#endif
}

void ResultsStore::write_views() const {
  write_file_atomically(path("summary.csv"), summary_csv(*sweep_, results_));
  write_file_atomically(path("report.html"), report_html(*sweep_, results_));
}

}  // namespace tabula::experiment
