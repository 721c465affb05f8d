#include "tabula/nn/layers/pooling.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "support/expect_error.hpp"
#include "support/fixtures.hpp"
#include "support/gradient_check.hpp"
#include "tabula/tabula.hpp"

namespace tabula::layers {
namespace {

using testing::check_gradients;
using testing::compare;
using testing::GradientCheckOptions;
using testing::load_fixture;
using testing::thrown_message;
using testing::with_batch;

constexpr const char* kFixture = "conv_pool.safetensors";

/// TensorFlow's output size, written independently of the layer.
std::int64_t tf_output_size(std::int64_t in, std::int64_t k, std::int64_t s, bool same) {
  return same ? (in + s - 1) / s : (in - k) / s + 1;
}

/// The session's live object called `name`, if any (a copy: the list is a temporary).
std::optional<LiveObject> find_live(const Session& session, const std::string& name) {
  for (const auto& o : session.live_objects())
    if (o.name == name) return o;
  return std::nullopt;
}

/// Runs forward, then backward with `upstream`, on a layer built for x's per-sample shape.
std::pair<Tensor, Tensor> forward_backward(Layer& layer, const Tensor& x,
                                           const std::vector<float>& upstream) {
  const std::int64_t n = x.shape()[0];
  layer->build({x.shape()[1], x.shape()[2], x.shape()[3]});
  layer->reserve(n);
  Tensor y = zeros(with_batch(n, layer->output_shape()));
  layer->forward(x, y, true);
  Tensor dy = from_vector(upstream, y.shape());
  Tensor dx = full(x.shape(), 123.0);  // backward must overwrite, not accumulate
  layer->backward(x, y, dy, &dx);
  return {y, dx};
}

// ---- shapes -----------------------------------------------------------------------------------

TEST(MaxPooling2D, DefaultPoolHalvesEachSpatialSize) {
  Session s;
  SessionScope use(s);
  EXPECT_EQ(MaxPooling2D()->build({28, 28, 3}), Shape({14, 14, 3}));
  EXPECT_EQ(MaxPooling2D()->build({7, 7, 1}), Shape({3, 3, 1}));
  EXPECT_EQ(MaxPooling2D({2, 2}, {.padding = "same"})->build({7, 7, 1}), Shape({4, 4, 1}));
}

TEST(MaxPooling2D, StridesDefaultToThePoolSize) {
  Session s;
  SessionScope use(s);
  EXPECT_EQ(MaxPooling2D({3, 2})->build({9, 8, 2}), Shape({3, 4, 2}));
  EXPECT_EQ(MaxPooling2D({3, 3}, {.strides = std::pair<std::int64_t, std::int64_t>{1, 1}})
                ->build({9, 8, 2}),
            Shape({7, 6, 2}));
}

TEST(AveragePooling2D, OutputSizesFollowTensorFlowFormulaForAllStridesAndPaddings) {
  Session s;
  SessionScope use(s);
  for (bool same : {false, true})
    for (std::int64_t in : {4, 5, 6, 7, 9})
      for (std::int64_t k : {1, 2, 3})
        for (std::int64_t stride : {1, 2, 3}) {
          const Pool2DOptions options{.strides = std::pair<std::int64_t, std::int64_t>{1, stride},
                                      .padding = same ? "same" : "valid"};
          const Shape expected{3, tf_output_size(in, k, stride, same), 5};
          EXPECT_EQ(AveragePooling2D({1, k}, options)->build({3, in, 5}), expected)
              << "in " << in << " pool " << k << " stride " << stride << " same " << same;
          EXPECT_EQ(MaxPooling2D({1, k}, options)->build({3, in, 5}), expected)
              << "in " << in << " pool " << k << " stride " << stride << " same " << same;
        }
}

TEST(MaxPooling2D, NamesFollowKerasPrefixesAndTypeNames) {
  Session s;
  SessionScope use(s);
  Layer a = MaxPooling2D();
  Layer b = MaxPooling2D();
  Layer c = AveragePooling2D();
  Layer d = AveragePooling2D({2, 2}, {.name = "pool"});
  EXPECT_EQ(a.name(), "max_pooling2d");
  EXPECT_EQ(b.name(), "max_pooling2d_1");
  EXPECT_EQ(c.name(), "average_pooling2d");
  EXPECT_EQ(d.name(), "pool");
  EXPECT_EQ(a->type_name(), "MaxPooling2D");
  EXPECT_EQ(c->type_name(), "AveragePooling2D");
  a->build({4, 4, 2});
  EXPECT_EQ(a->count_params(), 0);
}

// ---- known answers by hand ------------------------------------------------------------------

TEST(MaxPooling2D, RoutesEachGradientToTheMaximumOfItsWindow) {
  Session s;
  SessionScope use(s);
  // Channel 0 holds v, channel 1 holds -v: the maxima of channel 1 are the minima of v.
  const std::vector<float> v{1, 5,    2, 0,     //
                             3, 4,    8, 7,     //
                             9, 1,    6, 6.5f,  //
                             2, 0.5f, 3, 1};
  std::vector<float> xs;
  for (float e : v) {
    xs.push_back(e);
    xs.push_back(-e);
  }
  Layer pool = MaxPooling2D();
  const auto [y, dx] =
      forward_backward(pool, from_vector(xs, {1, 4, 4, 2}), {10, 1, 20, 2, 30, 3, 40, 4});
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{5, -1, 8, 0, 9, -0.5f, 6.5f, -1}));
  std::vector<float> expected(32, 0.0f);
  expected[2 * 1] = 10;      // 5 at (0, 1)
  expected[2 * 6] = 20;      // 8 at (1, 2)
  expected[2 * 8] = 30;      // 9 at (2, 0)
  expected[2 * 11] = 40;     // 6.5 at (2, 3)
  expected[2 * 0 + 1] = 1;   // 1 at (0, 0)
  expected[2 * 3 + 1] = 2;   // 0 at (0, 3)
  expected[2 * 13 + 1] = 3;  // 0.5 at (3, 1)
  expected[2 * 15 + 1] = 4;  // 1 at (3, 3)
  EXPECT_EQ(dx.to_vector<float>(), expected);
}

TEST(AveragePooling2D, SamePaddingAveragesOnlyElementsInsideTheInput) {
  Session s;
  SessionScope use(s);
  // 3x3 with a 2x2 pool, stride 2, "same": one padding row/column after the input.
  Layer pool = AveragePooling2D({2, 2}, {.padding = "same"});
  const auto [y, dx] = forward_backward(
      pool, from_vector<float>({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 3, 3, 1}), {1, 1, 1, 1});
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{3, 4.5f, 7.5f, 9}));
  EXPECT_EQ(dx.to_vector<float>(),
            (std::vector<float>{0.25f, 0.25f, 0.5f, 0.25f, 0.25f, 0.5f, 0.5f, 0.5f, 1}));
}

// ---- errors ---------------------------------------------------------------------------------

TEST(MaxPooling2D, RejectsInputsThatAreNotHeightWidthChannels) {
  Session s;
  SessionScope use(s);
  Layer pool = MaxPooling2D({2, 2}, {.name = "pool"});
  const std::string m = thrown_message<InvalidArgument>([&] { pool->build({28, 28}); });
  EXPECT_NE(m.find("MaxPooling2D layer 'pool'"), std::string::npos) << m;
  EXPECT_NE(m.find("rank 3 (height, width, channels)"), std::string::npos) << m;
  EXPECT_NE(m.find("got (28, 28)"), std::string::npos) << m;
  const std::string a = thrown_message<InvalidArgument>([&] { AveragePooling2D()->build({784}); });
  EXPECT_NE(a.find("AveragePooling2D layer 'average_pooling2d'"), std::string::npos) << a;
  EXPECT_NE(a.find("got (784,)"), std::string::npos) << a;
}

TEST(AveragePooling2D, RejectsPoolLargerThanInputWithValidPadding) {
  Session s;
  SessionScope use(s);
  Layer pool = AveragePooling2D({3, 3}, {.name = "pool"});
  const std::string m = thrown_message<InvalidArgument>([&] { pool->build({2, 5, 1}); });
  EXPECT_NE(m.find("'pool' for input (2, 5, 1), pool_size (3, 3), strides (3, 3), padding "
                   "'valid': expected positive (height, width), got (0, 1)"),
            std::string::npos)
      << m;
}

TEST(MaxPooling2D, RejectsNonPositiveSizesStridesAndUnknownPadding) {
  Session s;
  SessionScope use(s);
  std::string m = thrown_message<InvalidArgument>([] { MaxPooling2D({0, 2}); });
  EXPECT_NE(m.find("MaxPooling2D pool_size: expected two positive sizes, got (0, 2)"),
            std::string::npos)
      << m;
  m = thrown_message<InvalidArgument>([] {
    AveragePooling2D({2, 2}, {.strides = std::pair<std::int64_t, std::int64_t>{2, 0}});
  });
  EXPECT_NE(m.find("AveragePooling2D strides: expected two positive steps, got (2, 0)"),
            std::string::npos)
      << m;
  m = thrown_message<InvalidArgument>([] { MaxPooling2D({2, 2}, {.padding = "causal"}); });
  EXPECT_NE(m.find("MaxPooling2D padding: expected 'valid' or 'same', got 'causal'"),
            std::string::npos)
      << m;
}

TEST(MaxPooling2D, RejectsBatchesWhosePositionsOverflowInt32) {
  Session s;
  SessionScope use(s);
  Layer pool = MaxPooling2D({2, 2}, {.name = "big"});
  pool->build({1024, 1024, 64});  // 2^26 elements a sample: 32 samples reach 2^31
  pool->reserve(31);
  pool->release_batch_buffers();
  const std::string m = thrown_message<InvalidArgument>([&] { pool->reserve(32); });
  EXPECT_NE(m.find("batch of 32 for MaxPooling2D layer 'big'"), std::string::npos) << m;
  EXPECT_NE(m.find("at most 2147483647 input elements per batch"), std::string::npos) << m;
  EXPECT_NE(m.find("got 2147483648"), std::string::npos) << m;
}

TEST(MaxPooling2D, RejectsReserveBeforeBuild) {
  Session s;
  SessionScope use(s);
  Layer pool = MaxPooling2D({2, 2}, {.name = "early"});
  const std::string m = thrown_message<InvalidArgument>([&] { pool->reserve(8); });
  EXPECT_NE(m.find("reserve of MaxPooling2D layer 'early': expected a built layer"),
            std::string::npos)
      << m;
}

// ---- buffers --------------------------------------------------------------------------------

TEST(MaxPooling2D, KeepsItsArgmaxAsActivationsUntilReleased) {
  Session s;
  SessionScope use(s);
  Layer pool = MaxPooling2D();
  pool->build({8, 6, 3});
  pool->reserve(10);
  const std::optional<LiveObject> argmax = find_live(s, pool.name() + "/argmax");
  ASSERT_TRUE(argmax.has_value());
  EXPECT_EQ(argmax->category, Category::activations);
  EXPECT_GE(argmax->bytes, std::size_t{10} * 4 * 3 * 3 * sizeof(std::int32_t));
  pool->release_batch_buffers();
  EXPECT_FALSE(find_live(s, pool.name() + "/argmax").has_value());
}

TEST(MaxPooling2D, ReservedForInferenceKeepsNoPositionsAndRefusesABackwardPass) {
  Session s;
  SessionScope use(s);
  Layer pool = MaxPooling2D({2, 2}, {.name = "served"});
  pool->build({4, 4, 2});
  pool->reserve(3, /*training=*/false);
  EXPECT_FALSE(find_live(s, "served/argmax").has_value());
  EXPECT_EQ(s.memory_info().by_category[Category::activations], 0u);
  std::vector<float> values(3 * 4 * 4 * 2);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>((i * 7) % 11);
  const Tensor x = from_vector(values, {3, 4, 4, 2});
  const Tensor y = zeros({3, 2, 2, 2});
  pool->forward(x, y, false);
  const Tensor reference = zeros({3, 2, 2, 2});
  Layer trained = MaxPooling2D();
  trained->build({4, 4, 2});
  trained->reserve(3);
  trained->forward(x, reference, false);
  EXPECT_EQ(y.to_vector<float>(), reference.to_vector<float>());

  const Tensor dy = ones({3, 2, 2, 2});
  const Tensor dx = zeros({3, 4, 4, 2});
  const std::string m = thrown_message<InvalidArgument>([&] { pool->backward(x, y, dy, &dx); });
  EXPECT_NE(m.find("backward of MaxPooling2D layer 'served'"), std::string::npos) << m;
  EXPECT_NE(m.find("reserved for inference"), std::string::npos) << m;
}

TEST(MaxPooling2D, ATrainingPassReservesThePositionsAnInferenceReserveLeftOut) {
  Session s;
  SessionScope use(s);
  Layer pool = MaxPooling2D({2, 2}, {.name = "grown"});
  pool->build({4, 4, 1});
  pool->reserve(2, /*training=*/false);
  const Tensor x = from_vector(std::vector<float>(32, 1.0f), {2, 4, 4, 1});
  const Tensor y = zeros({2, 2, 2, 1});
  pool->forward(x, y, true);
  EXPECT_TRUE(find_live(s, "grown/argmax").has_value());
  EXPECT_TRUE(pool->reserved_for_training());
  const Tensor dx = zeros({2, 4, 4, 1});
  pool->backward(x, y, ones({2, 2, 2, 1}), &dx);
  const std::vector<float> g = dx.to_vector<float>();
  EXPECT_EQ(std::count(g.begin(), g.end(), 1.0f), 8) << "one winner per window";
}

TEST(MaxPooling2D, UsedOnItsOwnWithoutReserveItKeepsPositionsForABackwardPass) {
  Session s;
  SessionScope use(s);
  Layer pool = MaxPooling2D();
  pool->build({2, 2, 1});
  const Tensor x = from_vector(std::vector<float>{1, 4, 2, 3}, {1, 2, 2, 1});
  const Tensor y = zeros({1, 1, 1, 1});
  pool->forward(x, y, false);
  const Tensor dx = zeros({1, 2, 2, 1});
  pool->backward(x, y, ones({1, 1, 1, 1}), &dx);
  EXPECT_EQ(dx.to_vector<float>(), (std::vector<float>{0, 1, 0, 0}));
}

// ---- finite-difference gradients ------------------------------------------------------------

// Max pooling is piecewise linear with a kink wherever two elements of a window swap places:
// the step must stay below the gap between a window's two largest values. Its outputs are
// copies of inputs, so a step of 1e-5 still resolves the difference quotient; with it about
// 0.1% of seeds hit a near-tie (1e-2: 60%, 1e-3: 11%; measured over seeds 1-300).
GradientCheckOptions max_pool_check() { return {.epsilon = 1e-5f}; }

TEST(MaxPooling2D, ValidGradientsMatchFiniteDifferences) {
  Session s;
  SessionScope use(s);
  Layer pool = MaxPooling2D();
  EXPECT_EQ(check_gradients(pool.impl(), {6, 7, 3}, max_pool_check()), "");
}

TEST(MaxPooling2D, SameOverlappingWindowsGradientsMatchFiniteDifferences) {
  Session s;
  SessionScope use(s);
  Layer pool = MaxPooling2D(
      {3, 3}, {.strides = std::pair<std::int64_t, std::int64_t>{2, 2}, .padding = "same"});
  EXPECT_EQ(check_gradients(pool.impl(), {7, 8, 2}, max_pool_check()), "");
}

TEST(MaxPooling2D, SameStrideOneGradientsMatchFiniteDifferences) {
  Session s;
  SessionScope use(s);
  Layer pool = MaxPooling2D(
      {2, 3}, {.strides = std::pair<std::int64_t, std::int64_t>{1, 1}, .padding = "same"});
  EXPECT_EQ(check_gradients(pool.impl(), {5, 5, 2}, max_pool_check()), "");
}

TEST(AveragePooling2D, ValidGradientsMatchFiniteDifferences) {
  Session s;
  SessionScope use(s);
  Layer pool = AveragePooling2D({3, 2}, {.strides = std::pair<std::int64_t, std::int64_t>{2, 1}});
  EXPECT_EQ(check_gradients(pool.impl(), {6, 7, 3}), "");
}

TEST(AveragePooling2D, SameStrideTwoGradientsMatchFiniteDifferences) {
  Session s;
  SessionScope use(s);
  Layer pool = AveragePooling2D(
      {3, 3}, {.strides = std::pair<std::int64_t, std::int64_t>{2, 2}, .padding = "same"});
  EXPECT_EQ(check_gradients(pool.impl(), {7, 8, 2}), "");
}

TEST(AveragePooling2D, SameStrideOneGradientsMatchFiniteDifferences) {
  Session s;
  SessionScope use(s);
  Layer pool = AveragePooling2D(
      {2, 2}, {.strides = std::pair<std::int64_t, std::int64_t>{1, 1}, .padding = "same"});
  EXPECT_EQ(check_gradients(pool.impl(), {4, 5, 3}), "");
}

// ---- known answers from PyTorch -------------------------------------------------------------

void expect_matches_pytorch(Layer pool, const std::string& name) {
  auto fixture = [&](const std::string& what) { return load_fixture(kFixture, name + "/" + what); };
  const Tensor x = fixture("x");
  const auto [y, dx] = forward_backward(pool, x, fixture("r").to_vector<float>());
  // Max pooling copies values; average pooling sums at most 9 of them: float32 rounding only.
  EXPECT_EQ(compare(y, fixture("y"), 1e-5, 1e-6), "") << name << " y";
  EXPECT_EQ(compare(dx, fixture("dx"), 1e-5, 1e-6), "") << name << " dx";
}

using Pair = std::pair<std::int64_t, std::int64_t>;

TEST(MaxPooling2D, ValidMatchesPyTorch) {
  Session s;
  SessionScope use(s);
  expect_matches_pytorch(MaxPooling2D({2, 2}), "max_valid");
}

TEST(MaxPooling2D, SameStrideTwoMatchesPyTorchWithTensorFlowPadding) {
  Session s;
  SessionScope use(s);
  expect_matches_pytorch(MaxPooling2D({3, 3}, {.strides = Pair{2, 2}, .padding = "same"}),
                         "max_same_s2");
}

TEST(MaxPooling2D, SameWithEvenPoolPadsAfterLikeTensorFlow) {
  Session s;
  SessionScope use(s);
  expect_matches_pytorch(MaxPooling2D({2, 2}, {.padding = "same"}), "max_same_even");
}

TEST(AveragePooling2D, ValidMatchesPyTorch) {
  Session s;
  SessionScope use(s);
  expect_matches_pytorch(AveragePooling2D({3, 2}, {.strides = Pair{2, 1}}), "avg_valid");
}

TEST(AveragePooling2D, SameStrideTwoMatchesPyTorchCountingOnlyInputElements) {
  Session s;
  SessionScope use(s);
  expect_matches_pytorch(AveragePooling2D({3, 3}, {.strides = Pair{2, 2}, .padding = "same"}),
                         "avg_same_s2");
}

TEST(AveragePooling2D, SameWithEvenPoolPadsAfterLikeTensorFlow) {
  Session s;
  SessionScope use(s);
  expect_matches_pytorch(AveragePooling2D({2, 2}, {.padding = "same"}), "avg_same_even");
}

}  // namespace
}  // namespace tabula::layers
