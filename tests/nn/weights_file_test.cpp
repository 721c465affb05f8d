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
  a.reset_weights(1);  // the file's weights are no longer the model's
  const auto reset = values(a);
  ASSERT_NE(reset, before);
  try {
    a.load_weights(path("cut.safetensors"));
    FAIL() << "a truncated file must not load";
  } catch (const FormatError& e) {
    // The last tensor now runs past the end of the (10 bytes shorter) byte buffer.
    const std::string m = e.what();
    EXPECT_NE(m.find("cut.safetensors"), std::string::npos) << m;
    EXPECT_NE(m.find("tensor '"), std::string::npos) << m;
    EXPECT_NE(m.find("data_offsets"), std::string::npos) << m;
    EXPECT_NE(m.find("a range inside the"), std::string::npos) << m;
  }
  EXPECT_EQ(values(a), reset);
  // Cut inside the header, or inside the length in front of it: named as such.
  std::filesystem::resize_file(path("cut.safetensors"), 40);
  try {
    a.load_weights(path("cut.safetensors"));
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("header length"), std::string::npos) << e.what();
  }
  std::filesystem::resize_file(path("cut.safetensors"), 5);
  try {
    a.load_weights(path("cut.safetensors"));
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("expected at least 8 bytes"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(values(a), reset);
}

TEST_F(WeightsFileTest, ABadHeaderIsAFormatErrorNamingTheProblemAndTheModelIsUnchanged) {
  Sequential a = model();
  a.save_weights(path("good.safetensors"));
  std::string bytes;
  {
    std::ifstream in(path("good.safetensors"), std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  ASSERT_GT(bytes.size(), 16u);
  ASSERT_EQ(bytes[8], '{');
  a.reset_weights(2);
  const auto before = values(a);
  auto load_damaged = [&](const std::string& damaged) {
    {
      std::ofstream out(path("bad.safetensors"), std::ios::binary | std::ios::trunc);
      out.write(damaged.data(), static_cast<std::streamsize>(damaged.size()));
    }
    try {
      a.load_weights(path("bad.safetensors"));
      ADD_FAILURE() << "a damaged header must not load";
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find("bad.safetensors"), std::string::npos) << e.what();
      EXPECT_EQ(values(a), before) << "after: " << e.what();
      return std::string(e.what());
    }
    return std::string();
  };
  std::string not_an_object = bytes;
  not_an_object[8] = '[';
  EXPECT_NE(load_damaged(not_an_object).find("a JSON object starting with '{'"),
            std::string::npos);
  std::string huge_length = bytes;
  huge_length[6] = '\x01';  // the little-endian header length now exceeds the file
  EXPECT_NE(load_damaged(huge_length).find("header length"), std::string::npos);
  std::string bad_dtype = bytes;
  const auto at = bad_dtype.find("\"F32\"");
  ASSERT_NE(at, std::string::npos);
  bad_dtype.replace(at, 5, "\"Q32\"");
  EXPECT_NE(load_damaged(bad_dtype).find("field 'dtype'"), std::string::npos);
  std::string broken_json = bytes;
  const auto colon = broken_json.find(':', 8);
  ASSERT_NE(colon, std::string::npos);
  broken_json[colon] = ';';
  EXPECT_NE(load_damaged(broken_json).find("header"), std::string::npos);
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

TEST_F(WeightsFileTest, MissingOrExtraNamesAreAFormatErrorAndTheModelIsUnchanged) {
  Sequential a = model();  // layers dense, dense_1
  a.save_weights(path("a.safetensors"));
  Sequential other({layers::Input({5}), layers::Dense(8, "tanh", {.name = "encoder"}),
                    layers::Dense(3, "softmax", {.name = "head"})});
  const auto other_before = values(other);
  try {
    other.load_weights(path("a.safetensors"));
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("no tensor 'encoder/kernel'"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(values(other), other_before);
  // The file's first layer matches this model's only one; the error about the file's
  // extra tensors must come before that layer's weights are overwritten.
  Sequential smaller({layers::Input({5}), layers::Dense(8, "tanh", {.name = "dense"})});
  const auto smaller_before = values(smaller);
  ASSERT_NE(smaller_before[0], values(a)[0]);
  try {
    smaller.load_weights(path("a.safetensors"));
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("'dense_1/kernel'"), std::string::npos) << e.what();
  }
  EXPECT_EQ(values(smaller), smaller_before);
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
