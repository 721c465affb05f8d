#include "tabula/core/tensor.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "tabula/tabula.hpp"

namespace tabula {
namespace {

class TensorTest : public ::testing::Test {
 protected:
  Session session_{{.name = "tensors", .seed = 1234}};
  SessionScope use_{session_};
};

TEST_F(TensorTest, ZerosOnesAndFullHoldTheirValues) {
  EXPECT_EQ(zeros({2, 3}).to_vector<float>(), std::vector<float>(6, 0.0f));
  EXPECT_EQ(ones({4}, {.dtype = DType::int32}).to_vector<std::int32_t>(),
            std::vector<std::int32_t>(4, 1));
  EXPECT_EQ(full({3}, 2.5, {.dtype = DType::float64}).to_vector<double>(),
            std::vector<double>(3, 2.5));
  EXPECT_EQ(full({2}, 7, {.dtype = DType::uint8}).to_vector<std::uint8_t>(),
            std::vector<std::uint8_t>(2, 7));
}

TEST_F(TensorTest, ReportsShapeDtypeDeviceAndBytes) {
  Tensor t = zeros({1000, 1000});
  EXPECT_EQ(t.shape(), Shape({1000, 1000}));
  EXPECT_EQ(t.dtype(), DType::float32);
  EXPECT_EQ(t.device(), Device::cpu());
  EXPECT_EQ(t.nbytes(), 4'000'000u);
  EXPECT_EQ(t.numel(), 1'000'000);
  EXPECT_EQ(t.category(), Category::data);
}

TEST_F(TensorTest, FromVectorRoundTripsAndChecksTheElementCount) {
  const std::vector<std::int64_t> labels = {3, 1, 4, 1, 5, 9};
  Tensor t = from_vector(labels, Shape{2, 3});
  EXPECT_EQ(t.dtype(), DType::int64);
  EXPECT_EQ(t.to_vector<std::int64_t>(), labels);
  EXPECT_THROW(from_vector(labels, Shape{4, 2}), InvalidArgument);
}

TEST_F(TensorTest, AstypeConvertsEveryElement) {
  Tensor t = from_vector(std::vector<float>{1.9f, -2.5f, 3.0f});
  EXPECT_EQ(t.astype(DType::int64).to_vector<std::int64_t>(),
            (std::vector<std::int64_t>{1, -2, 3}));
  EXPECT_EQ(t.astype(DType::float64).to_vector<double>(),
            (std::vector<double>{1.9f, -2.5f, 3.0f}));
}

TEST_F(TensorTest, ReshapeSharesDataAndCloneCopiesIt) {
  Tensor t = zeros({2, 6});
  Tensor view = t.reshape({3, 4});
  Tensor copy = t.clone();
  view.data<float>()[5] = 42.0f;
  EXPECT_EQ(t.to_vector<float>()[5], 42.0f);
  EXPECT_EQ(copy.to_vector<float>()[5], 0.0f);
  EXPECT_EQ(view.shape(), Shape({3, 4}));
  EXPECT_THROW(t.reshape({5, 5}), InvalidArgument);
}

TEST_F(TensorTest, TypedAccessWithTheWrongTypeIsAnError) {
  Tensor t = zeros({4});
  EXPECT_THROW(t.data<double>(), InvalidArgument);
  EXPECT_THROW(t.to_vector<std::int32_t>(), InvalidArgument);
}

TEST_F(TensorTest, AnEmptyHandleIsAnErrorToUseButSafeToCopy) {
  Tensor empty_handle;
  Tensor copy = empty_handle;
  EXPECT_FALSE(copy.defined());
  EXPECT_FALSE(copy.is_stale());
  EXPECT_THROW((void)copy.shape(), InvalidArgument);
}

TEST_F(TensorTest, RandomUniformStaysInItsRange) {
  const auto v = random_uniform({10000}, -0.5, 0.25).to_vector<float>();
  for (float x : v) {
    ASSERT_GE(x, -0.5f);
    ASSERT_LT(x, 0.25f);
  }
  const double mean = std::accumulate(v.begin(), v.end(), 0.0) / v.size();
  EXPECT_NEAR(mean, -0.125, 0.01);
}

TEST_F(TensorTest, RandomNormalHasItsMeanAndDeviation) {
  const auto v = random_normal({100000}, 3.0, 2.0).to_vector<float>();
  double sum = 0, sq = 0;
  for (float x : v) {
    sum += x;
    sq += static_cast<double>(x) * x;
  }
  const double mean = sum / v.size();
  const double stddev = std::sqrt(sq / v.size() - mean * mean);
  EXPECT_NEAR(mean, 3.0, 0.03);
  EXPECT_NEAR(stddev, 2.0, 0.03);
}

TEST_F(TensorTest, RandomCreationRejectsIntegerTypesAndEmptyRanges) {
  EXPECT_THROW(random_normal({3}, 0, 1, {.dtype = DType::int32}), InvalidArgument);
  EXPECT_THROW(random_uniform({3}, 1.0, 1.0), InvalidArgument);
  EXPECT_THROW(random_normal({3}, 0, -1), InvalidArgument);
}

TEST_F(TensorTest, ToTheSameDeviceReturnsTheSameData) {
  Tensor t = ones({3});
  Tensor same = t.to(Device::cpu());
  same.data<float>()[0] = 5.0f;
  EXPECT_EQ(t.to_vector<float>()[0], 5.0f);
}

TEST_F(TensorTest, ZeroElementTensorsAreValid) {
  Tensor t = zeros({0, 5});
  EXPECT_EQ(t.numel(), 0);
  EXPECT_TRUE(t.to_vector<float>().empty());
}

TEST(Shape, PrintsLikeKerasAndCountsElements) {
  EXPECT_EQ(Shape({60000, 28, 28}).str(), "(60000, 28, 28)");
  EXPECT_EQ(Shape({5}).str(), "(5,)");
  EXPECT_EQ(Shape().str(), "()");
  EXPECT_EQ(Shape().numel(), 1);
  EXPECT_EQ(Shape({2, 3, 4}).numel(), 24);
  EXPECT_EQ(Shape({2, 3, 4})[-1], 4);
}

TEST(Shape, RejectsNegativeExtentsAndOutOfRangeAxes) {
  EXPECT_THROW(Shape({2, -1}), InvalidArgument);
  EXPECT_THROW((void)Shape({2, 3})[2], InvalidArgument);
  EXPECT_THROW((void)Shape({2, 3})[-3], InvalidArgument);
}

TEST(Device, NamesItselfAndRejectsNegativeOrdinals) {
  EXPECT_EQ(Device::cpu().str(), "cpu");
  EXPECT_EQ(Device::cuda(1).str(), "cuda:1");
  EXPECT_THROW(Device::cuda(-1), InvalidArgument);
  EXPECT_GE(cuda_device_count(), 0);
}

TEST(Errors, MessagesSayExpectedGotAndWhere) {
  try {
    TABULA_EXPECT(1 == 2, InvalidArgument, "units", "> 0", -3);
    FAIL();
  } catch (const InvalidArgument& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("units: expected > 0, got -3"), std::string::npos) << m;
    EXPECT_NE(m.find("tensor_test.cpp:"), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace tabula
