// save_weights / load_weights: safetensors files that round-trip exactly and fail loudly.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tabula/tabula.hpp"

namespace tabula {
namespace {

class WeightsFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("tabula_weights_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  static Sequential model(std::int64_t hidden = 8) {
    return Sequential({layers::Input({5}), layers::Dense(hidden, "tanh"),
                       layers::Dense(3, "softmax")});
  }
  static std::vector<std::vector<float>> values(const Sequential& m) {
    std::vector<std::vector<float>> out;
    for (const Tensor& w : m.get_weights()) out.push_back(w.to_vector<float>());
    return out;
  }

  Session session_{{.name = "weights", .seed = 21}};
  SessionScope use_{session_};
  std::filesystem::path dir_;
};

TEST_F(WeightsFileTest, SaveThenLoadReproducesPredictionsBitForBit) {
  const auto inputs = random_normal({16, 5}).to_vector<float>();
  Sequential a = model();
  const auto before = a.predict(from_vector(inputs, Shape{16, 5})).to_vector<float>();
  a.save_weights(path("a.safetensors"));
  // Weights are named by layer ("dense/kernel"); clearing starts names over, so the model
  // built again is named as the saved one was.
  session_.clear();
  Sequential b = model();
  const Tensor x = from_vector(inputs, Shape{16, 5});
  ASSERT_NE(b.predict(x).to_vector<float>(), before);
  b.load_weights(path("a.safetensors"));
  EXPECT_EQ(b.predict(x).to_vector<float>(), before);
}

TEST_F(WeightsFileTest, ATruncatedFileIsAFormatErrorAndTheModelIsUnchanged) {
  Sequential a = model();
  a.save_weights(path("full.safetensors"));
  const auto size = std::filesystem::file_size(path("full.safetensors"));
  std::filesystem::copy_file(path("full.safetensors"), path("cut.safetensors"));
  std::filesystem::resize_file(path("cut.safetensors"), size - 10);
  const auto before = values(a);
  EXPECT_THROW(a.load_weights(path("cut.safetensors")), FormatError);
  EXPECT_EQ(values(a), before);
}

TEST_F(WeightsFileTest, WrongShapesAreAFormatErrorNamingTheTensorAndTheModelIsUnchanged) {
  Sequential wide = model(16);
  wide.save_weights(path("wide.safetensors"));
  session_.clear();  // start names over so the narrow model's layers are called the same
  Sequential narrow = model(8);
  const auto before = values(narrow);
  try {
    narrow.load_weights(path("wide.safetensors"));
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("'dense/kernel'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("(5, 8)"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("(5, 16)"), std::string::npos) << e.what();
  }
  EXPECT_EQ(values(narrow), before);
}

TEST_F(WeightsFileTest, MissingOrExtraNamesAreAFormatError) {
  Sequential a = model();  // layers dense, dense_1
  a.save_weights(path("a.safetensors"));
  Sequential other({layers::Input({5}), layers::Dense(8, "tanh", {.name = "encoder"}),
                    layers::Dense(3, "softmax", {.name = "head"})});
  try {
    other.load_weights(path("a.safetensors"));
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("no tensor 'encoder/kernel'"), std::string::npos)
        << e.what();
  }
  Sequential smaller({layers::Input({5}), layers::Dense(8, "tanh", {.name = "dense"})});
  try {
    smaller.load_weights(path("a.safetensors"));
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("'dense_1/kernel'"), std::string::npos) << e.what();
  }
}

TEST_F(WeightsFileTest, AMissingFileNamesThePath) {
  Sequential a = model();
  try {
    a.load_weights(path("nope.safetensors"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("nope.safetensors"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tabula
