// Every layer on a CUDA device computes what it computes on the CPU, forward and backward, in
// the style of ggml's test-backend-ops: each case builds one layer in a CPU session and the same
// layer in a GPU session with the same weights, runs one forward pass (training or inference)
// and one backward pass on the same x and dL/dy, and compares y, dL/dx, every parameter's
// gradient and every parameter after the pass (BatchNormalization's moving statistics). The
// cases reach each path a device may take: cuDNN's convolutions and unfolded ones (asymmetric
// "same" padding), pooling windows that overhang, LSTMs in one launch and step by step, fused
// and plain activations. Skipped, with the reason, where no CUDA device is present.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "backend/random_floats.hpp"
#include "nn/detail/tensor_views.hpp"
#include "support/cuda_device.hpp"
#include "tabula/tabula.hpp"

namespace tabula {
namespace {

struct LayerCase {
  std::string name;  // what the case covers, as the test's name
  std::function<Layer()> make;
  Shape input;  // per sample
  bool training = true;
  std::int64_t batch = 5;
};

std::ostream& operator<<(std::ostream& out, const LayerCase& c) { return out << c.name; }

std::vector<LayerCase> layer_cases() {
  using layers::Conv2DOptions;
  using layers::LSTMOptions;
  using layers::Pool2DOptions;
  return {
      {"DenseRelu", [] { return layers::Dense(7, "relu"); }, Shape{5}},
      {"DenseSoftmaxNotFusedWithALoss", [] { return layers::Dense(4, "softmax"); }, Shape{6}},
      {"DenseSigmoidWithoutBias", [] { return layers::Dense(3, "sigmoid", {.use_bias = false}); },
       Shape{4}},
      {"Conv2DValidRelu",
       [] {
         return layers::Conv2D(4, {3, 3}, "relu");
       },
       Shape{9, 9, 3}},
      {"Conv2DSameSymmetricTanh",
       [] {
         return layers::Conv2D(3, {3, 3}, "tanh", Conv2DOptions{.padding = "same"});
       },
       Shape{7, 7, 4}},
      {"Conv2DSameStride2AsymmetricPadding",
       [] {
         return layers::Conv2D(5, {3, 3}, "linear",
                               Conv2DOptions{.strides = {2, 2}, .padding = "same"});
       },
       Shape{10, 9, 2}},
      {"Conv2DOneByOneWithoutBias",
       [] {
         return layers::Conv2D(6, {1, 1}, "linear", Conv2DOptions{.use_bias = false});
       },
       Shape{5, 5, 8}},
      {"Conv2DRectangularKernelStrides2By1",
       [] {
         return layers::Conv2D(2, {5, 3}, "sigmoid", Conv2DOptions{.strides = {2, 1}});
       },
       Shape{11, 8, 3}},
      {"MaxPooling2x2",
       [] {
         return layers::MaxPooling2D({2, 2});
       },
       Shape{8, 8, 3}},
      {"MaxPooling3x3Stride2Same",
       [] {
         return layers::MaxPooling2D(
             {3, 3}, Pool2DOptions{.strides = std::pair<std::int64_t, std::int64_t>{2, 2},
                                   .padding = "same"});
       },
       Shape{9, 9, 2}},
      {"AveragePooling2x2SameOverhanging",
       [] {
         return layers::AveragePooling2D({2, 2}, Pool2DOptions{.padding = "same"});
       },
       Shape{7, 7, 3}},
      {"AveragePooling3x3Stride1",
       [] {
         return layers::AveragePooling2D(
             {3, 3}, Pool2DOptions{.strides = std::pair<std::int64_t, std::int64_t>{1, 1}});
       },
       Shape{6, 6, 2}},
      {"BatchNormalizationTrainingOverPixels", [] { return layers::BatchNormalization(); },
       Shape{6, 6, 4}},
      {"BatchNormalizationInferenceOverPixels", [] { return layers::BatchNormalization(); },
       Shape{6, 6, 4}, false},
      {"BatchNormalizationTrainingWithoutOffset",
       [] { return layers::BatchNormalization({.center = false}); }, Shape{12}},
      {"BatchNormalizationInferenceWithoutFactor",
       [] { return layers::BatchNormalization({.scale = false}); }, Shape{12}, false},
      {"BatchNormalizationOfOneSample", [] { return layers::BatchNormalization(); }, Shape{3}, true,
       1},
      {"LstmLastStateInOneLaunch", [] { return layers::LSTM(6); }, Shape{5, 3}},
      {"LstmSequencesSigmoidCandidate",
       [] {
         return layers::LSTM(5, LSTMOptions{.return_sequences = true, .activation = "sigmoid"});
       },
       Shape{4, 2}},
      {"LstmTanhGatesWithoutBias",
       [] {
         return layers::LSTM(4, LSTMOptions{.recurrent_activation = "tanh", .use_bias = false});
       },
       Shape{3, 3}},
      {"LstmWiderThanOneLaunchStepByStep", [] { return layers::LSTM(130); }, Shape{3, 4}, true, 3},
      // 1057 samples: 8 a block (the most), a short last block, more blocks than an H200 has
      // multiprocessors.
      {"LstmBatchOverManyBlocks", [] { return layers::LSTM(8); }, Shape{3, 2}, true, 1057},
      {"ActivationSigmoid", [] { return layers::Activation("sigmoid"); }, Shape{10}},
      {"ActivationSoftmax", [] { return layers::Activation("softmax"); }, Shape{6}},
      {"DropoutAtInference", [] { return layers::Dropout(0.3); }, Shape{20}, false},
  };
}

// `n` floats uniform in [-1, 1) from `seed`.
std::vector<float> uniform(std::int64_t n, unsigned seed) {
  return detail::testing::random_floats(static_cast<std::size_t>(n), seed);
}

// What one forward and one backward pass of a layer gave, on the host.
struct LayerPass {
  std::vector<float> y, dx;
  std::vector<std::string> names;                // every parameter's
  std::vector<std::vector<float>> gradients;     // ... gradient (empty: none)
  std::vector<std::vector<float>> values_after;  // ... value after the pass
};

// The case's layer built in a session on `device`, its parameters set to `weights` (one vector
// per parameter, in parameters() order), one pass run on x and dy drawn from fixed seeds.
LayerPass run_layer(Device device, const LayerCase& c,
                    const std::vector<std::vector<float>>& weights) {
  Session session({.device = device, .name = "layer-" + device.str()});
  SessionScope scope(session);
  Layer layer = c.make();
  layer->build(c.input);
  const std::vector<Parameter*> parameters = layer->parameters();
  for (std::size_t i = 0; i < parameters.size(); ++i)
    detail::copy_from_host(parameters[i]->value, weights.at(i));
  layer->allocate_gradients();
  // Every output starts as NaN, so that one a device leaves unwritten (or adds to) shows.
  const auto nans = [](std::int64_t n) {
    return std::vector<float>(static_cast<std::size_t>(n), std::numeric_limits<float>::quiet_NaN());
  };
  for (const Parameter* p : parameters)
    if (p->gradient.defined()) detail::copy_from_host(p->gradient, nans(p->gradient.numel()));
  layer->reserve(c.batch);
  const Shape x_shape = detail::batched(c.batch, c.input);
  const Shape y_shape = detail::batched(c.batch, layer->output_shape());
  const Tensor x = from_vector(uniform(x_shape.numel(), 11), x_shape);
  const Tensor dy = from_vector(uniform(y_shape.numel(), 12), y_shape);
  const Tensor y = from_vector(nans(y_shape.numel()), y_shape);
  const Tensor dx = from_vector(nans(x_shape.numel()), x_shape);
  EXPECT_EQ(x.device(), device) << c.name << ": the data is not where the session is";
  for (const Parameter* p : parameters)
    EXPECT_EQ(p->value.device(), device)
        << c.name << ": " << p->name << " is not on " << device.str();
  layer->forward(x, y, c.training);
  layer->backward(x, y, dy, &dx);
  LayerPass pass{y.to_vector<float>(), dx.to_vector<float>(), {}, {}, {}};
  for (const Parameter* p : parameters) {
    pass.names.push_back(p->name);
    pass.gradients.push_back(p->gradient.defined() ? p->gradient.to_vector<float>()
                                                   : std::vector<float>());
    pass.values_after.push_back(p->value.to_vector<float>());
  }
  return pass;
}

// The case's initial weights, drawn on the CPU and moved off their initialisers' defaults (so
// that BatchNormalization's factor, offset and moving statistics are not 1s and 0s): each value
// plus up to 0.2 either way, and a moving variance kept above 0.5.
std::vector<std::vector<float>> initial_weights(const LayerCase& c) {
  Session session({.name = "initial"});
  SessionScope scope(session);
  Layer layer = c.make();
  layer->build(c.input);
  RandomGenerator rng(7);
  layer->initialize(rng);
  std::vector<std::vector<float>> weights;
  unsigned seed = 100;
  for (const Parameter* p : layer->parameters()) {
    std::vector<float> v = p->value.to_vector<float>();
    const std::vector<float> noise = uniform(static_cast<std::int64_t>(v.size()), ++seed);
    for (std::size_t i = 0; i < v.size(); ++i) {
      v[i] += 0.2f * noise[i];
      if (p->name == "moving_variance") v[i] = std::fabs(v[i]) + 0.5f;
    }
    weights.push_back(std::move(v));
  }
  return weights;
}

// Empty when `gpu` is within rounding of `cpu`: |gpu - cpu| <= 1e-4 of cpu's largest magnitude
// (and 1e-6) for every element, so that a sum over many rows is held to its own scale. Else
// the first element that is not, with both values.
std::string compare(const std::string& what, const std::vector<float>& cpu,
                    const std::vector<float>& gpu) {
  std::ostringstream out;
  if (cpu.size() != gpu.size()) {
    out << what << ": " << gpu.size() << " values on the GPU, " << cpu.size() << " on the CPU";
    return out.str();
  }
  float scale = 0.0f;
  for (float v : cpu) scale = std::max(scale, std::fabs(v));
  const float tolerance = 1e-4f * scale + 1e-6f;
  for (std::size_t i = 0; i < cpu.size(); ++i) {
    if (std::fabs(gpu[i] - cpu[i]) <= tolerance) continue;  // false for a NaN
    out << what << "[" << i << "]: GPU " << gpu[i] << ", CPU " << cpu[i] << " (tolerance "
        << tolerance << ")";
    return out.str();
  }
  return "";
}

class CudaLayers : public ::testing::TestWithParam<LayerCase> {};

TEST_P(CudaLayers, ComputeOnTheGpuWhatTheyComputeOnTheCpu) {
  TABULA_REQUIRE_CUDA_DEVICE();
  const LayerCase& c = GetParam();
  const std::vector<std::vector<float>> weights = initial_weights(c);
  const LayerPass cpu = run_layer(Device::cpu(), c, weights);
  const LayerPass gpu = run_layer(Device::cuda(0), c, weights);
  std::vector<std::string> failures{compare("y", cpu.y, gpu.y), compare("dx", cpu.dx, gpu.dx)};
  for (std::size_t i = 0; i < cpu.names.size(); ++i) {
    failures.push_back(compare("d " + cpu.names[i], cpu.gradients[i], gpu.gradients[i]));
    failures.push_back(
        compare(cpu.names[i] + " after the pass", cpu.values_after[i], gpu.values_after[i]));
  }
  for (const std::string& failure : failures) EXPECT_EQ(failure, "") << c.name;
}

INSTANTIATE_TEST_SUITE_P(EveryLayer, CudaLayers, ::testing::ValuesIn(layer_cases()),
                         [](const ::testing::TestParamInfo<LayerCase>& info) {
                           return info.param.name;
                         });

// Dropout while training draws its mask on the device (the GPU's generator is not the CPU's),
// so its two passes cannot match elementwise; each must be consistent with one mask instead:
// every element dropped in y is dropped in dx, every other one scaled by 1 / (1 - rate) in both.
TEST(CudaLayersDropout, TrainsWithOneMaskForwardAndBackwardOnTheGpu) {
  TABULA_REQUIRE_CUDA_DEVICE();
  Session session({.device = Device::cuda(0), .name = "dropout-gpu", .seed = 3});
  SessionScope scope(session);
  Layer dropout = layers::Dropout(0.25);
  dropout->build(Shape{64});
  dropout->reserve(32);
  const std::vector<float> xs = uniform(32 * 64, 21), dys = uniform(32 * 64, 22);
  const Tensor x = from_vector(xs, Shape{32, 64}), dy = from_vector(dys, Shape{32, 64});
  const Tensor y = zeros(Shape{32, 64}), dx = zeros(Shape{32, 64});
  dropout->forward(x, y, true);
  dropout->backward(x, y, dy, &dx);
  const std::vector<float> ys = y.to_vector<float>(), dxs = dx.to_vector<float>();
  std::size_t dropped = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    if (xs[i] == 0.0f) continue;  // dropped or not, y is 0
    if (ys[i] == 0.0f) {
      ++dropped;
      EXPECT_EQ(dxs[i], 0.0f) << "element " << i << " dropped forward but not backward";
    } else {
      EXPECT_FLOAT_EQ(ys[i], xs[i] / 0.75f) << "element " << i;
      EXPECT_FLOAT_EQ(dxs[i], dys[i] / 0.75f) << "element " << i;
    }
  }
  // 2048 draws at rate 0.25: 512 expected, a standard deviation of about 20.
  EXPECT_GT(dropped, 400u);
  EXPECT_LT(dropped, 624u);
}

}  // namespace
}  // namespace tabula
