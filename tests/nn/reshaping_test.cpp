// Input, Flatten and Reshape: layers that only reinterpret their input. The model runs them
// as views (their output shares the input's buffer and they compute nothing), so their
// gradients are checked through the model's own execution plan, with computing layers on
// both sides of the view.

#include "tabula/nn/layers/reshaping.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "nn/detail/execution_plan.hpp"
#include "support/expect_error.hpp"
#include "tabula/tabula.hpp"

namespace tabula {
namespace {

using testing::expect_contains;
using testing::thrown_message;
using testing::with_batch;

class ReshapingTest : public ::testing::Test {
 protected:
  Session session_{{.name = "reshaping", .seed = 5}};
  SessionScope use_{session_};
};

void copy_into(const Tensor& target, const Tensor& source) {
  ASSERT_EQ(target.numel(), source.numel());
  std::copy_n(source.data<float>(), source.numel(), target.data<float>());
}

// Finite differences of L = sum(out * r) over `layers` run by detail::ExecutionPlan (as fit
// runs them) against the weight gradients its backward pass leaves. Every weight of a layer
// below a view receives its gradient through that view, so a view that reorders elements
// differently forward and backward fails here. "" when all match.
std::string check_stack_gradients(const std::vector<Layer>& layers, const Shape& input,
                                  std::int64_t batch = 3) {
  Shape shape = input;
  for (const Layer& layer : layers) shape = layer->build(shape);
  RandomGenerator rng(7);
  for (const Layer& layer : layers) {
    layer->initialize(rng);
    layer->allocate_gradients();
  }
  detail::ExecutionPlan plan(layers, input, batch, true);
  const Tensor x = random_normal(with_batch(batch, input));
  const Tensor r = random_normal(with_batch(batch, shape));
  auto loss = [&] {
    copy_into(plan.input(batch), x);
    const Tensor out = plan.forward(batch, true);
    EXPECT_EQ(out.shape(), r.shape());
    double sum = 0;
    for (std::int64_t i = 0; i < out.numel(); ++i)
      sum += static_cast<double>(out.data<float>()[i]) * r.data<float>()[i];
    return sum;
  };
  loss();
  copy_into(plan.output_gradient(batch), r);
  plan.backward(batch);

  std::ostringstream failures;
  int checked = 0;
  constexpr float kEpsilon = 1e-2f;
  for (const Layer& layer : layers) {
    for (Parameter* p : layer->parameters()) {
      if (!p->trainable) continue;
      const Tensor analytic = p->gradient.clone();
      float* v = p->value.data<float>();
      for (std::int64_t i = 0; i < p->value.numel(); ++i, ++checked) {
        const float saved = v[i];
        v[i] = saved + kEpsilon;
        const double plus = loss();
        v[i] = saved - kEpsilon;
        const double minus = loss();
        v[i] = saved;
        const double numeric = (plus - minus) / (2.0 * kEpsilon);
        const double a = analytic.data<float>()[i];
        if (std::fabs(numeric - a) > 2e-3 + 2e-2 * std::max(std::fabs(numeric), std::fabs(a)))
          failures << layer.name() << "/" << p->name << "[" << i << "]: analytic " << a
                   << ", numeric " << numeric << "; ";
      }
    }
  }
  if (checked == 0) failures << "no weights were checked";
  return failures.str();
}

TEST_F(ReshapingTest, ReshapeInfersTheOneMissingExtent) {
  Layer a = layers::Reshape({-1, 2});
  EXPECT_EQ(a->build({3, 4}), Shape({6, 2}));
  Layer b = layers::Reshape({2, -1, 3});
  EXPECT_EQ(b->build({12}), Shape({2, 2, 3}));
  Layer c = layers::Reshape({4, 3});
  EXPECT_EQ(c->build({2, 6}), Shape({4, 3}));
  EXPECT_TRUE(c->is_view());
  EXPECT_EQ(c->type_name(), "Reshape");
  EXPECT_EQ(c->count_params(), 0);
}

TEST_F(ReshapingTest, ReshapeRejectsATargetThatDoesNotFitAndNamesIt) {
  Layer wrong_count = layers::Reshape({4, 2}, "to_grid");
  expect_contains(thrown_message<InvalidArgument>([&] { wrong_count->build({2, 3}); }),
                  {"'to_grid'", "(2, 3)", "(4, 2)", "6 elements", "8 elements"});
  Layer two_unknowns = layers::Reshape({-1, -1}, "two_unknowns");
  expect_contains(thrown_message<InvalidArgument>([&] { two_unknowns->build({4}); }),
                  {"'two_unknowns'", "at most one -1"});
  Layer not_divisible = layers::Reshape({-1, 4}, "not_divisible");
  expect_contains(thrown_message<InvalidArgument>([&] { not_divisible->build({6}); }),
                  {"'not_divisible'", "(6,)", "divisible by 4"});
  Layer zero = layers::Reshape({0, 3}, "zero_extent");
  expect_contains(thrown_message<InvalidArgument>([&] { zero->build({3}); }),
                  {"'zero_extent'", "positive extents or -1", "got 0"});
  EXPECT_FALSE(zero->built()) << "a failed build leaves the layer unbuilt";
}

TEST_F(ReshapingTest, ABadReshapeNamesItselfWhenAddedToAModel) {
  Sequential model({layers::Input({2, 3})});
  expect_contains(thrown_message<InvalidArgument>(
                      [&] { model.add(layers::Reshape({5}, "bad_reshape")); }),
                  {"'bad_reshape'", "6 elements", "5 elements"});
  EXPECT_EQ(model.layers().size(), 1u) << "the layer that did not fit was not added";
}

TEST_F(ReshapingTest, FlattenGivesOneAxisPerSample) {
  Layer flatten = layers::Flatten();
  EXPECT_EQ(flatten->build({2, 3, 4}), Shape({24}));
  EXPECT_TRUE(flatten->is_view());
  Layer flat_already = layers::Flatten();
  EXPECT_EQ(flat_already->build({5}), Shape({5}));
}

TEST_F(ReshapingTest, InputChecksTheShapeItDeclaresAndNamesIt) {
  Layer input = layers::Input({3, 2}, "pixels");
  expect_contains(thrown_message<InvalidArgument>([&] { input->build({2, 3}); }),
                  {"'pixels'", "per-sample shape (3, 2)", "got (2, 3)"});
  Layer ok = layers::Input({3, 2});
  EXPECT_EQ(ok->build({3, 2}), Shape({3, 2}));
  EXPECT_TRUE(ok->is_view());
}

TEST_F(ReshapingTest, ViewsRunInTheirInputsBufferAndKeepTheElementOrder) {
  const std::vector<Layer> stack = {layers::Input({2, 3}), layers::Reshape({3, -1}),
                                    layers::Flatten(), layers::Reshape({1, 6})};
  Shape shape{2, 3};
  for (const Layer& layer : stack) shape = layer->build(shape);
  EXPECT_EQ(shape, Shape({1, 6}));
  detail::ExecutionPlan plan(stack, {2, 3}, 4, true);
  const Tensor in = plan.input(4);
  for (std::int64_t i = 0; i < in.numel(); ++i) in.data<float>()[i] = static_cast<float>(i);
  const Tensor out = plan.forward(4, true);
  EXPECT_EQ(out.shape(), Shape({4, 1, 6}));
  EXPECT_EQ(out.raw_data(), in.raw_data()) << "a view computes nothing and copies nothing";
  EXPECT_EQ(out.to_vector<float>(), in.to_vector<float>());

  // As users see it: predict through views alone returns the input, reshaped.
  Sequential model({layers::Input({2, 3}), layers::Reshape({3, 2})});
  const Tensor x = random_normal({5, 2, 3});
  const Tensor y = model.predict(x);
  EXPECT_EQ(y.shape(), Shape({5, 3, 2}));
  EXPECT_EQ(y.to_vector<float>(), x.to_vector<float>());
}

TEST_F(ReshapingTest, GradientsFlowThroughAReshapeThatRegroupsElements) {
  // (2, 3) -> Dense -> (2, 4) -> Reshape -> (4, 2) -> Dense -> (4, 3): the reshape mixes rows
  // and columns, so the lower Dense's gradient is right only if backward undoes it exactly.
  EXPECT_EQ(check_stack_gradients({layers::Dense(4, "tanh"), layers::Reshape({4, -1}),
                                   layers::Dense(3, "tanh")},
                                  {2, 3}),
            "");
}

TEST_F(ReshapingTest, GradientsFlowThroughFlatten) {
  EXPECT_EQ(check_stack_gradients({layers::Dense(3, "tanh"), layers::Flatten(),
                                   layers::Dense(2, "sigmoid")},
                                  {4, 2}),
            "");
}

TEST_F(ReshapingTest, GradientsFlowThroughAnInputLayerAndStackedViews) {
  EXPECT_EQ(check_stack_gradients({layers::Input({6}), layers::Dense(4, "tanh"),
                                   layers::Reshape({2, 2}), layers::Flatten(),
                                   layers::Reshape({-1, 1}), layers::Dense(2)},
                                  {6}),
            "");
}

}  // namespace
}  // namespace tabula
