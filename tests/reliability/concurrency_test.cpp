// Several threads at once: four train their own models in their own sessions while a fifth
// reads every figure; a session cleared on one thread while another works with its handles.
// `make tsan` runs these under ThreadSanitizer, `make test` under ASan.

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "support/blobs.hpp"
#include "tabula/tabula.hpp"

namespace tabula {
namespace {

constexpr std::int64_t kSamples = 2048;

// Four different models of the 4-feature blob problem, so the threads run different kernels.
Sequential make_model(int which) {
  using namespace layers;
  switch (which) {
    case 0:
      return Sequential({Input({4}), Dense(16, "relu"), Dense(3, "softmax")});
    case 1:
      return Sequential({Input({4}), Dense(16), BatchNormalization(), layers::Activation("relu"),
                         Dropout(0.2), Dense(3, "softmax")});
    case 2:
      return Sequential({Input({4}), Reshape({2, 2}), LSTM(8), Dense(3, "softmax")});
    default:
      return Sequential({Input({4}), Reshape({2, 2, 1}), Conv2D(4, {2, 2}, "relu"), Flatten(),
                         Dense(3, "softmax")});
  }
}

struct Outcome {
  MemoryInfo memory;
  std::size_t live_objects = 0;
  std::vector<std::vector<float>> weights;
  double loss = 0;
};

// Trains model `which` in the current session and reads back what a test compares.
Outcome train(int which) {
  auto [x, y] = testing::gaussian_blobs(kSamples, 100 + static_cast<std::uint64_t>(which));
  Sequential model = make_model(which);
  model.compile(optimizers::Adam(1e-2), "sparse_categorical_crossentropy", {"accuracy"});
  const History h = model.fit(x, y, {.epochs = 6, .batch_size = 32, .verbose = 0});
  Outcome out;
  out.loss = h.history.at("loss").back();
  for (const Tensor& w : model.get_weights()) out.weights.push_back(w.to_vector<float>());
  out.memory = current_session().memory_info();
  out.live_objects = current_session().live_objects().size();
  return out;
}

SessionOptions options_for(int which, const std::string& prefix) {
  return {.name = prefix + std::to_string(which), .seed = 1 + static_cast<std::uint64_t>(which)};
}

// What a reader may see at any moment: a consistent snapshot of each session.
void expect_consistent(const MemoryInfo& info, const std::string& who) {
  EXPECT_EQ(info.by_category.total(), info.current) << who;
  EXPECT_GE(info.peak, info.current) << who;
  EXPECT_GE(info.reserved, info.current) << who;
}

TEST(Concurrency, FourThreadsTrainingWhileAFifthReadsEveryFigureEndWithTheFiguresOfASingleThread) {
  constexpr int kTrainers = 4;
  std::vector<Outcome> reference;
  for (int i = 0; i < kTrainers; ++i) {
    Session session(options_for(i, "alone_"));
    SessionScope use(session);
    reference.push_back(train(i));
  }

  std::vector<std::unique_ptr<Session>> sessions;
  for (int i = 0; i < kTrainers; ++i)
    sessions.push_back(std::make_unique<Session>(options_for(i, "together_")));
  std::vector<Outcome> together(kTrainers);
  // The trainers start once the reader has taken its first snapshot, and the reader goes on
  // until the last trainer is done: the reading overlaps the whole training.
  std::atomic<bool> reading{false};
  std::atomic<int> running{kTrainers};
  std::size_t snapshots = 0;
  std::thread reader([&] {
    do {
      for (const auto& s : sessions) {
        expect_consistent(s->memory_info(), s->name());
        for (const LiveObject& object : s->live_objects()) EXPECT_FALSE(object.name.empty());
      }
      expect_consistent(memory_info(Device::cpu()), "the CPU");
      for (const SessionSummary& summary : live_sessions())
        expect_consistent(summary.memory, "live session " + summary.name);
      ++snapshots;
      reading.store(true);
    } while (running.load() > 0);
  });
  std::vector<std::thread> trainers;
  for (int i = 0; i < kTrainers; ++i) {
    trainers.emplace_back([&, i] {
      while (!reading.load()) std::this_thread::yield();
      SessionScope use(*sessions[static_cast<std::size_t>(i)]);
      together[static_cast<std::size_t>(i)] = train(i);
      running.fetch_sub(1);
    });
  }
  for (auto& t : trainers) t.join();
  reader.join();
  std::printf("the reader took %zu snapshots of every figure while four models trained\n",
              snapshots);

  for (int i = 0; i < kTrainers; ++i) {
    const Outcome& alone = reference[static_cast<std::size_t>(i)];
    const Outcome& with_others = together[static_cast<std::size_t>(i)];
    const std::string who = "model " + std::to_string(i);
    EXPECT_EQ(with_others.memory.current, alone.memory.current) << who;
    EXPECT_EQ(with_others.memory.peak, alone.memory.peak) << who;
    EXPECT_EQ(with_others.memory.by_category, alone.memory.by_category) << who;
    EXPECT_EQ(with_others.memory.allocations, alone.memory.allocations) << who;
    EXPECT_EQ(with_others.live_objects, alone.live_objects) << who;
    EXPECT_EQ(with_others.weights, alone.weights) << who << ": trained differently beside others";
    EXPECT_EQ(with_others.loss, alone.loss) << who;
  }
  for (auto& s : sessions) {
    s->clear();
    EXPECT_EQ(s->memory_info().current, 0u) << s->name();
    EXPECT_EQ(s->memory_info().reserved, 0u) << s->name();
  }
}

// One thread works with a model and its data in a loop; another clears their session. Every
// call on the first thread either completes (the clear waits for it) or throws SessionCleared:
// never a crash, never freed memory read (ASan), never a data race (TSan).
TEST(Concurrency, ClearingASessionWhileAnotherThreadUsesItsHandlesGivesThatThreadSessionCleared) {
  for (int round = 0; round < 8; ++round) {
    Session session({.name = "shared", .seed = 3});
    Sequential model;
    Tensor x, y;
    {
      SessionScope use(session);
      std::tie(x, y) = testing::gaussian_blobs(64, 5);
      model = make_model(round % 4);
      model.compile(optimizers::SGD(1e-2), "sparse_categorical_crossentropy");
    }
    std::atomic<int> calls{0};
    std::atomic<bool> done{false};  // the user thread ended, whatever the reason
    std::string ended_with;
    std::thread user([&] {
      SessionScope use(session);
      const std::vector<std::function<void()>> work = {
          [&] { model.fit(x, y, {.epochs = 1, .batch_size = 16, .verbose = 0}); },
          [&] { (void)model.predict(x); },
          [&] { (void)model.evaluate(x, y); },
          [&] { (void)x.to_vector<float>(); },
          [&] { (void)model.get_weights(); },
          [&] { (void)y.clone(); },
      };
      try {
        for (int i = 0;; ++i) {
          work[static_cast<std::size_t>(i) % work.size()]();
          calls.fetch_add(1);
        }
      } catch (const SessionCleared& e) {
        ended_with = e.what();
      } catch (const std::exception& e) {
        ended_with = std::string("unexpected: ") + e.what();
      }
      done.store(true);
    });
    while (calls.load() < 3 + round && !done.load()) std::this_thread::yield();
    session.clear();
    user.join();
    EXPECT_NE(ended_with.find("which was cleared"), std::string::npos)
        << "round " << round << ": " << ended_with;
    EXPECT_EQ(session.memory_info().current, 0u);
    EXPECT_THROW((void)model.predict(x), SessionCleared);
  }
}

// A callback that clears the session during fit cannot free the buffers fit is using: the
// clear happens when fit returns, and the model is stale from then on.
TEST(Concurrency, AClearFromACallbackDuringFitTakesEffectWhenFitReturns) {
  struct ClearAfterFirstBatch : Callback {
    void on_batch_end(std::int64_t, const Logs&) override {
      if (!cleared) clear_session();
      cleared = true;
    }
    bool cleared = false;
  };
  Session session({.name = "cleared_by_callback", .seed = 4});
  SessionScope use(session);
  auto [x, y] = testing::gaussian_blobs(64, 6);
  Sequential model = make_model(0);
  model.compile(optimizers::SGD(1e-2), "sparse_categorical_crossentropy");
  auto callback = std::make_shared<ClearAfterFirstBatch>();
  const History h = model.fit(
      x, y, {.epochs = 2, .batch_size = 16, .verbose = 0, .callbacks = {callback}});
  EXPECT_TRUE(callback->cleared);
  EXPECT_EQ(h.history.at("loss").size(), 2u) << "fit ran to its end";
  EXPECT_EQ(session.clear_count(), 1u);
  EXPECT_EQ(session.memory_info().current, 0u);
  EXPECT_THROW((void)model.predict(x), SessionCleared);
}

}  // namespace
}  // namespace tabula
