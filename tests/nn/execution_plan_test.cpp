// The batch buffers of a model's passes: what a training plan and an inference plan reserve,
// in the model's layers and for themselves, and how a plan inside another leaves it be.

#include "nn/detail/execution_plan.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "backend/detail/device_copy.hpp"
#include "tabula/memory/pool_resource.hpp"
#include "tabula/tabula.hpp"

namespace tabula::detail {
namespace {

class ExecutionPlanTest : public ::testing::Test {
 protected:
  Session session_{{.name = "plans", .seed = 5}};
  SessionScope use_{session_};

  std::vector<std::string> live_names() const {
    std::vector<std::string> names;
    for (const LiveObject& o : session_.live_objects()) names.push_back(o.name);
    return names;
  }
  bool live(const std::string& name) const {
    const std::vector<std::string> names = live_names();
    return std::find(names.begin(), names.end(), name) != names.end();
  }
  std::size_t activations() const {
    return session_.memory_info().by_category[Category::activations];
  }
};

std::size_t rounded(std::size_t bytes) { return PoolResource::block_size(bytes); }

// Widths 256, 256, 256, 256, 10: the outputs alternate between two buffers, each as wide as
// the widest output written into it.
TEST_F(ExecutionPlanTest, AnInferencePlanKeepsTwoLayerOutputsAtATimeNotOneForEveryLayer) {
  Sequential model({layers::Input({100}), layers::Dense(256, "relu"), layers::Dense(256, "relu"),
                    layers::Dense(256, "relu"), layers::Dense(256, "relu"), layers::Dense(10)});
  const std::size_t before = activations();
  {
    ExecutionPlan inference(model.layers(), {100}, 64, false);
    EXPECT_EQ(activations() - before, 2 * rounded(64 * 256 * sizeof(float)));
    EXPECT_TRUE(live("batch/outputs_a"));
    EXPECT_TRUE(live("batch/outputs_b"));
  }
  EXPECT_EQ(activations(), before);
  {
    ExecutionPlan training(model.layers(), {100}, 64, true);
    const std::size_t outputs =
        4 * rounded(64 * 256 * sizeof(float)) + rounded(64 * 10 * sizeof(float));
    const std::size_t deltas = 2 * rounded(64 * 256 * sizeof(float));
    EXPECT_EQ(activations() - before, outputs + deltas);
  }
}

// A model with every kind of training-only buffer: dropout's mask, pooling's positions, batch
// normalisation's statistics, the LSTM's gradients through its recurrence and its workspace.
Sequential model_with_every_training_buffer() {
  return Sequential({layers::Input({6, 6, 2}), layers::Conv2D(4, {3, 3}, "relu"),
                     layers::BatchNormalization(), layers::MaxPooling2D(), layers::Dropout(0.5),
                     layers::Reshape({4, 4}), layers::LSTM(5), layers::Dense(3)});
}

TEST_F(ExecutionPlanTest, AnInferencePlanReservesNoLayerBufferThatOnlyTrainingNeeds) {
  Sequential model = model_with_every_training_buffer();
  const auto training_only = [&] {
    std::vector<std::string> found;
    for (const std::string& name : live_names())
      for (const char* suffix : {"/mask", "/argmax", "/batch_statistics", "/dh", "/dc"})
        if (name.ends_with(suffix)) found.push_back(name);
    return found;
  };
  {
    ExecutionPlan inference(model.layers(), {6, 6, 2}, 8, false);
    EXPECT_EQ(training_only(), std::vector<std::string>{});
    for (const Layer& layer : model.layers()) {
      if (layer->is_view()) continue;
      EXPECT_EQ(layer->reserved_batch(), 8) << layer.name();
      EXPECT_FALSE(layer->reserved_for_training()) << layer.name();
    }
  }
  {
    ExecutionPlan training(model.layers(), {6, 6, 2}, 8, true);
    EXPECT_EQ(training_only().size(), 3u)
        << "mask, argmax and batch_statistics (the LSTM's dh and dc are in the shared workspace)";
  }
  EXPECT_EQ(training_only(), std::vector<std::string>{}) << "released with the plan";
}

TEST_F(ExecutionPlanTest, AnInferencePlanComputesWhatATrainingPlanComputesAtInference) {
  Sequential model = model_with_every_training_buffer();
  const Tensor x = random_uniform({8, 6, 6, 2}, -1.0f, 1.0f);
  const auto output = [&](bool training_plan) {
    ExecutionPlan plan(model.layers(), {6, 6, 2}, 8, training_plan);
    copy_bytes(plan.input(8).raw_data(), plan.input(8).device(), x.raw_data(), x.device(),
               x.nbytes());
    return plan.forward(8, false).to_vector<float>();
  };
  EXPECT_EQ(output(false), output(true));
}

TEST_F(ExecutionPlanTest, APlanInsideAnotherLeavesTheLayerBuffersOfTheOuterOneInPlace) {
  Sequential model = model_with_every_training_buffer();
  ExecutionPlan fit(model.layers(), {6, 6, 2}, 16, true);
  const std::vector<std::string> outer = live_names();
  {
    ExecutionPlan evaluate(model.layers(), {6, 6, 2}, 8, false);  // fewer samples: served
    for (const std::string& name : outer) EXPECT_TRUE(live(name)) << name;
    for (const Layer& layer : model.layers()) {
      if (layer->is_view()) continue;
      EXPECT_TRUE(layer->reserved_for_training()) << layer.name();
    }
  }
  for (const std::string& name : outer) EXPECT_TRUE(live(name)) << name << " after the inner plan";
}

TEST_F(ExecutionPlanTest, APlanForMoreSamplesGivesTheOuterOneItsLayerBuffersBackWhenItEnds) {
  Sequential model = model_with_every_training_buffer();
  ExecutionPlan fit(model.layers(), {6, 6, 2}, 16, true);
  const MemoryInfo outer = session_.memory_info();
  {
    ExecutionPlan evaluate(model.layers(), {6, 6, 2}, 64, false);  // more samples: reserved
    for (const Layer& layer : model.layers()) {
      if (layer->is_view()) continue;
      EXPECT_EQ(layer->reserved_batch(), 64) << layer.name();
      EXPECT_FALSE(layer->reserved_for_training()) << layer.name();
    }
  }
  for (const Layer& layer : model.layers()) {
    if (layer->is_view()) continue;
    EXPECT_EQ(layer->reserved_batch(), 16) << layer.name();
    EXPECT_TRUE(layer->reserved_for_training()) << layer.name();
  }
  const MemoryInfo after = session_.memory_info();
  EXPECT_EQ(after.live_objects, outer.live_objects) << "the same buffers, remade";
  for (const Category c : {Category::activations, Category::workspace})
    EXPECT_EQ(after.by_category[c], outer.by_category[c]) << name_of(c);
}

// Layers run one at a time: the plan's convolutions unfold into one workspace, as large as the
// largest one's, not into one each.
TEST_F(ExecutionPlanTest, TheLayersOfAPlanShareOneWorkspaceAsLargeAsTheLargestNeeds) {
  Sequential model({layers::Input({16, 16, 3}), layers::Conv2D(8, {3, 3}, "relu"),
                    layers::Conv2D(16, {3, 3}, "relu"), layers::Flatten(), layers::Dense(2)});
  const auto bytes_of = [&](const std::string& name) {
    for (const LiveObject& o : session_.live_objects())
      if (o.name == name) return o.bytes;
    return std::size_t{0};
  };
  // Names stay unique until a clear: the second plan's is "batch/workspace_1".
  const auto shared_bytes = [&] {
    std::size_t bytes = 0;
    for (const LiveObject& o : session_.live_objects())
      if (o.name.starts_with("batch/workspace")) bytes += o.bytes;
    return bytes;
  };
  std::size_t largest = 0;
  for (const Layer& layer : model.layers()) {
    if (layer->type_name() != "Conv2D") continue;
    layer->reserve(32);  // on its own: a workspace of its own
    const std::size_t own = bytes_of(layer.name() + "/columns");
    EXPECT_GT(own, 0u) << layer.name();
    largest = std::max(largest, own);
    layer->release_batch_buffers();
  }
  for (const bool training : {true, false}) {
    ExecutionPlan plan(model.layers(), {16, 16, 3}, 32, training);
    EXPECT_EQ(shared_bytes(), largest) << "training " << training;
    for (const std::string& name : live_names())
      EXPECT_FALSE(name.ends_with("/columns")) << name << ", training " << training;
  }
  EXPECT_EQ(shared_bytes(), 0u) << "released with the plan";
}

// The LSTM's backward workspace (dh, dc, the recurrence's) carved from the plan's shared one
// computes what its own buffers compute, for each of two stacked layers.
TEST_F(ExecutionPlanTest, LayersComputeTheSameGradientsInTheSharedWorkspaceAsInTheirOwn) {
  Sequential model(
      {layers::Input({5, 3}), layers::LSTM(6, {.return_sequences = true}), layers::LSTM(4)});
  model.compile(optimizers::SGD(0.1), "mse");  // gradients
  const Tensor x = random_uniform({7, 5, 3}, -1.0f, 1.0f);
  const Tensor dy = random_uniform({7, 4}, -1.0f, 1.0f);
  const auto gradients = [&] {
    std::vector<std::vector<float>> out;
    for (const Layer& layer : model.layers())
      for (Parameter* p : layer->parameters())
        if (p->gradient.defined()) out.push_back(p->gradient.to_vector<float>());
    return out;
  };
  std::vector<std::vector<float>> in_plan;
  {
    ExecutionPlan plan(model.layers(), {5, 3}, 7, true);
    copy_bytes(plan.input(7).raw_data(), plan.input(7).device(), x.raw_data(), x.device(),
               x.nbytes());
    plan.forward(7, true);
    const Tensor g = plan.output_gradient(7);
    copy_bytes(g.raw_data(), g.device(), dy.raw_data(), dy.device(), dy.nbytes());
    plan.backward(7);
    in_plan = gradients();
  }
  std::vector<Layer> computing;
  for (const Layer& layer : model.layers())
    if (!layer->is_view()) computing.push_back(layer);
  ASSERT_EQ(computing.size(), 2u);
  for (const Layer& layer : computing) layer->reserve(7);  // workspaces of their own
  const Tensor h = zeros({7, 5, 6}), y = zeros({7, 4}), dh = zeros({7, 5, 6});
  computing[0]->forward(x, h, true);
  computing[1]->forward(h, y, true);
  computing[1]->backward(h, y, dy.clone(), &dh);
  computing[0]->backward(x, h, dh, nullptr);
  EXPECT_EQ(gradients(), in_plan);
  for (const Layer& layer : computing) layer->release_batch_buffers();
}

}  // namespace
}  // namespace tabula::detail
