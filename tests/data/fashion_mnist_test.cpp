#include "tabula/data/fashion_mnist.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "data/fixtures/idx_bytes.hpp"
#include "support/expect_error.hpp"
#include "tabula/tabula.hpp"

namespace tabula::datasets::fashion_mnist {
namespace {

namespace fs = std::filesystem;
using testing::Bytes;
using testing::expect_contains;

/// Sets an environment variable for one test and puts the old value back afterwards.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value != nullptr) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return {};
}

class FashionMnistTest : public ::testing::Test {
 protected:
  Session session_{{.name = "fashion_mnist"}};
  SessionScope use_{session_};
};

// ---- the real dataset (Debian's dataset-fashion-mnist) -----------------------------------

/// Loads the installed dataset once per test; skips when it is not installed.
class InstalledFashionMnistTest : public FashionMnistTest {
 protected:
  void SetUp() override {
    if (!fs::exists(fs::path(kDebianDirectory) / "train-images-idx3-ubyte.gz")) {
      GTEST_SKIP() << "Fashion-MNIST is not installed in " << kDebianDirectory
                   << ": sudo apt-get install dataset-fashion-mnist";
    }
    const auto start = std::chrono::steady_clock::now();
    std::tie(train_, test_) = load_data(std::string(kDebianDirectory));
    load_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }

  Split train_, test_;
  double load_seconds_ = 0;
};

TEST_F(InstalledFashionMnistTest, LoadsBothSplitsWithKerasShapesAndDtypes) {
  std::cout << "load_data took " << load_seconds_ * 1000 << " ms\n";
  RecordProperty("load_data_ms", static_cast<int>(load_seconds_ * 1000));
  EXPECT_EQ(train_.x.shape(), Shape({60000, 28, 28}));
  EXPECT_EQ(train_.y.shape(), Shape({60000}));
  EXPECT_EQ(test_.x.shape(), Shape({10000, 28, 28}));
  EXPECT_EQ(test_.y.shape(), Shape({10000}));
  EXPECT_EQ(train_.x.dtype(), DType::float32);
  EXPECT_EQ(train_.y.dtype(), DType::int64);
  EXPECT_EQ(test_.x.dtype(), DType::float32);
  EXPECT_EQ(test_.y.dtype(), DType::int64);
}

TEST_F(InstalledFashionMnistTest, PixelsAreBytesScaledIntoTheUnitInterval) {
  for (const Split* split : {&train_, &test_}) {
    const float* x = split->x.data<float>();
    const std::int64_t n = split->x.numel();
    float lo = 1.0f, hi = 0.0f;
    double sum = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      lo = std::min(lo, x[i]);
      hi = std::max(hi, x[i]);
      sum += x[i];
      const float byte = std::round(x[i] * 255.0f);
      ASSERT_EQ(x[i], byte / 255.0f) << "pixel " << i << " is not a byte / 255";
    }
    EXPECT_EQ(lo, 0.0f);
    EXPECT_EQ(hi, 1.0f);
    // The mean pixel of Fashion-MNIST is about 0.286 (72.94 / 255).
    EXPECT_NEAR(sum / static_cast<double>(n), 0.286, 0.002);
  }
}

TEST_F(InstalledFashionMnistTest, HasTenBalancedClasses) {
  const auto count = [](const Tensor& y) {
    std::array<std::int64_t, 10> counts{};
    for (std::int64_t label : y.to_vector<std::int64_t>()) {
      EXPECT_GE(label, 0);
      EXPECT_LE(label, 9);
      if (label >= 0 && label <= 9) ++counts[static_cast<std::size_t>(label)];
    }
    return counts;
  };
  std::array<std::int64_t, 10> six_thousand, one_thousand;
  six_thousand.fill(6000);
  one_thousand.fill(1000);
  EXPECT_EQ(count(train_.y), six_thousand);
  EXPECT_EQ(count(test_.y), one_thousand);
}

TEST_F(InstalledFashionMnistTest, FirstLabelsMatchThePublishedFiles) {
  // The first training image is an ankle boot (9), then two T-shirts (0); the first test image
  // is also an ankle boot, then a pullover (2) and two trousers (1).
  const auto train = train_.y.to_vector<std::int64_t>();
  const auto test = test_.y.to_vector<std::int64_t>();
  EXPECT_EQ(std::vector<std::int64_t>(train.begin(), train.begin() + 4),
            (std::vector<std::int64_t>{9, 0, 0, 3}));
  EXPECT_EQ(std::vector<std::int64_t>(test.begin(), test.begin() + 4),
            (std::vector<std::int64_t>{9, 2, 1, 1}));
  EXPECT_EQ(class_names()[9], "Ankle boot");
}

TEST_F(InstalledFashionMnistTest, IsAccountedAsDataAndGivenBackOnClear) {
  const std::size_t bytes =
      train_.x.nbytes() + train_.y.nbytes() + test_.x.nbytes() + test_.y.nbytes();
  EXPECT_EQ(bytes, (60000u + 10000u) * (28u * 28u * 4u + 8u));
  EXPECT_GE(session_.memory_info().by_category[Category::data], bytes);
  EXPECT_EQ(train_.x.category(), Category::data);
  session_.clear();
  EXPECT_EQ(session_.memory_info().by_category[Category::data], 0u);
  EXPECT_THROW((void)train_.x.to_vector<float>(), SessionCleared);
}

// ---- a tiny dataset of our own, so that these run without the package --------------------

class TinyFashionMnistTest : public FashionMnistTest {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("tabula_fmnist_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  static Bytes header(unsigned char ndims, std::initializer_list<std::uint32_t> dims) {
    Bytes out = testing::idx_header(0x08, dims);
    out[3] = ndims;
    return out;
  }

  void write_file(const std::string& name, const Bytes& bytes) {
    std::ofstream(dir_ / name, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
  }

  void write_gz(const std::string& name, const Bytes& bytes) {
    write_file(name, testing::gzip(bytes));
  }

  /// `images` 2x2 images whose pixels are 0, 51, 102, 255 and labels 0, 1, 2, ...
  void write_split(const std::string& prefix, std::uint32_t images, std::uint32_t labels,
                   std::uint8_t first_label = 0) {
    Bytes x = header(3, {images, 2, 2});
    for (std::uint32_t i = 0; i < images; ++i) x.insert(x.end(), {0, 51, 102, 255});
    Bytes y = header(1, {labels});
    for (std::uint32_t i = 0; i < labels; ++i)
      y.push_back(static_cast<unsigned char>((first_label + i) % 10));
    write_gz(prefix + "-images-idx3-ubyte.gz", x);
    write_gz(prefix + "-labels-idx1-ubyte.gz", y);
  }

  fs::path dir_;
};

TEST_F(TinyFashionMnistTest, ReadsTheDirectoryNamedByTheEnvironmentVariable) {
  write_split("train", 3, 3);
  write_split("t10k", 2, 2, 7);
  ScopedEnv env("TABULA_FASHION_MNIST_DIR", dir_.c_str());
  EXPECT_EQ(default_directory(), dir_.string());

  auto [train, test] = load_data();
  EXPECT_EQ(train.x.shape(), Shape({3, 2, 2}));
  EXPECT_EQ(test.x.shape(), Shape({2, 2, 2}));
  EXPECT_EQ(test.x.to_vector<float>(), (std::vector<float>{0, 0.2f, 0.4f, 1, 0, 0.2f, 0.4f, 1}));
  EXPECT_EQ(train.y.to_vector<std::int64_t>(), (std::vector<std::int64_t>{0, 1, 2}));
  EXPECT_EQ(test.y.to_vector<std::int64_t>(), (std::vector<std::int64_t>{7, 8}));
  EXPECT_EQ(train.x.name(), "fashion_mnist_train_x");
}

TEST_F(TinyFashionMnistTest, TheDefaultDirectoryIsDebiansWithoutTheVariable) {
  ScopedEnv unset("TABULA_FASHION_MNIST_DIR", nullptr);
  EXPECT_EQ(default_directory(), "/usr/share/datasets/fashion-mnist");
  ScopedEnv empty("TABULA_FASHION_MNIST_DIR", "");
  EXPECT_EQ(default_directory(), "/usr/share/datasets/fashion-mnist");
}

TEST_F(TinyFashionMnistTest, AMissingDirectoryNamesThePathAndTheDebianPackage) {
  const std::string missing = (dir_ / "nowhere").string();
  Error* kind = nullptr;
  std::string message;
  try {
    (void)load_data(missing);
  } catch (FormatError& e) {
    ADD_FAILURE() << "a missing file is not a format error: " << e.what();
  } catch (Error& e) {
    kind = &e;
    message = e.what();
  }
  ASSERT_NE(kind, nullptr);
  expect_contains(message,
                  {missing + "/train-images-idx3-ubyte.gz", missing + "/t10k-labels-idx1-ubyte.gz",
                   "does not exist", "dataset-fashion-mnist",
                   "sudo apt-get install dataset-fashion-mnist", "TABULA_FASHION_MNIST_DIR"});
}

TEST_F(TinyFashionMnistTest, AMissingFileIsNamedOnItsOwn) {
  write_split("train", 3, 3);
  write_split("t10k", 2, 2);
  fs::remove(dir_ / "t10k-labels-idx1-ubyte.gz");
  const std::string message = message_of([&] { (void)load_data(dir_.string()); });
  expect_contains(message, {"missing file '" + (dir_ / "t10k-labels-idx1-ubyte.gz").string() + "'",
                            "dataset-fashion-mnist"});
  EXPECT_EQ(message.find("train-images-idx3-ubyte.gz'"), std::string::npos) << message;
}

TEST_F(TinyFashionMnistTest, PlainFilesAreReadWhenThereIsNoGzippedOne) {
  write_split("train", 3, 3);
  write_split("t10k", 2, 2);
  // Replace one file by its plain form.
  const Bytes y = [] {
    Bytes out = header(1, {2});
    out.insert(out.end(), {4, 5});
    return out;
  }();
  fs::remove(dir_ / "t10k-labels-idx1-ubyte.gz");
  write_file("t10k-labels-idx1-ubyte", y);
  auto [train, test] = load_data(dir_.string());
  EXPECT_EQ(test.y.to_vector<std::int64_t>(), (std::vector<std::int64_t>{4, 5}));
}

TEST_F(TinyFashionMnistTest, DifferentImageAndLabelCountsAreAFormatError) {
  write_split("train", 3, 2);
  write_split("t10k", 2, 2);
  EXPECT_THROW((void)load_data(dir_.string()), FormatError);
  expect_contains(message_of([&] { (void)load_data(dir_.string()); }),
                  {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                   "expected as many labels as images (3)", "got 2 labels"});
}

TEST_F(TinyFashionMnistTest, ALabelOutsideTheTenClassesIsAFormatError) {
  write_split("train", 3, 3);
  Bytes y = header(1, {2});
  y.insert(y.end(), {3, 12});
  write_split("t10k", 2, 2);
  write_gz("t10k-labels-idx1-ubyte.gz", y);
  EXPECT_THROW((void)load_data(dir_.string()), FormatError);
  expect_contains(
      message_of([&] { (void)load_data(dir_.string()); }),
      {"t10k-labels-idx1-ubyte.gz", "label 1", "expected a class index in 0..9", "got 12"});
}

TEST_F(TinyFashionMnistTest, ImagesOfTheWrongRankAreAFormatError) {
  write_split("train", 3, 3);
  write_split("t10k", 2, 2);
  write_gz("t10k-images-idx3-ubyte.gz", [] {
    Bytes x = header(2, {2, 4});
    x.insert(x.end(), 8, 0);
    return x;
  }());
  expect_contains(message_of([&] { (void)load_data(dir_.string()); }),
                  {"t10k-images-idx3-ubyte.gz", "expected rank 3", "got shape (2, 4)"});
}

}  // namespace
}  // namespace tabula::datasets::fashion_mnist
