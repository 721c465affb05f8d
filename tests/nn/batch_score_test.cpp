// Scoring a batch at once — its loss, gradient and every metric, read back in one copy — gives
// what the loss and each metric give alone, and a bad batch is refused naming what is wrong.

#include "nn/detail/batch_score.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <sstream>
#include <vector>

#include "nn/detail/loss.hpp"
#include "nn/detail/metric.hpp"
#include "support/expect_error.hpp"
#include "tabula/tabula.hpp"

namespace tabula {
namespace {

using detail::BatchScore;
using detail::Loss;
using detail::Metric;
using detail::score_batch;

class BatchScoreTest : public ::testing::Test {
 protected:
  Session session_{{.name = "scores", .seed = 3}};
  SessionScope use_{session_};
};

// Three samples of four classes; the largest probability is right for samples 0 and 2.
Tensor probabilities() {
  return from_vector(std::vector<float>{0.1f, 0.6f, 0.2f, 0.1f,  //
                                        0.3f, 0.3f, 0.3f, 0.1f,  //
                                        0.05f, 0.05f, 0.1f, 0.8f},
                     Shape{3, 4});
}
Tensor labels() { return from_vector(std::vector<std::int32_t>{1, 2, 3}); }

TEST_F(BatchScoreTest, OneCallGivesTheLossGradientAndMetricsEachGivesAlone) {
  const Loss loss = Loss::from_name("sparse_categorical_crossentropy");
  const Tensor p = probabilities(), y = labels();
  const std::vector<Metric> metrics{Metric::resolve("accuracy", loss, Shape{4}),
                                    Metric::resolve("sparse_categorical_accuracy", loss, Shape{4})};
  Tensor alone_grad = zeros({3, 4}), together_grad = zeros({3, 4});
  const double alone = loss.compute(p, y, &alone_grad, true);
  const BatchScore together = score_batch(&loss, metrics, p, y, &together_grad, true);

  EXPECT_DOUBLE_EQ(together.loss, alone);
  EXPECT_NEAR(together.loss, -(std::log(0.6) + std::log(0.3) + std::log(0.8)) / 3, 1e-6);
  EXPECT_EQ(together_grad.to_vector<float>(), alone_grad.to_vector<float>());
  ASSERT_EQ(together.correct.size(), 2u);
  for (std::size_t i = 0; i < metrics.size(); ++i) {
    double correct = 0, counted = 0;
    metrics[i].accumulate(p, y, correct, counted);
    EXPECT_EQ(together.correct[i], correct) << metrics[i].name();
    EXPECT_EQ(together.counted[i], counted) << metrics[i].name();
  }
  // Sample 1's first largest probability is class 0; its label is 2.
  EXPECT_EQ(together.correct[0], 2.0);
  EXPECT_EQ(together.counted[0], 3.0);
}

TEST_F(BatchScoreTest, BinaryAccuracyCountsEveryOutputOfEverySample) {
  const Loss loss = Loss::from_name("binary_crossentropy");
  const Tensor p = from_vector(std::vector<float>{0.9f, 0.2f, 0.6f, 0.4f}, Shape{2, 2});
  const Tensor y = from_vector(std::vector<float>{1, 0, 0, 0}, Shape{2, 2});
  const std::vector<Metric> metrics{Metric::resolve("accuracy", loss, Shape{2})};
  const BatchScore score = score_batch(&loss, metrics, p, y, nullptr, false);
  EXPECT_EQ(score.correct[0], 3.0);  // 0.6 > 0.5 against a 0 target is the miss
  EXPECT_EQ(score.counted[0], 4.0);
  EXPECT_NEAR(score.loss, -(std::log(0.9) + std::log(0.8) + std::log(0.4) + std::log(0.6)) / 4,
              1e-6);
}

TEST_F(BatchScoreTest, AClassIndexOutOfRangeNamesTheSampleAndLeavesTheGradientDefined) {
  const Loss loss = Loss::from_name("sparse_categorical_crossentropy");
  const Tensor y = from_vector(std::vector<std::int64_t>{1, 4, -1});
  Tensor grad = full({3, 4}, 7.0f);
  const std::string message = testing::thrown_message<InvalidArgument>(
      [&] { (void)score_batch(&loss, {}, probabilities(), y, &grad, true); });
  testing::expect_contains(message, {"sample 1", "[0, 4)", "4"});
  // The bad rows' gradients are zeros, not left over or read from outside the row.
  const std::vector<float> g = grad.to_vector<float>();
  for (int c = 4; c < 12; ++c) EXPECT_EQ(g[c], 0.0f) << "gradient element " << c;
}

// A cast to an integer defines nothing for NaN or a negative fraction (the CPU and a GPU gave
// different classes): such a label is a bad one, shown as it was given.
TEST_F(BatchScoreTest, AFloatLabelThatIsNaNOrNegativeIsABadLabelShownAsGiven) {
  const Loss loss = Loss::from_name("sparse_categorical_crossentropy");
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (const float bad : {nan, -0.5f}) {
    const Tensor y = from_vector(std::vector<float>{1, bad, 2});
    const std::string message = testing::thrown_message<InvalidArgument>(
        [&] { (void)score_batch(&loss, {}, probabilities(), y, nullptr, false); });
    std::ostringstream shown;
    shown << bad;
    testing::expect_contains(message, {"sample 1", "[0, 4)", "got " + shown.str()});
  }
  const Tensor fractions = from_vector(std::vector<double>{1.5, 0.25, 3.75});
  EXPECT_NO_THROW((void)score_batch(&loss, {}, probabilities(), fractions, nullptr, false))
      << "fractions truncate to a class, as Keras casts them";
}

TEST_F(BatchScoreTest, CategoricalAccuracyRefusesClassIndicesAndSaysWhichMetricReadsThem) {
  const Loss loss = Loss::from_name("sparse_categorical_crossentropy");
  const std::vector<Metric> metrics{Metric::resolve("categorical_accuracy", loss, Shape{4})};
  const std::string message = testing::thrown_message<InvalidArgument>(
      [&] { (void)score_batch(&loss, metrics, probabilities(), labels(), nullptr, false); });
  testing::expect_contains(
      message, {"categorical_accuracy", "float32", "int32", "sparse_categorical_accuracy"});
}

TEST_F(BatchScoreTest, BuffersOfTheWrongSizeOrTypeAreRefusedBeforeAnythingIsWritten) {
  const Loss sparse = Loss::from_name("sparse_categorical_crossentropy");
  Tensor short_grad = full({2, 4}, 7.0f);
  testing::expect_contains(
      testing::thrown_message<InvalidArgument>(
          [&] { (void)score_batch(&sparse, {}, probabilities(), labels(), &short_grad, true); }),
      {"gradient", "12 elements", "8"});
  EXPECT_EQ(short_grad.to_vector<float>(), std::vector<float>(8, 7.0f));
  const Tensor two_labels = from_vector(std::vector<std::int32_t>{1, 2});
  testing::expect_contains(
      testing::thrown_message<InvalidArgument>(
          [&] { (void)score_batch(&sparse, {}, probabilities(), two_labels, nullptr, false); }),
      {"targets", "3 class indices", "2"});
  const Loss mse = Loss::from_name("mse");
  const Tensor integer_targets = from_vector(std::vector<std::int32_t>(12, 1), Shape{3, 4});
  testing::expect_contains(
      testing::thrown_message<InvalidArgument>(
          [&] { (void)score_batch(&mse, {}, probabilities(), integer_targets, nullptr, false); }),
      {"mean_squared_error targets", "float32", "int32"});
}

TEST_F(BatchScoreTest, BinaryAccuracyThresholdsFloat64TargetsAsFloat32Ones) {
  const Loss loss = Loss::from_name("binary_crossentropy");
  const std::vector<Metric> metrics{Metric::resolve("binary_accuracy", loss, Shape{1})};
  const Tensor p = from_vector(std::vector<float>{0.9f, 0.2f}, Shape{2, 1});
  const Tensor soft = from_vector(std::vector<double>{0.7, 0.3}, Shape{2, 1});
  EXPECT_EQ(score_batch(nullptr, metrics, p, soft, nullptr, false).correct[0], 2.0);
}

TEST_F(BatchScoreTest, MetricsAloneNeedNoLoss) {
  const Loss loss = Loss::from_name("sparse_categorical_crossentropy");
  const std::vector<Metric> metrics{Metric::resolve("accuracy", loss, Shape{4})};
  const BatchScore score = score_batch(nullptr, metrics, probabilities(), labels(), nullptr, false);
  EXPECT_EQ(score.loss, 0.0);
  EXPECT_EQ(score.correct[0], 2.0);
}

TEST_F(BatchScoreTest, AReservedBufferIsUsedInsteadOfNewScratch) {
  const Loss loss = Loss::from_name("sparse_categorical_crossentropy");
  const Tensor p = probabilities(), y = labels();
  const Tensor reserved =
      empty({detail::score_batch_doubles(3, 0)}, {.dtype = DType::float64, .name = "scores"});
  session_.reset_peak_memory();
  const std::size_t before = session_.memory_info(Device::cpu()).current;
  (void)score_batch(&loss, {}, p, y, nullptr, false, reserved);
  EXPECT_EQ(session_.memory_info(Device::cpu()).peak, before);
}

}  // namespace
}  // namespace tabula
