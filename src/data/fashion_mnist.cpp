#include "tabula/data/fashion_mnist.hpp"

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <sstream>
#include <system_error>
#include <vector>

#include "tabula/data/idx.hpp"

namespace tabula::datasets::fashion_mnist {

namespace {

namespace fs = std::filesystem;

constexpr std::int64_t kClassCount = 10;

struct SplitFiles {
  std::string_view split;   // "train" or "test", for names and messages
  std::string_view images;  // file name without ".gz"
  std::string_view labels;
};

constexpr SplitFiles kTrain{"train", "train-images-idx3-ubyte", "train-labels-idx1-ubyte"};
constexpr SplitFiles kTest{"test", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};

bool is_file(const fs::path& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

/// `<directory>/<name>.gz` (as Debian ships it), else the plain `<directory>/<name>`.
std::optional<std::string> find_file(const fs::path& directory, std::string_view name) {
  const fs::path gz = directory / (std::string(name) + ".gz");
  if (is_file(gz)) return gz.string();
  const fs::path plain = directory / std::string(name);
  if (is_file(plain)) return plain.string();
  return std::nullopt;
}

struct Paths {
  std::string train_images, train_labels, test_images, test_labels;
};

Paths find_files(const std::string& directory) {
  const fs::path dir(directory);
  std::vector<std::string> missing;
  const auto find = [&](std::string_view name) {
    auto found = find_file(dir, name);
    if (!found) missing.push_back((dir / (std::string(name) + ".gz")).string());
    return found.value_or(std::string());
  };
  Paths paths{find(kTrain.images), find(kTrain.labels), find(kTest.images), find(kTest.labels)};
  if (missing.empty()) return paths;

  std::error_code ec;
  const bool dir_exists = fs::is_directory(dir, ec);
  std::ostringstream list;
  for (std::size_t i = 0; i < missing.size(); ++i)
    list << (i ? ", " : "") << "'" << missing[i] << "'";
  TABULA_THROW(Error, "Fashion-MNIST: missing "
                          << (missing.size() == 1 ? "file " : "files ") << list.str()
                          << (dir_exists ? "" : " (the directory does not exist)")
                          << ". Install Debian's dataset-fashion-mnist package "
                          << "(sudo apt-get install dataset-fashion-mnist), or set "
                          << kDirectoryVariable
                          << " to a directory holding train-images-idx3-ubyte.gz, "
                          << "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz "
                          << "and t10k-labels-idx1-ubyte.gz (plain files work too)");
}

Split load_split(const SplitFiles& files, const std::string& images_path,
                 const std::string& labels_path) {
  const std::string prefix = "fashion_mnist_" + std::string(files.split);
  Split split;
  split.x = data::read_idx(images_path,
                           {.dtype = DType::float32, .scale = 1.0 / 255.0, .name = prefix + "_x"});
  split.y = data::read_idx(labels_path, {.dtype = DType::int64, .name = prefix + "_y"});

  const Shape& xs = split.x.shape();
  const Shape& ys = split.y.shape();
  TABULA_EXPECT(xs.rank() == 3, FormatError,
                "Fashion-MNIST " << files.split << " images '" << images_path << "'",
                "rank 3 (images, rows, columns)", "shape " << xs.str());
  TABULA_EXPECT(ys.rank() == 1, FormatError,
                "Fashion-MNIST " << files.split << " labels '" << labels_path << "'", "rank 1",
                "shape " << ys.str());
  TABULA_EXPECT(xs[0] == ys[0], FormatError,
                "Fashion-MNIST " << files.split << " split: images '" << images_path
                                 << "' and labels '" << labels_path << "'",
                "as many labels as images (" << xs[0] << ")", ys[0] << " labels");

  // The labels were read as int64 into the session: check them where they are.
  const Tensor host_labels = split.y.to(Device::cpu());
  const std::int64_t* labels = host_labels.data<std::int64_t>();
  for (std::int64_t i = 0; i < ys[0]; ++i) {
    TABULA_EXPECT(labels[i] >= 0 && labels[i] < kClassCount, FormatError,
                  "Fashion-MNIST labels '" << labels_path << "', label " << i,
                  "a class index in 0.." << kClassCount - 1, labels[i]);
  }
  return split;
}

}  // namespace

std::string default_directory() {
  const std::string variable(kDirectoryVariable);
  if (const char* value = std::getenv(variable.c_str()); value != nullptr && *value != '\0') {
    return value;
  }
  return std::string(kDebianDirectory);
}

std::pair<Split, Split> load_data(const std::string& directory) {
  const Paths paths = find_files(directory);
  Split train = load_split(kTrain, paths.train_images, paths.train_labels);
  Split test = load_split(kTest, paths.test_images, paths.test_labels);
  return {std::move(train), std::move(test)};
}

const std::array<std::string_view, 10>& class_names() noexcept {
  static constexpr std::array<std::string_view, 10> kNames = {
      "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
      "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return kNames;
}

}  // namespace tabula::datasets::fashion_mnist
