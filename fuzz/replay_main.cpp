// The fuzz targets' inputs replayed without libFuzzer (g++ builds, ctest): runs
// LLVMFuzzerTestOneInput once on every file of the directories and files given, in name order,
// printing each before it runs so that a crash names its input.
//
//   <reader>_fuzz_replay [--valid] PATH... [--any PATH...]
//
// Files after --valid (a seed corpus) must be accepted by the target; files after --any (the
// default: regressions, a fuzzer's crash files) need only keep the contract. Exits non-zero
// when a path is missing or a directory is empty, so that a moved corpus cannot pass by
// replaying nothing.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "fuzz_contract.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

namespace fs = std::filesystem;

std::vector<char> read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// The files a path stands for (itself, or a directory's regular files by name); empty when
/// the path is missing or a directory holds none.
std::vector<fs::path> inputs_of(const fs::path& path) {
  std::error_code error;
  if (fs::is_regular_file(path, error)) return {path};
  std::vector<fs::path> files;
  if (!fs::is_directory(path, error)) return files;
  for (const auto& entry : fs::directory_iterator(path, error)) {
    if (entry.is_regular_file(error)) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

int main(int argc, char** argv) {
  bool must_accept = false;
  std::size_t ran = 0, refused_seeds = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--valid" || arg == "--any") {
      must_accept = arg == "--valid";
      continue;
    }
    const std::vector<fs::path> files = inputs_of(arg);
    if (files.empty()) {
      std::fprintf(stderr, "replay: '%s' is missing or holds no files\n", argv[i]);
      return 2;
    }
    for (const fs::path& file : files) {
      std::printf("replay: %s\n", file.c_str());
      std::fflush(stdout);
      const std::vector<char> bytes = read_file(file);
      tabula::fuzz::last_input_accepted = false;
      LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
      if (must_accept && !tabula::fuzz::last_input_accepted) {
        std::fprintf(stderr,
                     "replay: seed %s was refused; a seed corpus holds valid files only "
                     "(TABULA_FUZZ_PRINT_ERRORS=1 says why)\n",
                     file.c_str());
        ++refused_seeds;
      }
      ++ran;
    }
  }
  if (ran == 0) {
    std::fprintf(stderr, "usage: %s [--valid] PATH... [--any PATH...]\n", argv[0]);
    return 2;
  }
  std::printf("replay: ran %zu inputs, %zu seeds refused\n", ran, refused_seeds);
  return refused_seeds == 0 ? 0 : 1;
}
