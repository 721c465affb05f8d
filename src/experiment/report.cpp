#include "tabula/experiment/report.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>
#include <sstream>

#include "experiment/detail/report_page.hpp"
#include "experiment/detail/result_json.hpp"
#include "tabula/core/errors.hpp"

namespace tabula::experiment {

namespace {

// A CSV field: quoted when it holds a comma, a quote or a line break (RFC 4180).
std::string field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string figure(double x) {
  char text[32];
  std::snprintf(text, sizeof text, "%.6g", x);
  return text;
}

std::vector<std::string> metric_names(const std::vector<TrialResult>& results) {
  std::set<std::string> names;
  for (const auto& r : results)
    for (const auto& [k, v] : r.metrics) names.insert(k);
  return {names.begin(), names.end()};
}

std::vector<const TrialResult*> by_index(const std::vector<TrialResult>& results) {
  std::vector<const TrialResult*> out;
  for (const auto& r : results) out.push_back(&r);
  std::sort(out.begin(), out.end(),
            [](const TrialResult* a, const TrialResult* b) { return a->index < b->index; });
  return out;
}

}  // namespace

std::string summary_csv(const SweepSpec& sweep, const std::vector<TrialResult>& results) {
  const auto metrics = metric_names(results);
  std::ostringstream s;
  s << "trial,status";
  for (const auto& p : sweep.parameter_names) s << "," << field(p);
  for (const auto& m : metrics) s << "," << field(m);
  s << ",seconds,library_peak_bytes,rss_after_bytes,rss_growth_bytes,bytes_after_clear,leaked,"
       "error\n";
  for (const TrialResult* r : by_index(results)) {
    s << r->index << "," << (r->ok ? "ok" : "failed");
    for (const auto& p : sweep.parameter_names) {
      const auto it = r->parameters.find(p);
      s << "," << (it == r->parameters.end() ? "" : field(to_string(it->second)));
    }
    for (const auto& m : metrics) {
      const auto it = r->metrics.find(m);
      s << "," << (it == r->metrics.end() ? "" : figure(it->second));
    }
    s << "," << figure(r->seconds) << "," << r->memory.library_peak << "," << r->memory.rss_after
      << "," << r->memory.rss_growth() << ","
      << r->memory.current_after_clear + r->memory.reserved_after_clear << ","
      << (r->memory.leaked() ? "true" : "false") << ","
      << field(r->ok ? "" : r->error_type + ": " + r->error) << "\n";
  }
  return s.str();
}

std::string report_html(const SweepSpec& sweep, const std::vector<TrialResult>& results) {
  nlohmann::json data;
  data["sweep"] = {{"name", sweep.name},
                   {"description", sweep.description},
                   {"path", sweep.path},
                   {"method", sweep.method},
                   {"metric", sweep.metric.name},
                   {"goal", sweep.metric.maximize ? "maximize" : "minimize"},
                   {"parameters", sweep.parameter_names},
                   {"planned", sweep.trials.size()}};
  std::vector<std::string> categories;
  for (Category c : kAllCategories) categories.emplace_back(name_of(c));
  data["categories"] = categories;
  nlohmann::json trials = nlohmann::json::array();
  // The timeline of the whole sweep: each trial's samples moved to the sweep's clock.
  std::vector<MemorySample> timeline;
  for (const TrialResult* r : by_index(results)) {
    trials.push_back(detail::to_json(*r));
    for (MemorySample s : r->timeline) {
      s.seconds += r->started;
      timeline.push_back(s);
    }
  }
  std::stable_sort(timeline.begin(), timeline.end(),
                   [](const MemorySample& a, const MemorySample& b) { return a.seconds < b.seconds; });
  nlohmann::json samples = nlohmann::json::array();
  for (const MemorySample& s : timeline) samples.push_back(detail::to_json(s));
  data["trials"] = trials;
  data["timeline"] = samples;

  // "</" inside a <script> element would end it early: JSON allows "<\/" for the same text.
  std::string json = data.dump();
  std::string safe;
  safe.reserve(json.size());
  for (std::size_t i = 0; i < json.size(); ++i) {
    if (json[i] == '<' && i + 1 < json.size() && json[i + 1] == '/') safe += "<\\";
    else safe += json[i];
  }
  return std::string(detail::kReportHead) + safe + detail::kReportTail;
}

void write_file_atomically(const std::string& path, const std::string& text) {
  const std::string temporary = path + ".tmp." + std::to_string(::getpid());
  std::FILE* f = std::fopen(temporary.c_str(), "wb");
  if (f == nullptr) throw Error(temporary + ": cannot create: " + std::strerror(errno));
  const bool written = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  const bool closed = std::fclose(f) == 0;
  if (!written || !closed) {
    std::remove(temporary.c_str());
    throw Error(temporary + ": cannot write (disk full?)");
  }
  std::error_code ec;
  std::filesystem::rename(temporary, path, ec);
  if (ec) {
    std::remove(temporary.c_str());
    throw Error(path + ": cannot replace: " + ec.message());
  }
}

std::size_t remove_stale_temporaries(const std::string& path) noexcept {
  std::size_t removed = 0;
  try {
    const std::filesystem::path target(path);
    const std::filesystem::path dir = target.has_parent_path() ? target.parent_path() : ".";
    const std::string prefix = target.filename().string() + ".tmp";
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      const std::string name = entry.path().filename().string();
      if (name.size() < prefix.size() + 2 || name.compare(0, prefix.size(), prefix) != 0) continue;
      if (name[prefix.size()] != '.' && name[prefix.size()] != '-') continue;
      const std::size_t begin = prefix.size() + 1;
      std::size_t end = begin;
      while (end < name.size() && end - begin < 10 && name[end] >= '0' && name[end] <= '9') ++end;
      if (end == begin || (end < name.size() && name[end] != '.' && name[end] != '-')) continue;
      const long pid = std::stol(name.substr(begin, end - begin));
      // Signal 0 only asks whether the process exists; EPERM: it does, as another user's.
      if (pid <= 0 || pid == ::getpid() || ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM)
        continue;
      if (std::filesystem::remove(entry.path(), ec)) ++removed;
    }
  } catch (const std::exception&) {
    // Best effort: what is left is only under a temporary name.
  }
  return removed;
}

}  // namespace tabula::experiment
