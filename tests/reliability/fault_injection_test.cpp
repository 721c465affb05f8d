// Every allocation may fail: for each model kind, each allocation of a training step (and of
// building and compiling) is refused in turn. The failure must surface as
// OutOfMemory, leave the model and the session's figures as they were, and the same work must
// succeed once memory is back and after the session is cleared. Under ASan (make test) the
// same runs are leak-checked.

#include <gtest/gtest.h>

#include <cstdio>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "support/allocation_faults.hpp"
#include "support/temp_dir.hpp"
#include "tabula/tabula.hpp"

namespace tabula {
namespace {

using testing::AllocationFaults;

constexpr std::int64_t kSamples = 12;
constexpr std::uint64_t kSeed = 7;

struct ModelKind {
  std::string name;
  Shape sample;                          // per-sample input shape
  std::function<Sequential()> build;     // built (Input first), not compiled
  std::function<Optimizer()> optimizer;  // what it is compiled with

  void compile(Sequential& model) const {
    model.compile(optimizer(), "sparse_categorical_crossentropy", {"accuracy"});
  }
  Sequential make() const {
    Sequential model = build();
    compile(model);
    return model;
  }
};

void PrintTo(const ModelKind& kind, std::ostream* out) { *out << kind.name; }

// One of each kind the issue names, with every layer kind and optimizer among them.
std::vector<ModelKind> model_kinds() {
  using namespace layers;
  return {
      {"mlp", Shape({8}),
       [] {
         return Sequential({Input({8}), Dense(16, "relu"), BatchNormalization(), Dropout(0.25),
                            Dense(3, "softmax")});
       },
       [] { return optimizers::Adam(1e-2); }},
      {"cnn", Shape({8, 8, 1}),
       [] {
         return Sequential({Input({8, 8, 1}), Conv2D(4, {3, 3}, "relu"), MaxPooling2D({2, 2}),
                            Conv2D(4, {2, 2}, "relu"), AveragePooling2D({1, 1}), Flatten(),
                            Dense(3, "softmax")});
       },
       [] { return optimizers::SGD(1e-2, 0.9); }},
      {"lstm", Shape({5, 3}),
       [] { return Sequential({Input({5, 3}), LSTM(6), Dense(3, "softmax")}); },
       [] { return optimizers::RMSprop(1e-2); }},
  };
}

struct Batch {
  Tensor x, y;
};

Batch make_batch(const ModelKind& kind) {
  std::vector<std::int64_t> dims{kSamples};
  for (auto d : kind.sample.dims()) dims.push_back(d);
  std::vector<std::int64_t> labels(static_cast<std::size_t>(kSamples));
  for (std::int64_t i = 0; i < kSamples; ++i) labels[static_cast<std::size_t>(i)] = i % 3;
  return {random_normal(Shape(dims)), from_vector(labels, Shape({kSamples}))};
}

const FitOptions kOneStep{.epochs = 1, .batch_size = kSamples, .verbose = 0, .shuffle = false};

std::vector<std::vector<float>> weights_of(const Sequential& model) {
  std::vector<std::vector<float>> out;
  for (const Tensor& w : model.get_weights()) out.push_back(w.to_vector<float>());
  return out;
}

// One step from a known random state: the retry after a failure draws Dropout's mask as the
// reference did.
double fit_one_step(Sequential& model, const Batch& batch) {
  current_session().set_seed(99);
  return model.fit(batch.x, batch.y, kOneStep).history.at("loss").at(0);
}

// What a failed operation must leave exactly as it found it.
struct Figures {
  std::size_t current;
  CategoryBytes by_category;
  std::size_t allocations;
  std::size_t live_objects;
  friend bool operator==(const Figures&, const Figures&) = default;
};

Figures figures_of(const Session& session) {
  const MemoryInfo info = session.memory_info();
  return {info.current, info.by_category, info.allocations, info.live_objects};
}

std::string describe(const Figures& f) {
  return "current " + std::to_string(f.current) + " B in " + std::to_string(f.allocations) +
         " allocations, " + std::to_string(f.live_objects) + " live objects";
}

// Clearing gives everything back; then the same model and step work in the same session.
void expect_clear_returns_everything_and_work_resumes(Session& session, const ModelKind& kind,
                                                      const std::string& where) {
  session.clear();
  const MemoryInfo cleared = session.memory_info();
  EXPECT_EQ(cleared.current, 0u) << where;
  EXPECT_EQ(cleared.reserved, 0u) << where;
  EXPECT_EQ(cleared.live_objects, 0u) << where;
  Batch batch = make_batch(kind);
  Sequential again = kind.make();
  EXPECT_NO_THROW(fit_one_step(again, batch)) << where;
}

// What an operation runs on: a fresh session (current while the scene lives) holding a batch,
// and the model the scene's `prepare` made, if any.
struct Scene {
  Scene(AllocationFaults& faults, const ModelKind& kind, const char* name)
      : session(faults.session_options({.name = name, .seed = kSeed})),
        use(session),
        batch(make_batch(kind)) {}
  Session session;
  SessionScope use;
  Batch batch;
  Sequential model;
};

// Fault injection for one operation. A reference scene counts the allocations N the operation
// makes (`reference` then records what it computed); then, for each k in 1..N, a fresh scene
// refuses allocation k and every later one: the operation must throw OutOfMemory, leave the
// session's figures as they were, pass `after_refusal` (which also retries with memory back),
// and clearing must give everything back for the same work to succeed. Returns N.
template <typename Prepare, typename Operation, typename Reference, typename AfterRefusal>
std::size_t refuse_each_allocation(const ModelKind& kind, const std::string& what,
                                   Prepare prepare, Operation operation, Reference reference,
                                   AfterRefusal after_refusal) {
  AllocationFaults faults;
  std::size_t n = 0;
  {
    Scene scene(faults, kind, "reference");
    prepare(scene);
    const std::size_t start = faults.count();
    operation(scene);
    n = faults.count() - start;
    reference(scene);
  }
  EXPECT_GT(n, 0u) << what << " allocates nothing?";
  std::printf("[ %s ] %s: %zu allocations, each refused in turn\n", kind.name.c_str(),
              what.c_str(), n);
  for (std::size_t k = 1; k <= n; ++k) {
    const std::string where = kind.name + ", " + what + ": allocation " + std::to_string(k) +
                              " of " + std::to_string(n) + " refused";
    Scene scene(faults, kind, "faulty");
    prepare(scene);
    const Figures before = figures_of(scene.session);
    faults.fail_from_next(k);
    EXPECT_THROW(operation(scene), OutOfMemory) << where;
    faults.disarm();
    const Figures after = figures_of(scene.session);
    EXPECT_EQ(after, before) << where << ": before " << describe(before) << ", after "
                             << describe(after);
    after_refusal(scene, where);
    expect_clear_returns_everything_and_work_resumes(scene.session, kind, where);
    if (::testing::Test::HasFailure()) break;  // one k's story is enough to read
  }
  return n;
}

class FaultInjection : public ::testing::TestWithParam<ModelKind> {};

TEST_P(FaultInjection, EachAllocationOfATrainingStepMayFailAndTheModelIsLeftAsItWas) {
  const ModelKind& kind = GetParam();
  double reference_loss = 0;
  std::vector<std::vector<float>> initial, reference_after;
  const std::size_t n = refuse_each_allocation(
      kind, "one training step",
      [&](Scene& s) {
        s.model = kind.make();
        initial = weights_of(s.model);
      },
      [&](Scene& s) { reference_loss = fit_one_step(s.model, s.batch); },
      [&](Scene& s) { reference_after = weights_of(s.model); },
      [&](Scene& s, const std::string& where) {
        EXPECT_EQ(weights_of(s.model), initial) << where << ": the weights changed";
        // Memory is back: the same step on the same model computes what the reference did.
        EXPECT_EQ(fit_one_step(s.model, s.batch), reference_loss) << where;
        EXPECT_EQ(weights_of(s.model), reference_after) << where;
      });
  RecordProperty("allocations_per_step", static_cast<int>(n));
}

TEST_P(FaultInjection, EachAllocationOfBuildingAndCompilingMayFailAndTheSessionStaysUsable) {
  const ModelKind& kind = GetParam();
  double reference_loss = 0;
  refuse_each_allocation(
      kind, "building and compiling",
      [&](Scene& s) { s.session.set_seed(kSeed); },  // the retry below starts from it too
      [&](Scene& s) { s.model = kind.make(); },  // a half-built model dies with the exception
      [&](Scene& s) { reference_loss = fit_one_step(s.model, s.batch); },
      [&](Scene& s, const std::string& where) {
        // The same model from the same seed, once memory is back, trains as the reference did.
        s.session.set_seed(kSeed);
        s.model = kind.make();
        EXPECT_EQ(fit_one_step(s.model, s.batch), reference_loss) << where;
      });
}

// compile allocates gradients and optimizer state for a model that exists: when that fails,
// the model must refuse to train (not train with half its state) until compiled again.
TEST_P(FaultInjection, ACompileThatRunsOutOfMemoryLeavesAModelThatTrainsOnceCompiledAgain) {
  const ModelKind& kind = GetParam();
  double reference_loss = 0;
  refuse_each_allocation(
      kind, "compiling a built model", [&](Scene& s) { s.model = kind.build(); },
      [&](Scene& s) { kind.compile(s.model); },
      [&](Scene& s) { reference_loss = fit_one_step(s.model, s.batch); },
      [&](Scene& s, const std::string& where) {
        EXPECT_THROW(fit_one_step(s.model, s.batch), InvalidArgument) << where;
        kind.compile(s.model);
        EXPECT_EQ(fit_one_step(s.model, s.batch), reference_loss) << where;
      });
}

// save_weights writes from the weights' own memory and load_weights reads into it, so there
// is no session allocation to refuse: they must work when the session's memory has run out.
TEST_P(FaultInjection, SavingAndLoadingWeightsTakeNoSessionMemorySoTheyWorkWhenItHasRunOut) {
  const ModelKind& kind = GetParam();
  testing::TempDir dir("fault_injection");
  const std::string path = dir.file("weights.safetensors");
  AllocationFaults faults;
  // Two sessions, so that both models get the same layer names (weights are found by name).
  Session session_a(faults.session_options({.name = "trained", .seed = kSeed}));
  Session session_b(faults.session_options({.name = "fresh", .seed = kSeed + 1}));
  Sequential trained, fresh;
  {
    SessionScope use(session_a);
    Batch batch = make_batch(kind);
    trained = kind.make();
    fit_one_step(trained, batch);
  }
  SessionScope use(session_b);
  fresh = kind.make();
  const auto trained_weights = weights_of(trained);
  ASSERT_NE(weights_of(fresh), trained_weights);
  const auto figures_before = std::make_pair(figures_of(session_a), figures_of(session_b));

  faults.fail_from_next(1);  // every allocation from now on is refused
  const std::size_t start = faults.count();
  EXPECT_NO_THROW(trained.save_weights(path));
  const std::size_t n_save = faults.count() - start;
  EXPECT_NO_THROW(fresh.load_weights(path));
  const std::size_t n_load = faults.count() - start - n_save;
  faults.disarm();
  std::printf("[ %s ] save_weights: %zu allocations, load_weights: %zu\n", kind.name.c_str(),
              n_save, n_load);

  EXPECT_EQ(n_save, 0u);
  EXPECT_EQ(n_load, 0u);
  EXPECT_EQ(weights_of(fresh), trained_weights);
  EXPECT_EQ(std::make_pair(figures_of(session_a), figures_of(session_b)), figures_before);
}

INSTANTIATE_TEST_SUITE_P(EveryModelKind, FaultInjection, ::testing::ValuesIn(model_kinds()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace tabula
