// What Sequential::add and fit promise beyond learning: validation data, shuffling, verbose
// output, callbacks and their logs, accuracy resolved like Keras, and reset_weights resetting
// the optimizer too.

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <sstream>

#include "support/blobs.hpp"
#include "support/expect_error.hpp"
#include "tabula/nn/sequential.hpp"
#include "tabula/tabula.hpp"

namespace tabula {
namespace {

using testing::expect_contains;
using testing::thrown_message;

class SequentialFitTest : public ::testing::Test {
 protected:
  Session session_{{.name = "fit", .seed = 17}};
  SessionScope use_{session_};
};

std::pair<Tensor, Tensor> blobs(std::int64_t n, std::uint64_t seed) {
  return testing::gaussian_blobs(n, seed);
}

Sequential small_model() {
  return Sequential({layers::Input({4}), layers::Dense(8, "tanh"), layers::Dense(3, "softmax")});
}

std::vector<std::vector<float>> values(const Sequential& m) {
  std::vector<std::vector<float>> out;
  for (const Tensor& w : m.get_weights()) out.push_back(w.to_vector<float>());
  return out;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST_F(SequentialFitTest, AddBuildsEachLayerOnceTheInputIsKnown) {
  Sequential model;
  EXPECT_FALSE(model.built());
  model.add(layers::Input({4}));
  model.add(layers::Dense(5, "relu"));
  EXPECT_TRUE(model.built());
  ASSERT_EQ(model.layers().size(), 2u);
  EXPECT_EQ(model.layers()[1]->output_shape(), Shape({5}));
  EXPECT_EQ(model.count_params(), 4 * 5 + 5);
  model.add(layers::Dense(2));
  EXPECT_EQ(model.layers()[2]->input_shape(), Shape({5}));
  EXPECT_EQ(model.count_params(), 25 + 5 * 2 + 2);
  const auto [x, y] = blobs(8, 1);
  EXPECT_EQ(model.predict(x).shape(), Shape({8, 2}));
}

TEST_F(SequentialFitTest, AddWithoutAnInputDefersTheBuildToTheFirstData) {
  Sequential model;
  model.add(layers::Dense(6, "tanh"));
  model.add(layers::Dense(3, "softmax"));
  EXPECT_FALSE(model.built());
  EXPECT_EQ(model.count_params(), 0);
  const auto [x, y] = blobs(8, 2);
  EXPECT_EQ(model.predict(x).shape(), Shape({8, 3}));
  EXPECT_TRUE(model.built());
  EXPECT_EQ(model.count_params(), 4 * 6 + 6 + 6 * 3 + 3);
}

TEST_F(SequentialFitTest, AddRejectsAnInputAfterOtherLayersAndAnEmptyHandle) {
  Sequential model({layers::Dense(3)});
  expect_contains(thrown_message<InvalidArgument>([&] { model.add(layers::Input({4})); }),
                  {"Input layer", "the first layer", "position 1"});
  EXPECT_THROW(model.add(Layer()), InvalidArgument);
  EXPECT_EQ(model.layers().size(), 1u);
}

TEST_F(SequentialFitTest, AddingALayerAfterCompileRequiresCompilingAgain) {
  Sequential model({layers::Input({4}), layers::Dense(3, "softmax")});
  model.compile(optimizers::Adam(), "sparse_categorical_crossentropy");
  model.add(layers::Dense(3, "softmax"));
  const auto [x, y] = blobs(16, 3);
  expect_contains(thrown_message<InvalidArgument>([&] { model.fit(x, y, {.verbose = 0}); }),
                  {"not compiled"});
  model.compile(optimizers::Adam(), "sparse_categorical_crossentropy");
  EXPECT_NO_THROW(model.fit(x, y, {.verbose = 0}));
}

TEST_F(SequentialFitTest, ValidationDataLogsMatchEvaluateOnThatData) {
  const auto [x, y] = blobs(96, 4);
  const auto [vx, vy] = blobs(40, 5);
  Sequential model = small_model();
  model.compile(optimizers::Adam(1e-2), "sparse_categorical_crossentropy", {"accuracy"});
  std::int64_t batches = 0;
  auto count = callbacks::LambdaCallback(
      {.on_batch_end = [&](std::int64_t, const Logs&) { ++batches; }});
  History h = model.fit(x, y, {.epochs = 3, .batch_size = 16, .verbose = 0,
                               .validation_split = 0.5,  // ignored: validation_data wins
                               .validation_data = std::make_pair(vx, vy),
                               .callbacks = {count}});
  EXPECT_EQ(batches, 3 * 6) << "every one of the 96 samples trains when validation_data is given";
  ASSERT_EQ(h.history["val_loss"].size(), 3u);
  ASSERT_EQ(h.history["val_accuracy"].size(), 3u);
  EXPECT_EQ(h.history.size(), 4u);
  // The last epoch's validation ran on the weights fit returned with.
  const auto r = model.evaluate(vx, vy, {.batch_size = 16});
  EXPECT_NEAR(h.history["val_loss"].back(), r.at("loss"), 1e-9);
  EXPECT_NEAR(h.history["val_accuracy"].back(), r.at("accuracy"), 1e-12);
  EXPECT_NE(h.history["val_loss"].back(), h.history["loss"].back())
      << "validation figures come from the validation data, not the training data";
}

TEST_F(SequentialFitTest, ValidationDataIsCheckedBeforeTraining) {
  const auto [x, y] = blobs(32, 6);
  Sequential model = small_model();
  model.compile(optimizers::Adam(), "sparse_categorical_crossentropy");
  const auto before = values(model);
  expect_contains(
      thrown_message<InvalidArgument>([&] {
        model.fit(x, y, {.verbose = 0, .validation_data = std::make_pair(zeros({5, 3}), y)});
      }),
      {"fit validation_data x", "per-sample shape (4,)", "(3,)"});
  EXPECT_EQ(values(model), before);
}

// With a learning rate too small to change a float32 weight, every epoch sees the same model,
// so its per-batch logs differ between epochs only if the batches do.
std::vector<std::vector<double>> batch_losses_per_epoch(Sequential& model, const Tensor& x,
                                                        const Tensor& y, bool shuffle) {
  std::vector<std::vector<double>> epochs;
  auto record = callbacks::LambdaCallback({.on_batch_end = [&](std::int64_t batch, const Logs& l) {
    if (batch == 0) epochs.emplace_back();
    epochs.back().push_back(l.at("loss"));
  }});
  model.fit(x, y, {.epochs = 3, .batch_size = 8, .verbose = 0, .shuffle = shuffle,
                   .callbacks = {record}});
  return epochs;
}

TEST_F(SequentialFitTest, WithoutShuffleEveryEpochSeesTheSameBatchesInOrder) {
  const auto [x, y] = blobs(48, 7);
  Sequential model = small_model();
  model.compile(optimizers::SGD(1e-30), "sparse_categorical_crossentropy");
  const auto before = model.predict(x).to_vector<float>();
  const auto unshuffled = batch_losses_per_epoch(model, x, y, false);
  ASSERT_EQ(unshuffled.size(), 3u);
  EXPECT_EQ(model.predict(x).to_vector<float>(), before)
      << "the learning rate is too small to change what the model computes";
  EXPECT_EQ(unshuffled[1], unshuffled[0]);
  EXPECT_EQ(unshuffled[2], unshuffled[0]);
  const auto shuffled = batch_losses_per_epoch(model, x, y, true);
  ASSERT_EQ(shuffled.size(), 3u);
  EXPECT_NE(shuffled[0], unshuffled[0]) << "shuffled batches hold other samples";
  EXPECT_NE(shuffled[1], shuffled[0]) << "each epoch is shuffled anew";
  // The whole epoch's mean loss is the same whatever the order.
  EXPECT_NEAR(shuffled[0].back(), unshuffled[0].back(), 1e-5);
}

TEST_F(SequentialFitTest, ShuffledTrainingIsReproducibleFromTheSameSeedAndOnlyFromIt) {
  const auto [x, y] = blobs(64, 8);
  Sequential model = small_model();
  model.compile(optimizers::Adam(1e-2), "sparse_categorical_crossentropy");
  auto train = [&](bool shuffle, std::uint64_t data_seed) {
    model.reset_weights(3);
    session_.set_seed(data_seed);
    model.fit(x, y, {.epochs = 2, .batch_size = 8, .verbose = 0, .shuffle = shuffle});
    return values(model);
  };
  const auto plain = train(false, 1);
  EXPECT_EQ(train(false, 2), plain) << "without shuffling the generator plays no part";
  const auto shuffled = train(true, 1);
  EXPECT_NE(shuffled, plain);
  EXPECT_EQ(train(true, 1), shuffled) << "the same seed shuffles the same way";
  EXPECT_NE(train(true, 2), shuffled) << "another seed shuffles another way";
}

TEST_F(SequentialFitTest, VerboseTwoPrintsOneLinePerEpochAndNoProgressBar) {
  const auto [x, y] = blobs(40, 9);
  Sequential model = small_model();
  model.compile(optimizers::Adam(), "sparse_categorical_crossentropy", {"accuracy"});
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  model.fit(x, y, {.epochs = 3, .batch_size = 16, .verbose = 2, .validation_split = 0.2});
  const std::string err = ::testing::internal::GetCapturedStderr();
  const std::string out = ::testing::internal::GetCapturedStdout();
  EXPECT_EQ(err, "") << "the progress output goes to stdout, as Keras's";
  const auto lines = lines_of(out);
  ASSERT_EQ(lines.size(), 6u) << out;
  for (int epoch = 0; epoch < 3; ++epoch) {
    EXPECT_EQ(lines[2 * epoch], "Epoch " + std::to_string(epoch + 1) + "/3");
    const std::string& line = lines[2 * epoch + 1];
    EXPECT_EQ(line.rfind("2/2 - ", 0), 0u) << line;  // 32 training samples, batches of 16
    expect_contains(line, {"ms/step", " - loss: ", " - accuracy: ", " - val_loss: ",
                           " - val_accuracy: "});
    EXPECT_EQ(line.find('['), std::string::npos) << "no bar at verbose=2: " << line;
  }
  EXPECT_EQ(out.find('\r'), std::string::npos) << "no redrawing at verbose=2";
}

TEST_F(SequentialFitTest, VerboseZeroPrintsNothing) {
  const auto [x, y] = blobs(40, 10);
  Sequential model = small_model();
  model.compile(optimizers::Adam(), "sparse_categorical_crossentropy");
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  model.fit(x, y, {.epochs = 2, .verbose = 0});
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  EXPECT_EQ(::testing::internal::GetCapturedStdout(), "");
}

TEST_F(SequentialFitTest, CallbacksSeeEveryBatchAndEpochWithTheirLogs) {
  const auto [x, y] = blobs(50, 11);
  Sequential model = small_model();
  model.compile(optimizers::Adam(1e-2), "sparse_categorical_crossentropy", {"accuracy"});
  struct BatchCall {
    std::int64_t batch;
    Logs logs;
  };
  std::vector<BatchCall> batch_calls;
  std::vector<std::pair<int, Logs>> epoch_calls;
  auto cb = callbacks::LambdaCallback(
      {.on_epoch_end = [&](int epoch, const Logs& l) { epoch_calls.emplace_back(epoch, l); },
       .on_batch_end = [&](std::int64_t b, const Logs& l) { batch_calls.push_back({b, l}); }});
  // 40 training samples in batches of 16: 16, 16, 8.
  History h = model.fit(x, y, {.epochs = 2, .batch_size = 16, .verbose = 0,
                               .validation_split = 0.2, .callbacks = {cb}});
  ASSERT_EQ(epoch_calls.size(), 2u);
  ASSERT_EQ(batch_calls.size(), 6u);
  for (int epoch = 0; epoch < 2; ++epoch) {
    const auto& [index, logs] = epoch_calls[epoch];
    EXPECT_EQ(index, epoch);
    ASSERT_EQ(logs.size(), 4u);
    for (const auto& [name, value] : logs) {
      ASSERT_EQ(h.history.count(name), 1u) << name;
      EXPECT_EQ(h.history.at(name)[epoch], value) << name << " at epoch " << epoch;
    }
    for (int b = 0; b < 3; ++b) {
      const BatchCall& call = batch_calls[epoch * 3 + b];
      EXPECT_EQ(call.batch, b) << "batches count from 0 in each epoch";
      EXPECT_EQ(call.logs.size(), 2u) << "batch logs: loss and accuracy, nothing of validation";
      EXPECT_EQ(call.logs.count("val_loss"), 0u);
    }
    // Batch logs are running means over the epoch so far; after its last batch they are the
    // epoch's training figures.
    const Logs& last = batch_calls[epoch * 3 + 2].logs;
    EXPECT_EQ(last.at("loss"), logs.at("loss"));
    EXPECT_EQ(last.at("accuracy"), logs.at("accuracy"));
  }
  EXPECT_EQ(h.epoch, (std::vector<int>{0, 1}));
}

// Keras users score a model in their callbacks. Evaluating and predicting there, with batches
// larger and smaller than fit's, changes nothing of the training: fit's layers keep (or get
// back) the buffers of its own passes.
TEST_F(SequentialFitTest, ACallbackMayEvaluateAndPredictWithoutChangingTheTraining) {
  const Tensor x = random_uniform({96, 6, 3}, -1.0f, 1.0f);
  const Tensor y = random_uniform({96, 1}, -1.0f, 1.0f);
  const auto trained = [&](bool scoring) {
    Sequential model({layers::Input({6, 3}), layers::LSTM(8, {.return_sequences = true}),
                      layers::Dropout(0.25), layers::LSTM(4), layers::Dense(1)});
    model.compile(optimizers::Adam(1e-2), "mse");
    model.reset_weights(3);
    int scored = 0;
    auto score = callbacks::LambdaCallback({.on_epoch_end = [&](int, const Logs&) {
      model.evaluate(x, y, {.batch_size = 64});
      model.predict(x, {.batch_size = 8});
      ++scored;
    }});
    session_.set_seed(9);  // the same dropout masks for both runs
    model.fit(x, y,
              {.epochs = 3,
               .batch_size = 16,
               .verbose = 0,
               .shuffle = false,
               .callbacks = scoring ? std::vector<std::shared_ptr<Callback>>{score}
                                    : std::vector<std::shared_ptr<Callback>>{}});
    EXPECT_EQ(scored, scoring ? 3 : 0);
    return values(model);
  };
  EXPECT_EQ(trained(true), trained(false));
}

// A model's operations allocate in the model's session, whichever scope they are called from
// (on a GPU, the model's session is the one on the GPU); callbacks run in the caller's scope.
TEST_F(SequentialFitTest, AModelAllocatesInItsOwnSessionWhereverItIsCalledFrom) {
  auto [x, y] = blobs(64, 21);
  Sequential model = small_model();  // in session_
  Session other({.name = "caller"});
  SessionScope call_from(other);
  model.compile(optimizers::Adam(), "sparse_categorical_crossentropy");
  Tensor made_by_callback;
  auto make = callbacks::LambdaCallback(
      {.on_epoch_end = [&](int, const Logs&) { made_by_callback = zeros({16}); }});
  session_.reset_peak_memory();
  model.fit(x, y, {.epochs = 1, .batch_size = 16, .verbose = 0, .callbacks = {make}});
  const Tensor predictions = model.predict(x);
  model.evaluate(x, y);

  EXPECT_EQ(other.memory_info().peak, PoolResource::block_size(16 * sizeof(float)))
      << "the callback's tensor, and nothing of the model's";
  EXPECT_GT(session_.memory_info().peak_by_category[Category::activations], 0u);
  EXPECT_GT(session_.memory_info().by_category[Category::gradients], 0u) << "compile's";
  const auto holds = [](const Session& s, const std::string& name) {
    const std::vector<LiveObject> objects = s.live_objects();
    return std::any_of(objects.begin(), objects.end(),
                       [&](const LiveObject& o) { return o.name == name; });
  };
  EXPECT_TRUE(holds(session_, model.name() + "/predictions"));
  EXPECT_EQ(predictions.shape(), Shape({64, 3}));
}

// small_model(), compiled, in `session`.
Sequential compiled_in(Session& session) {
  SessionScope use(session);
  Sequential model = small_model();
  model.compile(optimizers::Adam(), "sparse_categorical_crossentropy");
  return model;
}

// A callback that destroys `session` at the end of an epoch.
std::shared_ptr<Callback> destroying(std::unique_ptr<Session>& session) {
  return callbacks::LambdaCallback({.on_epoch_end = [&](int, const Logs&) { session.reset(); }});
}

TEST_F(SequentialFitTest, ACallbackThatDestroysTheModelsSessionEndsFitWithSessionCleared) {
  auto [x, y] = blobs(64, 23);
  auto owned = std::make_unique<Session>(SessionOptions{.name = "short-lived"});
  Sequential model = compiled_in(*owned);
  const std::string message = thrown_message<SessionCleared>([&] {
    model.fit(x, y,
              {.epochs = 3, .batch_size = 16, .verbose = 0, .callbacks = {destroying(owned)}});
  });
  expect_contains(message, {"model 'sequential", "destroyed"});
  EXPECT_THROW(model.predict(x), SessionCleared) << "stale, not undefined";
}

// Unwinding from there gives no layer back a reservation in the destroyed session: with a
// layer reserved beforehand (as an enclosing plan's would be), that would allocate through it.
TEST_F(SequentialFitTest, ADestroyedSessionIsNotAllocatedInWhileFitUnwinds) {
  auto [x, y] = blobs(64, 29);
  auto owned = std::make_unique<Session>(SessionOptions{.name = "short-lived"});
  Sequential model = compiled_in(*owned);
  {
    SessionScope use(*owned);
    model.layers()[0]->reserve(8);
  }
  EXPECT_THROW(
      model.fit(x, y,
                {.epochs = 2, .batch_size = 16, .verbose = 0, .callbacks = {destroying(owned)}}),
      SessionCleared);
}

TEST_F(SequentialFitTest, ACallbackThatDestroysTheCallersSessionEndsFitWithSessionCleared) {
  auto [x, y] = blobs(64, 31);
  Sequential model = small_model();  // in session_
  model.compile(optimizers::Adam(), "sparse_categorical_crossentropy");
  auto caller = std::make_unique<Session>(SessionOptions{.name = "caller"});
  auto destroy = destroying(caller);
  std::string message;
  {
    SessionScope use(*caller);
    message = thrown_message<SessionCleared>([&] {
      model.fit(x, y, {.epochs = 3, .batch_size = 16, .verbose = 0, .callbacks = {destroy}});
    });
  }
  expect_contains(message, {"session current when model", "destroyed"});
}

TEST_F(SequentialFitTest, AccuracyIsBinaryForBinaryCrossentropy) {
  // Three independent yes/no outputs per sample: Keras resolves "accuracy" to
  // binary_accuracy (each output thresholded at 0.5), not to an argmax over the outputs.
  RandomGenerator rng(12);
  constexpr std::int64_t n = 30;
  std::vector<float> xs(n * 4), ys(n * 3);
  rng.fill_normal(xs.data(), xs.size(), 0.0f, 1.0f);
  for (std::size_t i = 0; i < ys.size(); ++i) ys[i] = (i * 7 + i / 3) % 3 == 0 ? 1.0f : 0.0f;
  const Tensor x = from_vector(xs, Shape{n, 4});
  const Tensor y = from_vector(ys, Shape{n, 3});
  Sequential model({layers::Input({4}), layers::Dense(3, "sigmoid")});
  model.compile(optimizers::Adam(), "binary_crossentropy", {"accuracy"});
  const auto p = model.predict(x).to_vector<float>();
  double correct = 0;
  for (std::size_t i = 0; i < p.size(); ++i) correct += (p[i] > 0.5f) == (ys[i] > 0.5f);
  const double binary = correct / static_cast<double>(p.size());
  double argmax_hits = 0;
  for (std::int64_t r = 0; r < n; ++r) {
    const auto* pr = &p[r * 3];
    const auto* yr = &ys[r * 3];
    argmax_hits += std::max_element(pr, pr + 3) - pr == std::max_element(yr, yr + 3) - yr;
  }
  ASSERT_NE(binary, argmax_hits / n) << "pick data on which the two readings differ";
  EXPECT_DOUBLE_EQ(model.evaluate(x, y).at("accuracy"), binary);
}

TEST_F(SequentialFitTest, AccuracyIsBinaryForOneSigmoidOutput) {
  RandomGenerator rng(13);
  constexpr std::int64_t n = 25;
  std::vector<float> xs(n * 2);
  rng.fill_normal(xs.data(), xs.size(), 0.0f, 1.0f);
  std::vector<std::int64_t> labels(n);
  for (std::int64_t i = 0; i < n; ++i) labels[i] = i % 2;
  const Tensor x = from_vector(xs, Shape{n, 2});
  Sequential model({layers::Input({2}), layers::Dense(1, "sigmoid")});
  model.compile(optimizers::Adam(), "binary_crossentropy", {"accuracy"});
  const auto p = model.predict(x).to_vector<float>();
  double correct = 0;
  for (std::int64_t i = 0; i < n; ++i) correct += (p[i] > 0.5f) == (labels[i] != 0);
  const Tensor yf = from_vector(std::vector<float>(labels.begin(), labels.end()), Shape{n, 1});
  EXPECT_DOUBLE_EQ(model.evaluate(x, yf).at("accuracy"), correct / n);
}

TEST_F(SequentialFitTest, ResetWeightsAlsoResetsTheOptimizerState) {
  // Adam's first step from given weights depends on its moments and step count; if
  // reset_weights left them, the step after a reset would differ from the very first one.
  const auto [x, y] = blobs(16, 14);
  Sequential model = small_model();
  Optimizer adam = optimizers::Adam(1e-2);
  model.compile(adam, "sparse_categorical_crossentropy");
  const FitOptions one_step{.epochs = 1, .batch_size = 16, .verbose = 0, .shuffle = false};
  model.reset_weights(5);
  const auto start = values(model);
  model.fit(x, y, one_step);
  const auto after_first_step = values(model);
  EXPECT_EQ(adam->iterations(), 1);
  model.fit(x, y, {.epochs = 4, .batch_size = 16, .verbose = 0, .shuffle = false});
  EXPECT_EQ(adam->iterations(), 5);
  model.reset_weights(5);
  EXPECT_EQ(values(model), start);
  EXPECT_EQ(adam->iterations(), 0);
  model.fit(x, y, one_step);
  EXPECT_EQ(values(model), after_first_step);
  // So does reset_weights() without a seed: the step count starts over.
  model.reset_weights();
  EXPECT_EQ(adam->iterations(), 0);
}

}  // namespace
}  // namespace tabula
