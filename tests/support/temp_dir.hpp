#pragma once
// A directory of the test's own under the system's temporary directory, removed afterwards.

#include <filesystem>
#include <string>

namespace tabula::testing {

class TempDir {
 public:
  /// Makes /tmp/tabula_<tag>_<pid>_<n> (a fresh one each time).
  explicit TempDir(const std::string& tag);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const noexcept { return path_; }
  /// The path of `name` inside the directory.
  std::string file(const std::string& name) const;
  /// Writes `text` to `name` and returns its path.
  std::string write(const std::string& name, const std::string& text) const;
  /// The whole of `name`; "" when it does not exist.
  std::string read(const std::string& name) const;

 private:
  std::filesystem::path path_;
};

}  // namespace tabula::testing
