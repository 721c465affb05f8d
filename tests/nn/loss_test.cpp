#include "nn/detail/loss.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include "tabula/tabula.hpp"

namespace tabula {
namespace {

using detail::Loss;

class LossTest : public ::testing::Test {
 protected:
  Session session_{{.name = "losses", .seed = 5}};
  SessionScope use_{session_};
};

// dL/dp from compute() against central differences of compute()'s value, in float64 steps
// over float32 data.
void expect_gradient_matches(const Loss& loss, Tensor p, const Tensor& y) {
  Tensor grad = zeros(p.shape());
  loss.compute(p, y, &grad, false);
  float* v = p.data<float>();
  const auto analytic = grad.to_vector<float>();
  for (std::int64_t i = 0; i < p.numel(); ++i) {
    const float saved = v[i];
    const float h = 1e-3f;
    v[i] = saved + h;
    const double plus = loss.compute(p, y, nullptr, false);
    v[i] = saved - h;
    const double minus = loss.compute(p, y, nullptr, false);
    v[i] = saved;
    const double numeric = (plus - minus) / (2.0 * h);
    EXPECT_NEAR(analytic[i], numeric, 2e-3 + 2e-2 * std::fabs(numeric))
        << loss.name() << " element " << i;
  }
}

Tensor probabilities() {
  return from_vector(std::vector<float>{0.2f, 0.5f, 0.3f, 0.6f, 0.1f, 0.3f}, Shape{2, 3});
}

TEST_F(LossTest, CategoricalCrossEntropyMatchesItsDefinitionAndGradient) {
  Loss loss = Loss::from_name("categorical_crossentropy");
  Tensor y = from_vector(std::vector<float>{0, 1, 0, 0, 0, 1}, Shape{2, 3});
  EXPECT_NEAR(loss.compute(probabilities(), y, nullptr, false),
              -(std::log(0.5) + std::log(0.3)) / 2, 1e-6);
  expect_gradient_matches(loss, probabilities(), y);
}

TEST_F(LossTest, SparseCategoricalCrossEntropyTakesIntegerLabels) {
  Loss loss = Loss::from_name("sparse_categorical_crossentropy");
  Tensor y = from_vector(std::vector<std::int64_t>{1, 2});
  EXPECT_NEAR(loss.compute(probabilities(), y, nullptr, false),
              -(std::log(0.5) + std::log(0.3)) / 2, 1e-6);
  expect_gradient_matches(loss, probabilities(), y);
  Tensor bad = from_vector(std::vector<std::int64_t>{1, 3});
  EXPECT_THROW(loss.compute(probabilities(), bad, nullptr, false), InvalidArgument);
}

TEST_F(LossTest, FusedSoftmaxGradientIsProbabilitiesMinusTargets) {
  Loss loss = Loss::from_name("sparse_categorical_crossentropy");
  EXPECT_TRUE(loss.fuses_with(Activation::softmax));
  Tensor grad = zeros({2, 3});
  loss.compute(probabilities(), from_vector(std::vector<std::int64_t>{1, 2}), &grad, true);
  const auto g = grad.to_vector<float>();
  const std::vector<float> expected = {0.1f, -0.25f, 0.15f, 0.3f, 0.05f, -0.35f};
  for (std::size_t i = 0; i < g.size(); ++i) EXPECT_NEAR(g[i], expected[i], 1e-6);
}

TEST_F(LossTest, BinaryCrossEntropyMatchesItsDefinitionAndGradient) {
  Loss loss = Loss::from_name("binary_crossentropy");
  Tensor p = from_vector(std::vector<float>{0.9f, 0.2f, 0.6f}, Shape{3, 1});
  Tensor y = from_vector(std::vector<float>{1, 0, 0}, Shape{3, 1});
  EXPECT_NEAR(loss.compute(p, y, nullptr, false),
              -(std::log(0.9) + std::log(0.8) + std::log(0.4)) / 3, 1e-6);
  expect_gradient_matches(loss, p, y);
}

TEST_F(LossTest, RegressionLossesAreMeansOverEveryElement) {
  Tensor p = from_vector(std::vector<float>{1, 2, 3, 4}, Shape{2, 2});
  Tensor y = from_vector(std::vector<float>{0, 2, 5, 3}, Shape{2, 2});
  EXPECT_NEAR(Loss::from_name("mse").compute(p, y, nullptr, false), (1 + 0 + 4 + 1) / 4.0, 1e-6);
  EXPECT_NEAR(Loss::from_name("mae").compute(p, y, nullptr, false), (1 + 0 + 2 + 1) / 4.0, 1e-6);
  Tensor q = from_vector(std::vector<float>{1.5f, 2.2f, 3.3f, 4.1f}, Shape{2, 2});
  expect_gradient_matches(Loss::from_name("mean_squared_error"), q, y);
  expect_gradient_matches(Loss::from_name("mean_absolute_error"), q, y);
}

TEST_F(LossTest, UnknownNamesListTheKnownOnes) {
  try {
    Loss::from_name("hinge");
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("'hinge'"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("categorical_crossentropy"), std::string::npos);
  }
}

}  // namespace
}  // namespace tabula
