// End-to-end training on Fashion-MNIST (Debian's dataset-fashion-mnist package).

#include <gtest/gtest.h>

#include <filesystem>

#include "support/process_memory.hpp"
#include "tabula/data/fashion_mnist.hpp"
#include "tabula/tabula.hpp"

namespace tabula {
namespace {

bool skip_reason(std::string& why) {
  if (!std::filesystem::exists(datasets::fashion_mnist::default_directory() +
                               "/train-images-idx3-ubyte.gz")) {
    why = "dataset-fashion-mnist is not installed";
    return true;
  }
  if (testing::under_thread_sanitizer()) {
    why = "single-threaded training under ThreadSanitizer takes hours and checks no threads";
    return true;
  }
  return false;
}


// Under a sanitizer the full run takes minutes; a subset keeps the check meaningful.
std::int64_t training_samples() { return testing::under_sanitizer() ? 6000 : 60000; }

Tensor first(const Tensor& t, std::int64_t n) {
  std::vector<std::int64_t> dims = t.shape().dims();
  dims[0] = n;
  return Tensor(t.storage(), Shape(dims), t.dtype());
}

TEST(Training, MlpReachesEightyFourPercentOnFashionMnistInTwoEpochs) {
  if (std::string why; skip_reason(why)) GTEST_SKIP() << why;
  Session session({.name = "mlp", .seed = 1});
  SessionScope use(session);
  auto [train, test] = datasets::fashion_mnist::load_data();
  Sequential model({layers::Input({28, 28}), layers::Flatten(), layers::Dense(128, "relu"),
                    layers::Dense(10, "softmax")});
  model.compile(optimizers::Adam(1e-3), "sparse_categorical_crossentropy", {"accuracy"});
  const std::int64_t n = training_samples();
  model.fit(first(train.x, n), first(train.y, n), {.epochs = 2, .batch_size = 128, .verbose = 0});
  const auto r = model.evaluate(test.x, test.y);
  EXPECT_GE(r.at("accuracy"), testing::under_sanitizer() ? 0.75 : 0.84) << "loss " << r.at("loss");
}

// The full run (60000 samples, 3 epochs, >= 87%) is bench/train_bench's; here a subset keeps
// make test fast while still proving that the convolutional stack learns.
TEST(Training, SmallCnnLearnsFashionMnistFromASubset) {
  if (std::string why; skip_reason(why)) GTEST_SKIP() << why;
  Session session({.name = "cnn", .seed = 1});
  SessionScope use(session);
  auto [train, test] = datasets::fashion_mnist::load_data();
  using namespace layers;
  Sequential model({Input({28, 28, 1}), Conv2D(16, {3, 3}, "relu"), MaxPooling2D({2, 2}),
                    Conv2D(32, {3, 3}, "relu"), MaxPooling2D({2, 2}), Flatten(),
                    Dense(64, "relu"), Dense(10, "softmax")});
  model.compile(optimizers::Adam(1e-3), "sparse_categorical_crossentropy", {"accuracy"});
  const std::int64_t n = testing::under_sanitizer() ? 1000 : 12000;
  model.fit(first(train.x, n).reshape({n, 28, 28, 1}), first(train.y, n),
            {.epochs = 2, .batch_size = 32, .verbose = 0});
  const auto r = model.evaluate(first(test.x, 2000).reshape({2000, 28, 28, 1}), first(test.y, 2000));
  EXPECT_GE(r.at("accuracy"), testing::under_sanitizer() ? 0.55 : 0.78)
      << "accuracy " << r.at("accuracy") << ", loss " << r.at("loss");
}

TEST(Training, ClearingASessionWithATrainedModelReturnsRssToBaseline) {
  if (std::string why; skip_reason(why)) GTEST_SKIP() << why;
  Sequential kept;
  // Warm the process up outside the measured window with the same model and batch size:
  // the kernels' pool threads, zlib and the allocator's arenas are the process's, not the
  // session's.
  {
    Session warm({.name = "warm"});
    SessionScope use(warm);
    auto [train, test] = datasets::fashion_mnist::load_data();
    Sequential m({layers::Input({28, 28}), layers::Flatten(), layers::Dense(1024, "relu"),
                  layers::Dense(1024, "relu"), layers::Dense(10, "softmax")});
    m.compile(optimizers::Adam(), "sparse_categorical_crossentropy", {"accuracy"});
    m.fit(first(train.x, 512), first(train.y, 512), {.epochs = 1, .batch_size = 256, .verbose = 0});
  }
  const std::size_t baseline = testing::rss_bytes();
  {
    Session session({.name = "trained"});
    {
      SessionScope use(session);
      auto [train, test] = datasets::fashion_mnist::load_data();
      kept = Sequential({layers::Input({28, 28}), layers::Flatten(), layers::Dense(1024, "relu"),
                         layers::Dense(1024, "relu"), layers::Dense(10, "softmax")});
      kept.compile(optimizers::Adam(), "sparse_categorical_crossentropy", {"accuracy"});
      kept.fit(first(train.x, 2048), first(train.y, 2048),
               {.epochs = 1, .batch_size = 256, .verbose = 0});
      EXPECT_GT(session.memory_info().current, 200u * testing::kMiB);
    }
    session.clear();
    EXPECT_EQ(session.memory_info().reserved, 0u);
  }
  if (!testing::under_sanitizer()) {
    EXPECT_LE(testing::rss_bytes(), baseline + 2 * testing::kMiB)
        << "RSS " << testing::rss_bytes() / testing::kMiB << " MiB, baseline "
        << baseline / testing::kMiB << " MiB";
  }
  EXPECT_THROW(kept.summary_string(), SessionCleared);
}

}  // namespace
}  // namespace tabula
