// BatchNormalization: weights, Keras 3's training/inference semantics, moving statistics,
// finite-difference gradients and known answers from PyTorch.

#include "tabula/nn/layers/batch_normalization.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "support/fixtures.hpp"
#include "support/gradient_check.hpp"
#include "tabula/tabula.hpp"

namespace tabula {
namespace {

using layers::BatchNormalization;
using layers::BatchNormalizationOptions;

constexpr double kEpsilon = 1e-3;  // Keras 3's default

Parameter* find_parameter(LayerImpl& layer, const std::string& name) {
  for (Parameter* p : layer.parameters())
    if (p->name == name) return p;
  return nullptr;
}

std::vector<std::string> parameter_names(LayerImpl& layer) {
  std::vector<std::string> names;
  for (Parameter* p : layer.parameters()) names.push_back(p->name);
  return names;
}

void assign(const Tensor& t, const std::vector<float>& values) {
  ASSERT_EQ(static_cast<std::int64_t>(values.size()), t.numel());
  std::copy(values.begin(), values.end(), t.data<float>());
}

Shape batched(std::int64_t rows, const Shape& per_sample) {
  std::vector<std::int64_t> dims{rows};
  dims.insert(dims.end(), per_sample.dims().begin(), per_sample.dims().end());
  return Shape(std::move(dims));
}

/// Per-channel mean and biased variance of channels-last `t`, in double.
struct ChannelStatistics {
  std::vector<double> mean, variance;
};
ChannelStatistics statistics_of(const Tensor& t) {
  const std::int64_t channels = t.shape()[-1];
  const std::int64_t rows = t.numel() / channels;
  const auto v = t.to_vector<float>();
  ChannelStatistics s{std::vector<double>(channels, 0.0), std::vector<double>(channels, 0.0)};
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < channels; ++c) s.mean[c] += v[r * channels + c];
  for (auto& m : s.mean) m /= static_cast<double>(rows);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < channels; ++c) {
      const double d = v[r * channels + c] - s.mean[c];
      s.variance[c] += d * d;
    }
  for (auto& var : s.variance) var /= static_cast<double>(rows);
  return s;
}

/// Inputs whose channels have different offsets and spreads: x[..., c] ~ N(c - 2, 0.5 + c/4).
Tensor channel_shifted_input(const Shape& shape) {
  Tensor x = random_normal(shape);
  const std::int64_t channels = shape[-1];
  float* v = x.data<float>();
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    const auto c = static_cast<float>(i % channels);
    v[i] = v[i] * (0.5f + 0.25f * static_cast<float>(static_cast<int>(c) % 8)) +
           (static_cast<float>(static_cast<int>(c) % 5) - 2.0f);
  }
  return x;
}

/// Builds and initialises `layer` for per-sample `input`, with buffers for `batch` samples.
void prepare(LayerImpl& layer, const Shape& input, std::int64_t batch) {
  layer.build(input);
  RandomGenerator rng(1);
  layer.initialize(rng);
  layer.reserve(batch);
}

// ---- weights ------------------------------------------------------------------------------

TEST(BatchNormalization, CreatesGammaBetaAndMovingStatisticsOverTheLastAxis) {
  Session s({.name = "bn"});
  SessionScope use(s);
  Layer bn = BatchNormalization();
  EXPECT_EQ(bn.name(), "batch_normalization");
  EXPECT_EQ(bn->type_name(), "BatchNormalization");
  EXPECT_EQ(bn->build({5, 7, 3}), Shape({5, 7, 3}));
  EXPECT_EQ(parameter_names(bn.impl()),
            (std::vector<std::string>{"gamma", "beta", "moving_mean", "moving_variance"}));
  const std::vector<std::pair<std::string, float>> initial = {
      {"gamma", 1.0f}, {"beta", 0.0f}, {"moving_mean", 0.0f}, {"moving_variance", 1.0f}};
  for (const auto& [name, value] : initial) {
    Parameter* p = find_parameter(bn.impl(), name);
    ASSERT_NE(p, nullptr) << name;
    EXPECT_EQ(p->value.shape(), Shape({3})) << name;
    EXPECT_EQ(p->value.category(), Category::weights) << name;
    EXPECT_EQ(p->trainable, name == "gamma" || name == "beta") << name;
    EXPECT_EQ(p->value.to_vector<float>(), std::vector<float>(3, value)) << name;
  }
  EXPECT_EQ(bn->count_params(), 12);
  EXPECT_EQ(bn->count_params(/*trainable_only=*/true), 6);
  EXPECT_EQ(BatchNormalization().name(), "batch_normalization_1");
}

TEST(BatchNormalization, LeavesOutGammaWithoutScaleAndBetaWithoutCenter) {
  Session s({.name = "bn"});
  SessionScope use(s);
  Layer no_gamma = BatchNormalization({.scale = false});
  no_gamma->build({4});
  EXPECT_EQ(parameter_names(no_gamma.impl()),
            (std::vector<std::string>{"beta", "moving_mean", "moving_variance"}));
  Layer no_beta = BatchNormalization({.center = false});
  no_beta->build({4});
  EXPECT_EQ(parameter_names(no_beta.impl()),
            (std::vector<std::string>{"gamma", "moving_mean", "moving_variance"}));
  Layer neither = BatchNormalization({.center = false, .scale = false, .name = "plain"});
  neither->build({4});
  EXPECT_EQ(neither.name(), "plain");
  EXPECT_EQ(parameter_names(neither.impl()),
            (std::vector<std::string>{"moving_mean", "moving_variance"}));
  EXPECT_EQ(neither->count_params(true), 0);
}

TEST(BatchNormalization, ResetStateRestoresMovingStatisticsAndInitializeResetsGammaAndBeta) {
  Session s({.name = "bn"});
  SessionScope use(s);
  Layer bn = BatchNormalization();
  prepare(bn.impl(), {2}, 4);
  Parameter* gamma = find_parameter(bn.impl(), "gamma");
  Parameter* beta = find_parameter(bn.impl(), "beta");
  Parameter* moving_mean = find_parameter(bn.impl(), "moving_mean");
  Parameter* moving_variance = find_parameter(bn.impl(), "moving_variance");
  assign(gamma->value, {3.0f, 4.0f});
  assign(beta->value, {-1.0f, 2.0f});
  assign(moving_mean->value, {0.5f, 0.25f});
  assign(moving_variance->value, {7.0f, 8.0f});

  bn->reset_state();
  EXPECT_EQ(moving_mean->value.to_vector<float>(), std::vector<float>(2, 0.0f));
  EXPECT_EQ(moving_variance->value.to_vector<float>(), std::vector<float>(2, 1.0f));
  EXPECT_EQ(gamma->value.to_vector<float>(), (std::vector<float>{3.0f, 4.0f}));  // untouched

  assign(moving_mean->value, {0.5f, 0.25f});
  RandomGenerator rng(3);
  bn->initialize(rng);
  EXPECT_EQ(gamma->value.to_vector<float>(), std::vector<float>(2, 1.0f));
  EXPECT_EQ(beta->value.to_vector<float>(), std::vector<float>(2, 0.0f));
  EXPECT_EQ(moving_mean->value.to_vector<float>(), std::vector<float>(2, 0.0f));
}

// ---- training and inference ---------------------------------------------------------------

TEST(BatchNormalization, NormalisesEachChannelToZeroMeanUnitVarianceWhileTraining) {
  Session s({.name = "bn", .seed = 11});
  SessionScope use(s);
  // NHWC images, and a wide 2-D input whose channels span more than one kernel block.
  for (const Shape& sample : {Shape{3, 4, 5}, Shape{300}}) {
    SCOPED_TRACE(sample.str());
    const std::int64_t batch = 6;
    Layer bn = BatchNormalization();
    prepare(bn.impl(), sample, batch);
    const Tensor x = channel_shifted_input(batched(batch, sample));
    const Tensor y = zeros(x.shape());
    bn->forward(x, y, /*training=*/true);

    const ChannelStatistics in = statistics_of(x), out = statistics_of(y);
    for (std::size_t c = 0; c < in.mean.size(); ++c) {
      EXPECT_NEAR(out.mean[c], 0.0, 1e-5) << "channel " << c;
      // The variance of the output is var / (var + epsilon), just under 1.
      EXPECT_NEAR(out.variance[c], in.variance[c] / (in.variance[c] + kEpsilon), 1e-5)
          << "channel " << c;
    }
  }
}

TEST(BatchNormalization, AppliesGammaAndBetaToTheNormalisedChannels) {
  Session s({.name = "bn", .seed = 12});
  SessionScope use(s);
  Layer bn = BatchNormalization();
  prepare(bn.impl(), {2, 3}, 8);
  assign(find_parameter(bn.impl(), "gamma")->value, {2.0f, -0.5f, 1.0f});
  assign(find_parameter(bn.impl(), "beta")->value, {-1.0f, 0.0f, 3.0f});
  const Tensor x = channel_shifted_input({8, 2, 3});
  const Tensor y = zeros(x.shape());
  bn->forward(x, y, true);

  const ChannelStatistics in = statistics_of(x), out = statistics_of(y);
  const double gamma[] = {2.0, -0.5, 1.0}, beta[] = {-1.0, 0.0, 3.0};
  for (std::size_t c = 0; c < 3; ++c) {
    EXPECT_NEAR(out.mean[c], beta[c], 1e-5) << "channel " << c;
    EXPECT_NEAR(out.variance[c], gamma[c] * gamma[c] * in.variance[c] / (in.variance[c] + kEpsilon),
                1e-4)
        << "channel " << c;
  }
}

TEST(BatchNormalization, UpdatesMovingStatisticsWithKerasFormulaAfterOneStep) {
  Session s({.name = "bn", .seed = 13});
  SessionScope use(s);
  const double momentum = 0.8;
  Layer bn = BatchNormalization({.momentum = momentum});
  prepare(bn.impl(), {3, 4}, 5);
  Parameter* moving_mean = find_parameter(bn.impl(), "moving_mean");
  Parameter* moving_variance = find_parameter(bn.impl(), "moving_variance");
  const std::vector<float> mean_before = {0.5f, -1.0f, 2.0f, 0.0f};
  const std::vector<float> variance_before = {1.0f, 3.0f, 0.25f, 2.0f};
  assign(moving_mean->value, mean_before);
  assign(moving_variance->value, variance_before);

  const Tensor x = channel_shifted_input({5, 3, 4});
  const Tensor y = zeros(x.shape());
  bn->forward(x, y, true);

  // Keras 3: moving = moving * momentum + batch * (1 - momentum), the batch variance biased.
  const ChannelStatistics batch = statistics_of(x);
  const auto mean_after = moving_mean->value.to_vector<float>();
  const auto variance_after = moving_variance->value.to_vector<float>();
  for (std::size_t c = 0; c < 4; ++c) {
    const double mean = mean_before[c] * momentum + batch.mean[c] * (1 - momentum);
    const double variance = variance_before[c] * momentum + batch.variance[c] * (1 - momentum);
    EXPECT_NEAR(mean_after[c], mean, 1e-5 * std::fabs(mean) + 1e-6) << "channel " << c;
    EXPECT_NEAR(variance_after[c], variance, 1e-5 * variance) << "channel " << c;
  }
}

TEST(BatchNormalization, UsesMovingStatisticsAtInferenceAndLeavesThemUnchanged) {
  Session s({.name = "bn", .seed = 14});
  SessionScope use(s);
  Layer bn = BatchNormalization();
  prepare(bn.impl(), {2}, 4);
  const std::vector<float> gamma = {1.5f, -2.0f}, beta = {0.25f, 1.0f};
  const std::vector<float> mean = {3.0f, -1.0f}, variance = {4.0f, 0.5f};
  assign(find_parameter(bn.impl(), "gamma")->value, gamma);
  assign(find_parameter(bn.impl(), "beta")->value, beta);
  assign(find_parameter(bn.impl(), "moving_mean")->value, mean);
  assign(find_parameter(bn.impl(), "moving_variance")->value, variance);

  const Tensor x = channel_shifted_input({4, 2});
  const Tensor y = zeros(x.shape());
  bn->forward(x, y, /*training=*/false);

  const auto xv = x.to_vector<float>(), yv = y.to_vector<float>();
  for (std::size_t i = 0; i < xv.size(); ++i) {
    const std::size_t c = i % 2;
    const double expected =
        gamma[c] * (xv[i] - mean[c]) / std::sqrt(variance[c] + kEpsilon) + beta[c];
    EXPECT_NEAR(yv[i], expected, 1e-5 * std::fabs(expected) + 1e-6) << "element " << i;
  }
  EXPECT_EQ(find_parameter(bn.impl(), "moving_mean")->value.to_vector<float>(), mean);
  EXPECT_EQ(find_parameter(bn.impl(), "moving_variance")->value.to_vector<float>(), variance);
}

TEST(BatchNormalization, AllocatesNothingPerStepAfterReserve) {
  Session s({.name = "bn", .seed = 15});
  SessionScope use(s);
  Layer bn = BatchNormalization();
  bn->build({4, 4, 8});
  bn->allocate_gradients();
  const Tensor x = random_normal({16, 4, 4, 8});
  const Tensor y = zeros(x.shape()), dy = random_normal(x.shape()), dx = zeros(x.shape());
  const std::size_t activations_before = s.memory_info().by_category[Category::activations];
  bn->reserve(16);
  const MemoryInfo reserved = s.memory_info();
  EXPECT_EQ(reserved.by_category[Category::activations] - activations_before,
            2 * 8 * sizeof(float));  // mean and 1/std per channel
  for (int step = 0; step < 3; ++step) {
    bn->forward(x, y, true);
    bn->backward(x, y, dy, &dx);
    bn->forward(x, y, false);
    bn->backward(x, y, dy, &dx);
  }
  EXPECT_EQ(s.memory_info().allocations, reserved.allocations);
  EXPECT_EQ(s.memory_info().current, reserved.current);
  bn->release_batch_buffers();
  EXPECT_EQ(s.memory_info().by_category[Category::activations], activations_before);
}

// ---- gradients ----------------------------------------------------------------------------

TEST(BatchNormalization, MatchesFiniteDifferencesOnTwoDimensionalInputWhileTraining) {
  Session s({.name = "bn"});
  SessionScope use(s);
  Layer bn = BatchNormalization();
  EXPECT_EQ(testing::check_gradients(bn.impl(), {6}, {.batch = 8}), "");
}

TEST(BatchNormalization, MatchesFiniteDifferencesOnFourDimensionalInputWhileTraining) {
  Session s({.name = "bn"});
  SessionScope use(s);
  Layer bn = BatchNormalization();
  EXPECT_EQ(testing::check_gradients(bn.impl(), {3, 3, 4}, {.batch = 2}), "");
}

// The CPU kernel cuts few channels into long rows of several samples (plus a partial last
// row) and many channels into blocks of 256: both layouts, with a partial part each.
TEST(BatchNormalization, MatchesFiniteDifferencesWithFewAndWithManyChannels) {
  Session s({.name = "bn"});
  SessionScope use(s);
  Layer few = BatchNormalization();
  EXPECT_EQ(testing::check_gradients(few.impl(), {3}, {.batch = 100}), "");
  Layer many = BatchNormalization();
  EXPECT_EQ(testing::check_gradients(many.impl(), {300}, {.batch = 4}), "");
}

TEST(BatchNormalization, MatchesFiniteDifferencesWithoutGammaOrBeta) {
  Session s({.name = "bn"});
  SessionScope use(s);
  Layer bn = BatchNormalization({.center = false, .scale = false});
  EXPECT_EQ(testing::check_gradients(bn.impl(), {2, 5}, {.batch = 4}), "");
}

TEST(BatchNormalization, BackpropagatesThroughItsAffineMapAfterAnInferenceForward) {
  Session s({.name = "bn"});
  SessionScope use(s);
  Layer bn = BatchNormalization();
  bn->build({2, 3});
  RandomGenerator rng(5);
  bn->initialize(rng);
  assign(find_parameter(bn.impl(), "gamma")->value, {1.5f, -0.5f, 2.0f});
  assign(find_parameter(bn.impl(), "moving_mean")->value, {0.5f, -0.25f, 1.0f});
  assign(find_parameter(bn.impl(), "moving_variance")->value, {2.0f, 0.5f, 1.5f});
  EXPECT_EQ(testing::check_gradients(bn.impl(), {2, 3}, {.batch = 3, .training = false}), "");

  // Directly: dx = gamma * dy / sqrt(moving_variance + epsilon).
  bn->reserve(3);
  const Tensor x = random_normal({3, 2, 3}), y = zeros({3, 2, 3});
  const Tensor dy = random_normal({3, 2, 3}), dx = zeros({3, 2, 3});
  bn->forward(x, y, false);
  bn->backward(x, y, dy, &dx);
  const float gamma[] = {1.5f, -0.5f, 2.0f}, variance[] = {2.0f, 0.5f, 1.5f};
  const auto g = dy.to_vector<float>(), d = dx.to_vector<float>();
  for (std::size_t i = 0; i < g.size(); ++i) {
    const double expected = gamma[i % 3] * g[i] / std::sqrt(variance[i % 3] + kEpsilon);
    EXPECT_NEAR(d[i], expected, 1e-5 * std::fabs(expected) + 1e-6) << "element " << i;
  }
}

// ---- known answers ------------------------------------------------------------------------

// tests/fixtures/make_batch_norm.py: torch.nn.functional.batch_norm(training=True, eps=1e-3)
// in float64 on NHWC data of shape (4, 3, 2, 5), gradients of L = sum(y * r) by autograd,
// moving statistics after one step by Keras 3's formula with momentum 0.9.
TEST(BatchNormalization, MatchesPyTorchOnATrainingStepAndKerasOnTheMovingStatistics) {
  Session s({.name = "bn"});
  SessionScope use(s);
  const std::string file = "batch_norm.safetensors";
  const Tensor x = testing::load_fixture(file, "x");
  Layer bn = BatchNormalization({.momentum = 0.9});
  bn->build({3, 2, 5});
  bn->allocate_gradients();
  bn->reserve(4);
  assign(find_parameter(bn.impl(), "gamma")->value,
         testing::load_fixture(file, "gamma").to_vector<float>());
  assign(find_parameter(bn.impl(), "beta")->value,
         testing::load_fixture(file, "beta").to_vector<float>());

  const Tensor y = zeros(x.shape()), dx = zeros(x.shape());
  bn->forward(x, y, true);
  const Tensor dy = testing::load_fixture(file, "r").clone();
  bn->backward(x, y, dy, &dx);

  // 1e-5 relative as asked, plus 1e-6 absolute for elements that come out near zero after a
  // cancellation (values here are O(1), so that is a few float32 ulps of the terms).
  auto expect_matches = [&](const Tensor& actual, const std::string& name) {
    EXPECT_EQ(testing::compare(actual, testing::load_fixture(file, name), 1e-5, 1e-6), "") << name;
  };
  expect_matches(y, "y");
  expect_matches(dx, "dx");
  expect_matches(find_parameter(bn.impl(), "gamma")->gradient, "dgamma");
  expect_matches(find_parameter(bn.impl(), "beta")->gradient, "dbeta");
  expect_matches(find_parameter(bn.impl(), "moving_mean")->value, "moving_mean");
  expect_matches(find_parameter(bn.impl(), "moving_variance")->value, "moving_variance");
}

// ---- in a model ---------------------------------------------------------------------------

TEST(BatchNormalization, TrainsInsideASequentialModelAndMovesItsStatistics) {
  Session s({.name = "bn", .seed = 16});
  SessionScope use(s);
  Layer bn = BatchNormalization({.momentum = 0.5});
  Sequential model({layers::Input({4}), layers::Dense(8), bn, layers::Dense(1)});
  model.compile(optimizers::SGD(0.05), "mse");
  const Tensor x = channel_shifted_input({64, 4});
  Tensor y = zeros({64, 1});
  const auto xv = x.to_vector<float>();
  for (std::int64_t i = 0; i < 64; ++i) y.data<float>()[i] = xv[i * 4] - 0.5f * xv[i * 4 + 3];

  const History h = model.fit(x, y, {.epochs = 5, .batch_size = 16, .verbose = 0});
  const auto& loss = h.history.at("loss");
  ASSERT_EQ(loss.size(), 5u);
  EXPECT_TRUE(std::isfinite(loss.back()));
  EXPECT_LT(loss.back(), loss.front());
  const auto moving_variance = find_parameter(bn.impl(), "moving_variance")->value;
  EXPECT_NE(moving_variance.to_vector<float>(), std::vector<float>(8, 1.0f));
  const Tensor p = model.predict(x);
  EXPECT_EQ(p.shape(), Shape({64, 1}));

  model.reset_weights();
  EXPECT_EQ(moving_variance.to_vector<float>(), std::vector<float>(8, 1.0f));
}

// ---- errors -------------------------------------------------------------------------------

std::string message_of_bad_options(const BatchNormalizationOptions& options) {
  try {
    BatchNormalization(options);
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "(no InvalidArgument)";
}

TEST(BatchNormalization, RejectsMomentumOutsideZeroToOne) {
  Session s({.name = "bn"});
  SessionScope use(s);
  for (double momentum : {-0.1, 1.0, 1.5, std::nan("")}) {
    const std::string message = message_of_bad_options({.momentum = momentum, .name = "bn1"});
    EXPECT_NE(message.find("BatchNormalization layer 'bn1' momentum"), std::string::npos)
        << message;
    EXPECT_NE(message.find("expected in [0, 1)"), std::string::npos) << message;
    EXPECT_NE(message.find("got "), std::string::npos) << message;
  }
  EXPECT_NE(message_of_bad_options({.momentum = 1.0}).find("got 1"), std::string::npos);
  EXPECT_NO_THROW(BatchNormalization({.momentum = 0.0}));
}

TEST(BatchNormalization, RejectsNonPositiveEpsilon) {
  Session s({.name = "bn"});
  SessionScope use(s);
  for (double epsilon : {0.0, -1e-3, std::nan(""), HUGE_VAL}) {
    const std::string message = message_of_bad_options({.epsilon = epsilon});
    EXPECT_NE(message.find("BatchNormalization epsilon: expected a finite value > 0, got "),
              std::string::npos)
        << message;
  }
  EXPECT_NE(message_of_bad_options({.epsilon = -0.5}).find("got -0.5"), std::string::npos);
  // A refused call takes no name from the session.
  EXPECT_EQ(BatchNormalization().name(), "batch_normalization");
}

TEST(BatchNormalization, RejectsInputsWithoutAPositiveLastAxis) {
  Session s({.name = "bn"});
  SessionScope use(s);
  for (const Shape& input : {Shape{}, Shape{3, 0}}) {
    Layer bn = BatchNormalization({.name = "norm"});
    try {
      bn->build(input);
      ADD_FAILURE() << "built for " << input.str();
    } catch (const InvalidArgument& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find("BatchNormalization layer 'norm'"), std::string::npos) << message;
      EXPECT_NE(message.find("expected at least one axis with a positive last extent"),
                std::string::npos)
          << message;
      EXPECT_NE(message.find("got " + input.str()), std::string::npos) << message;
    }
  }
}

}  // namespace
}  // namespace tabula
