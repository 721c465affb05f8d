#include "tabula/nn/layers/dense.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "support/gradient_check.hpp"
#include "tabula/tabula.hpp"

namespace tabula {
namespace {

class DenseTest : public ::testing::Test {
 protected:
  Session session_{{.name = "dense", .seed = 3}};
  SessionScope use_{session_};
};

TEST_F(DenseTest, ComputesXTimesKernelPlusBias) {
  Layer dense = layers::Dense(2);
  dense->build({3});
  auto params = dense->parameters();
  ASSERT_EQ(params.size(), 2u);
  EXPECT_EQ(params[0]->name, "kernel");
  EXPECT_EQ(params[0]->value.shape(), Shape({3, 2}));
  const std::vector<float> kernel = {1, 2, 3, 4, 5, 6}, bias = {0.5f, -1};
  std::copy(kernel.begin(), kernel.end(), params[0]->value.data<float>());
  std::copy(bias.begin(), bias.end(), params[1]->value.data<float>());
  Tensor x = from_vector(std::vector<float>{1, 0, -1, 2, 1, 0}, Shape{2, 3});
  Tensor y = zeros({2, 2});
  dense->forward(x, y, false);
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{1 - 5 + 0.5f, 2 - 6 - 1, 2 + 3 + 0.5f,
                                                      4 + 4 - 1}));
}

TEST_F(DenseTest, AppliesItsActivation) {
  Layer dense = layers::Dense(1, "relu");
  dense->build({1});
  dense->parameters()[0]->value.data<float>()[0] = 1.0f;
  Tensor x = from_vector(std::vector<float>{-2, 3}, Shape{2, 1});
  Tensor y = zeros({2, 1});
  dense->forward(x, y, false);
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{0, 3}));
}

TEST_F(DenseTest, NamesItselfLikeKerasAndItsWeightsAfterItself) {
  Layer a = layers::Dense(4), b = layers::Dense(4);
  EXPECT_EQ(a.name(), "dense");
  EXPECT_EQ(b.name(), "dense_1");
  b->build({2});
  EXPECT_EQ(b->parameters()[0]->value.name(), "dense_1/kernel");
  EXPECT_EQ(b->parameters()[0]->value.category(), Category::weights);
}

TEST_F(DenseTest, GradientsMatchFiniteDifferencesForEveryActivation) {
  for (const char* activation : {"linear", "relu", "sigmoid", "tanh", "softmax"}) {
    Layer dense = layers::Dense(5, activation);
    EXPECT_EQ(testing::check_gradients(dense.impl(), {7}), "") << activation;
  }
}

TEST_F(DenseTest, GradientsMatchFiniteDifferencesOnHigherRankInputs) {
  Layer dense = layers::Dense(3, "tanh", {.use_bias = false});
  EXPECT_EQ(testing::check_gradients(dense.impl(), {4, 6}), "");
  EXPECT_EQ(dense->output_shape(), Shape({4, 3}));
}

TEST_F(DenseTest, RejectsNonPositiveUnitsAndUnknownActivations) {
  EXPECT_THROW(layers::Dense(0), InvalidArgument);
  try {
    layers::Dense(3, "relu6");
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("'relu6'"), std::string::npos) << e.what();
  }
}

TEST_F(DenseTest, ActivationLayerGradientsMatchFiniteDifferences) {
  for (const char* activation : {"relu", "sigmoid", "tanh", "softmax", "linear"}) {
    Layer act = layers::Activation(activation);
    EXPECT_EQ(testing::check_gradients(act.impl(), {6}, {.min_abs_input = 0.05f}), "")
        << activation;
  }
}

TEST_F(DenseTest, DropoutZeroesAboutItsRateAndScalesTheRest) {
  Layer dropout = layers::Dropout(0.25);
  dropout->build({1000});
  dropout->reserve(4);
  Tensor x = ones({4, 1000});
  Tensor y = zeros({4, 1000});
  dropout->forward(x, y, true);
  const auto v = y.to_vector<float>();
  const auto zeroed = std::count(v.begin(), v.end(), 0.0f);
  EXPECT_NEAR(static_cast<double>(zeroed) / v.size(), 0.25, 0.03);
  for (float value : v) EXPECT_TRUE(value == 0.0f || std::fabs(value - 1.0f / 0.75f) < 1e-6f);
  // Backward uses the same mask.
  Tensor dy = ones({4, 1000}), dx = zeros({4, 1000});
  dropout->backward(x, y, dy, &dx);
  EXPECT_EQ(dx.to_vector<float>(), v);
  // Inference is the identity.
  dropout->forward(x, y, false);
  EXPECT_EQ(y.to_vector<float>(), x.to_vector<float>());
  EXPECT_THROW(layers::Dropout(1.0), InvalidArgument);
}

}  // namespace
}  // namespace tabula
