// Sequential models as users drive them: compile, fit, evaluate, predict, weights, memory.

#include "tabula/nn/sequential.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include "support/blobs.hpp"
#include "tabula/tabula.hpp"

namespace tabula {
namespace {

class SequentialTest : public ::testing::Test {
 protected:
  Session session_{{.name = "models", .seed = 11}};
  SessionScope use_{session_};
};

std::pair<Tensor, Tensor> blobs(std::int64_t n, std::uint64_t seed) {
  return testing::gaussian_blobs(n, seed);
}

Sequential small_model() {
  return Sequential({layers::Input({4}), layers::Dense(16, "relu"), layers::Dense(3, "softmax")});
}

TEST_F(SequentialTest, LearnsASeparableProblem) {
  auto [x, y] = blobs(600, 1);
  Sequential model = small_model();
  model.compile(optimizers::Adam(1e-2), "sparse_categorical_crossentropy", {"accuracy"});
  History h = model.fit(x, y, {.epochs = 10, .batch_size = 32, .verbose = 0});
  ASSERT_EQ(h.history["loss"].size(), 10u);
  EXPECT_LT(h.history["loss"].back(), h.history["loss"].front());
  auto [xt, yt] = blobs(300, 2);
  const auto r = model.evaluate(xt, yt);
  EXPECT_GT(r.at("accuracy"), 0.95);
  EXPECT_EQ(model.predict(xt).shape(), Shape({300, 3}));
}

TEST_F(SequentialTest, EveryOptimizerAndLossTrains) {
  auto [x, y] = blobs(300, 3);
  Tensor y1h = utils::to_categorical(y, 3);
  struct Case {
    Optimizer optimizer;
    const char* loss;
    bool one_hot;
  };
  std::vector<Case> cases = {{optimizers::SGD(0.1), "categorical_crossentropy", true},
                             {optimizers::SGD(0.05, 0.9, true), "sparse_categorical_crossentropy", false},
                             {optimizers::RMSprop(1e-2), "mse", true},
                             {optimizers::AdamW(1e-2, 1e-3), "mae", true},
                             {optimizers::Adam(1e-2), "categorical_crossentropy", true}};
  for (auto& c : cases) {
    Sequential model = small_model();
    model.compile(c.optimizer, c.loss, {"accuracy"});
    History h = model.fit(x, c.one_hot ? y1h : y, {.epochs = 8, .batch_size = 16, .verbose = 0});
    EXPECT_LT(h.history["loss"].back(), h.history["loss"].front()) << c.optimizer->name() << " "
                                                                   << c.loss;
    EXPECT_GT(h.history["accuracy"].back(), 0.8) << c.optimizer->name() << " " << c.loss;
  }
}

TEST_F(SequentialTest, AfterTheFirstStepTrainingTakesNothingNewFromTheOs) {
  auto [x, y] = blobs(512, 4);
  Sequential model = small_model();
  model.compile(optimizers::Adam(), "sparse_categorical_crossentropy", {"accuracy"});
  std::vector<std::size_t> upstream;
  std::vector<std::size_t> current;
  auto probe = callbacks::LambdaCallback({.on_batch_end = [&](std::int64_t, const Logs&) {
    upstream.push_back(session_.memory_info().upstream_allocations);
    current.push_back(session_.memory_info().current);
  }});
  model.fit(x, y, {.epochs = 3, .batch_size = 64, .verbose = 0, .callbacks = {probe}});
  ASSERT_EQ(upstream.size(), 3u * 8u);
  for (std::size_t i = 1; i < upstream.size(); ++i) {
    EXPECT_EQ(upstream[i], upstream[0]) << "step " << i << " asked the OS for memory";
    EXPECT_EQ(current[i], current[0]) << "step " << i << " changed the bytes in use";
  }
}

TEST_F(SequentialTest, AccountsWeightsGradientsAndOptimizerStateByCategory) {
  Sequential model({layers::Input({784}), layers::Dense(128, "relu"), layers::Dense(10)});
  model.compile(optimizers::Adam(), "mse");
  const std::size_t params = (784 * 128 + 128 + 128 * 10 + 10) * sizeof(float);
  const MemoryInfo m = session_.memory_info();
  // Each tensor is rounded to the pool's 64-byte granule.
  auto rounded = [](std::size_t bytes) { return PoolResource::block_size(bytes); };
  const std::size_t weights = rounded(784 * 128 * 4) + rounded(128 * 4) + rounded(128 * 10 * 4) +
                              rounded(10 * 4);
  EXPECT_EQ(m.by_category[Category::weights], weights);
  EXPECT_EQ(m.by_category[Category::gradients], weights);
  EXPECT_EQ(m.by_category[Category::optimizer], 2 * weights);
  EXPECT_EQ(m.by_category[Category::activations], 0u) << "batch buffers exist only during fit";
  EXPECT_EQ(model.count_params() * 4, static_cast<std::int64_t>(params));
}

TEST_F(SequentialTest, ClearingTheSessionMakesTheModelStale) {
  Sequential model = small_model();
  model.compile(optimizers::Adam(), "sparse_categorical_crossentropy");
  session_.clear();
  EXPECT_EQ(session_.memory_info().current, 0u) << "the model's weights went with the clear";
  auto [x, y] = blobs(10, 5);
  try {
    model.fit(x, y, {.verbose = 0});
    FAIL() << "a model of a cleared session must not train";
  } catch (const SessionCleared& e) {
    EXPECT_NE(std::string(e.what()).find("model 'sequential'"), std::string::npos) << e.what();
  }
}

TEST_F(SequentialTest, ModelNamesAreUniqueAndStartOverAfterClear) {
  EXPECT_EQ(Sequential().name(), "sequential");
  EXPECT_EQ(Sequential().name(), "sequential_1");
  session_.clear();
  EXPECT_EQ(Sequential().name(), "sequential");
}

TEST_F(SequentialTest, LiveObjectsListTheModelAndItsWeights) {
  Sequential model = small_model();
  bool model_listed = false, kernel_listed = false;
  for (const LiveObject& o : session_.live_objects()) {
    model_listed = model_listed || (o.kind == "model" && o.name == model.name());
    kernel_listed = kernel_listed || o.name == "dense/kernel";
  }
  EXPECT_TRUE(model_listed);
  EXPECT_TRUE(kernel_listed);
}

TEST_F(SequentialTest, ResetWeightsWithASeedIsReproducibleAndKeepsTheMemory) {
  auto [x, y] = blobs(64, 6);
  Sequential model = small_model();
  model.compile(optimizers::Adam(), "sparse_categorical_crossentropy");
  model.fit(x, y, {.epochs = 1, .verbose = 0});
  void* kernel_memory = model.layers()[1]->parameters()[0]->value.raw_data();
  const std::size_t in_use = session_.memory_info().current;
  model.reset_weights(7);
  const auto first = model.get_weights();
  model.fit(x, y, {.epochs = 1, .verbose = 0});
  model.reset_weights(7);
  const auto second = model.get_weights();
  ASSERT_EQ(first.size(), second.size());
  for (std::size_t i = 0; i < first.size(); ++i)
    EXPECT_EQ(first[i].to_vector<float>(), second[i].to_vector<float>()) << "weight " << i;
  model.reset_weights();
  EXPECT_NE(model.get_weights()[0].to_vector<float>(), first[0].to_vector<float>());
  EXPECT_EQ(model.layers()[1]->parameters()[0]->value.raw_data(), kernel_memory);
  EXPECT_EQ(session_.memory_info().current - in_use,
            [&] {
              std::size_t copies = 0;
              for (const auto& w : first) copies += PoolResource::block_size(w.nbytes());
              for (const auto& w : second) copies += PoolResource::block_size(w.nbytes());
              return copies;
            }())
      << "only the get_weights copies are new";
}

TEST_F(SequentialTest, SetWeightsRejectsWrongShapesAndChangesNothing) {
  Sequential model = small_model();
  model.build({4});
  const auto before = model.get_weights();
  auto wrong = model.get_weights();
  wrong[2] = zeros({3, 16});  // the second kernel is (16, 3)
  try {
    model.set_weights(wrong);
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("(16, 3)"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("(3, 16)"), std::string::npos) << e.what();
  }
  const auto after = model.get_weights();
  for (std::size_t i = 0; i < before.size(); ++i)
    EXPECT_EQ(before[i].to_vector<float>(), after[i].to_vector<float>());
  auto scaled = model.get_weights();
  for (auto& w : scaled) w = full(w.shape(), 0.5);
  model.set_weights(scaled);
  EXPECT_EQ(model.get_weights()[1].to_vector<float>(), std::vector<float>(16, 0.5f));
}

TEST_F(SequentialTest, FitNamesWhatIsWrongWithItsInputsBeforeTraining) {
  Sequential model = small_model();
  auto [x, y] = blobs(20, 7);
  EXPECT_THROW(model.fit(x, y, {.verbose = 0}), InvalidArgument) << "not compiled";
  model.compile(optimizers::Adam(), "sparse_categorical_crossentropy");
  const auto before = model.get_weights();
  try {
    model.fit(zeros({20, 5}), y, {.verbose = 0});
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("expected per-sample shape (4,)"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(model.fit(x, zeros({19}), {.verbose = 0}), InvalidArgument);
  EXPECT_THROW(model.fit(x, y, {.batch_size = 0, .verbose = 0}), InvalidArgument);
  EXPECT_EQ(model.get_weights()[0].to_vector<float>(), before[0].to_vector<float>());
}

TEST_F(SequentialTest, ValidationSplitAddsValidationLogs) {
  auto [x, y] = blobs(200, 8);
  Sequential model = small_model();
  model.compile(optimizers::Adam(1e-2), "sparse_categorical_crossentropy", {"accuracy"});
  History h = model.fit(x, y, {.epochs = 2, .batch_size = 32, .verbose = 0,
                               .validation_split = 0.25});
  EXPECT_EQ(h.history.count("val_loss"), 1u);
  EXPECT_EQ(h.history.count("val_accuracy"), 1u);
  EXPECT_EQ(h.history["val_loss"].size(), 2u);
}

TEST_F(SequentialTest, EarlyStoppingStopsAndChecksItsMonitorFirst) {
  auto [x, y] = blobs(120, 9);
  Sequential model = small_model();
  model.compile(optimizers::SGD(1e-9), "sparse_categorical_crossentropy");
  History h = model.fit(x, y, {.epochs = 50, .verbose = 0,
                               .callbacks = {callbacks::EarlyStopping(
                                   {.monitor = "loss", .min_delta = 1e-3, .patience = 2})}});
  EXPECT_EQ(h.epoch.size(), 3u) << "as Keras: the first epoch sets the best, then patience";
  const auto before = model.get_weights();
  try {
    model.fit(x, y, {.epochs = 3, .verbose = 0, .callbacks = {callbacks::EarlyStopping()}});
    FAIL() << "val_loss does not exist without validation data";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("'val_loss'"), std::string::npos) << e.what();
  }
  EXPECT_EQ(model.get_weights()[0].to_vector<float>(), before[0].to_vector<float>());
}

TEST_F(SequentialTest, SummaryShowsLayersShapesParametersAndMemory) {
  Sequential model({layers::Input({784}), layers::Dense(128, "relu"), layers::Dense(10, "softmax")});
  model.compile(optimizers::Adam(), "categorical_crossentropy");
  const std::string s = model.summary_string();
  for (const char* part : {"Model: \"sequential\"", "dense (Dense)", "(None, 128)", "100480",
                           "dense_1 (Dense)", "(None, 10)", "1290", "Total params: 101770",
                           "weights 397.5 KiB", "optimizer 795.1 KiB"})
    EXPECT_NE(s.find(part), std::string::npos) << "missing '" << part << "' in\n" << s;
}

TEST_F(SequentialTest, BuildsOnFirstDataWithoutAnInputLayer) {
  Sequential model({layers::Flatten(), layers::Dense(3, "softmax")});
  model.compile(optimizers::Adam(), "sparse_categorical_crossentropy");
  EXPECT_FALSE(model.built());
  Tensor x = random_normal({8, 2, 2});
  model.fit(x, from_vector(std::vector<std::int64_t>{0, 1, 2, 0, 1, 2, 0, 1}), {.verbose = 0});
  EXPECT_TRUE(model.built());
  EXPECT_EQ(model.count_params(), 4 * 3 + 3);
}

}  // namespace
}  // namespace tabula
