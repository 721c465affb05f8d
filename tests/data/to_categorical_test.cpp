#include "tabula/data/to_categorical.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "support/expect_error.hpp"
#include "tabula/tabula.hpp"

namespace tabula::utils {
namespace {

using testing::expect_contains;
using testing::thrown_message;

class ToCategoricalTest : public ::testing::Test {
 protected:
  Session session_{{.name = "to_categorical"}};
  SessionScope use_{session_};
};

TEST_F(ToCategoricalTest, EncodesEachLabelAsAOneHotRow) {
  const Tensor y = to_categorical(from_vector(std::vector<std::int64_t>{0, 2, 1}), 3);
  EXPECT_EQ(y.shape(), Shape({3, 3}));
  EXPECT_EQ(y.dtype(), DType::float32);
  EXPECT_EQ(y.category(), Category::data);
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{1, 0, 0,  //
                                                      0, 0, 1,  //
                                                      0, 1, 0}));
}

TEST_F(ToCategoricalTest, AcceptsInt32AndUint8LabelsOfAnyShape) {
  const Tensor y =
      to_categorical(from_vector(std::vector<std::int32_t>{1, 0, 0, 1}, Shape{2, 2}), 2);
  EXPECT_EQ(y.shape(), Shape({2, 2, 2}));
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{0, 1, 1, 0, 1, 0, 0, 1}));

  const Tensor z = to_categorical(from_vector(std::vector<std::uint8_t>{3}), 4);
  EXPECT_EQ(z.to_vector<float>(), (std::vector<float>{0, 0, 0, 1}));

  const Tensor scalar = to_categorical(from_vector(std::vector<std::int64_t>{1}, Shape{}), 3);
  EXPECT_EQ(scalar.shape(), Shape({3}));
}

TEST_F(ToCategoricalTest, ReplacesATrailingAxisOfOneLikeKeras) {
  const Tensor y = to_categorical(from_vector(std::vector<std::int64_t>{2, 0}, Shape{2, 1}), 3);
  EXPECT_EQ(y.shape(), Shape({2, 3}));
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{0, 0, 1, 1, 0, 0}));
  // Rank 1 keeps its axis: (1) gives (1, C).
  EXPECT_EQ(to_categorical(from_vector(std::vector<std::int64_t>{0}), 2).shape(), Shape({1, 2}));
}

TEST_F(ToCategoricalTest, InfersTheClassCountFromTheLargestLabel) {
  const Tensor y = to_categorical(from_vector(std::vector<std::int64_t>{0, 4, 2}));
  EXPECT_EQ(y.shape(), Shape({3, 5}));
  EXPECT_EQ(y.to_vector<float>()[1 * 5 + 4], 1.0f);
}

TEST_F(ToCategoricalTest, ALabelOutsideTheClassesNamesItsIndexAndValue) {
  const Tensor labels = from_vector(std::vector<std::int64_t>{0, 1, 10, 3});
  expect_contains(thrown_message<InvalidArgument>([&] { (void)to_categorical(labels, 10); }),
                  {"label at index 2", "expected a class index in [0, 10)", "got 10"});
  const Tensor grid = from_vector(std::vector<std::int32_t>{0, 1, 2, -1}, Shape{2, 2});
  expect_contains(thrown_message<InvalidArgument>([&] { (void)to_categorical(grid, 3); }),
                  {"label at index (1, 1)", "got -1"});
  expect_contains(thrown_message<InvalidArgument>([&] { (void)to_categorical(grid); }),
                  {"label at index (1, 1)", "got -1"});
}

TEST_F(ToCategoricalTest, RejectsNonPositiveClassCountsFloatLabelsAndEmptyInference) {
  const Tensor labels = from_vector(std::vector<std::int64_t>{0});
  expect_contains(thrown_message<InvalidArgument>([&] { (void)to_categorical(labels, 0); }),
                  {"num_classes", "expected > 0", "got 0"});
  expect_contains(thrown_message<InvalidArgument>([&] { (void)to_categorical(labels, -3); }),
                  {"got -3"});
  expect_contains(thrown_message<InvalidArgument>(
                      [&] { (void)to_categorical(from_vector(std::vector<float>{1}), 2); }),
                  {"dtype", "int32, int64 or uint8", "got float32"});
  expect_contains(thrown_message<InvalidArgument>(
                      [&] { (void)to_categorical(zeros({0}, {.dtype = DType::int64})); }),
                  {"at least one label"});
  // An empty tensor with an explicit class count is fine: shape (0, C).
  EXPECT_EQ(to_categorical(zeros({0}, {.dtype = DType::int64}), 4).shape(), Shape({0, 4}));
}

TEST_F(ToCategoricalTest, StaleLabelsThrowSessionCleared) {
  const Tensor labels = from_vector(std::vector<std::int64_t>{0, 1});
  session_.clear();
  EXPECT_THROW((void)to_categorical(labels, 2), SessionCleared);
}

}  // namespace
}  // namespace tabula::utils
