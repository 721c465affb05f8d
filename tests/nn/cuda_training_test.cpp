// Training on a CUDA device as users drive it: the same model on the GPU and on the CPU learns
// the same weights; clearing gives the driver its memory back, stale handles fail loudly; an
// out-of-memory names who holds what and leaves other sessions training. Skipped, with the
// reason, where no CUDA device is present.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "support/cuda_device.hpp"
#include "tabula/tabula.hpp"

namespace tabula {
namespace {

constexpr std::size_t kMiB = std::size_t{1} << 20;

std::vector<float> random_values(std::size_t n, unsigned seed) {
  std::vector<float> v(n);
  unsigned state = seed;
  for (float& x : v) {
    state = state * 1664525u + 1013904223u;
    x = static_cast<float>(state >> 8) / 16777216.0f * 2.0f - 1.0f;
  }
  return v;
}

struct Workload {
  std::string name;
  std::function<Sequential()> build;
  std::function<Optimizer()> optimizer;
  std::string loss;
  Shape x_shape;  // per sample
  std::int64_t classes;
};

std::vector<Workload> workloads() {
  return {
      {"mlp",
       [] {
         return Sequential(
             {layers::Input({20}), layers::Dense(32, "relu"), layers::Dense(5, "softmax")});
       },
       [] { return optimizers::Adam(1e-2); }, "sparse_categorical_crossentropy", Shape{20}, 5},
      {"cnn",
       [] {
         return Sequential({layers::Input({12, 12, 2}), layers::Conv2D(4, {3, 3}, "relu"),
                            layers::BatchNormalization(), layers::MaxPooling2D({2, 2}),
                            layers::Conv2D(3, {3, 3}, "tanh", {.padding = "same"}),
                            layers::AveragePooling2D({2, 2}), layers::Flatten(),
                            layers::Dense(4, "softmax")});
       },
       [] { return optimizers::SGD(0.05, 0.9, true); }, "categorical_crossentropy",
       Shape{12, 12, 2}, 4},
      {"lstm",
       [] {
         return Sequential({layers::Input({6, 3}), layers::LSTM(8), layers::Dense(2, "sigmoid")});
       },
       [] { return optimizers::RMSprop(1e-2); }, "binary_crossentropy", Shape{6, 3}, 2},
  };
}

// x, and targets as the loss wants them, on the current session's device.
std::pair<Tensor, Tensor> data_for(const Workload& w, std::int64_t n) {
  const Tensor x =
      from_vector(random_values(static_cast<std::size_t>(n * w.x_shape.numel()), 1), [&] {
        std::vector<std::int64_t> dims{n};
        for (auto d : w.x_shape.dims()) dims.push_back(d);
        return Shape(dims);
      }());
  if (w.loss == "sparse_categorical_crossentropy") {
    std::vector<std::int64_t> labels(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) labels[i] = i % w.classes;
    return {x, from_vector(labels)};
  }
  std::vector<float> t(static_cast<std::size_t>(n * w.classes), 0.0f);
  for (std::int64_t i = 0; i < n; ++i) t[i * w.classes + (i * 7) % w.classes] = 1.0f;
  return {x, from_vector(t, Shape{n, w.classes})};
}

void set_weights(Sequential& model, const std::vector<std::vector<float>>& values) {
  std::vector<Tensor> tensors;
  const std::vector<Tensor> current = model.get_weights();
  for (std::size_t i = 0; i < values.size(); ++i)
    tensors.push_back(from_vector(values[i], current[i].shape()));
  model.set_weights(tensors);
}

// `n` samples of `w`'s data in `data_session`, on the host: a dataset loaded once.
std::pair<Tensor, Tensor> host_data(Session& data_session, const Workload& w, std::int64_t n) {
  SessionScope scope(data_session);
  return data_for(w, n);
}

struct Trained {
  std::vector<double> losses;
  std::vector<std::vector<float>> weights;
  std::vector<float> predictions;
};

// Trains `w` for 3 epochs without shuffling from `initial` weights on `device`, from data on
// that device, or on the host when `data_on_host` (in a session of its own, as a dataset
// loaded once for many models would be).
Trained train_on(Device device, const Workload& w, const std::vector<std::vector<float>>& initial,
                 bool data_on_host = false) {
  Session data_session({.name = "data"});
  Session session({.device = device, .name = "train-" + device.str()});
  std::pair<Tensor, Tensor> data;
  if (data_on_host) {
    SessionScope scope(data_session);
    data = data_for(w, 96);
  }
  SessionScope scope(session);
  if (!data_on_host) data = data_for(w, 96);
  Sequential model = w.build();
  model.compile(w.optimizer(), w.loss, {"accuracy"});
  set_weights(model, initial);
  const auto& [x, y] = data;
  History h = model.fit(x, y, {.epochs = 3, .batch_size = 32, .verbose = 0, .shuffle = false});
  Trained out;
  out.losses = h.history["loss"];
  for (const Tensor& t : model.get_weights()) out.weights.push_back(t.to_vector<float>());
  out.predictions = model.predict(x).to_vector<float>();
  return out;
}

// The weights `w` is initialised with, in a CPU session of its own.
std::vector<std::vector<float>> initial_weights(const Workload& w) {
  Session session({.name = "initial"});
  SessionScope scope(session);
  std::vector<std::vector<float>> initial;
  for (const Tensor& t : w.build().get_weights()) initial.push_back(t.to_vector<float>());
  return initial;
}

TEST(CudaTraining, EveryWorkloadLearnsTheSameWeightsOnTheGpuAsOnTheCpu) {
  TABULA_REQUIRE_CUDA_DEVICE();
  for (const Workload& w : workloads()) {
    // Both start from the weights a CPU model was initialised with.
    const std::vector<std::vector<float>> initial = initial_weights(w);
    const Trained cpu = train_on(Device::cpu(), w, initial);
    const Trained gpu = train_on(Device::cuda(0), w, initial);
    ASSERT_EQ(gpu.losses.size(), cpu.losses.size()) << w.name;
    for (std::size_t e = 0; e < gpu.losses.size(); ++e)
      EXPECT_NEAR(gpu.losses[e], cpu.losses[e], 2e-3 * std::max(1.0, cpu.losses[e]))
          << w.name << " loss of epoch " << e + 1;
    ASSERT_EQ(gpu.weights.size(), cpu.weights.size()) << w.name;
    for (std::size_t p = 0; p < gpu.weights.size(); ++p)
      for (std::size_t i = 0; i < gpu.weights[p].size(); ++i)
        ASSERT_NEAR(gpu.weights[p][i], cpu.weights[p][i], 2e-3f)
            << w.name << " weight tensor " << p << " element " << i;
    for (std::size_t i = 0; i < gpu.predictions.size(); ++i)
      ASSERT_NEAR(gpu.predictions[i], cpu.predictions[i], 2e-3f) << w.name << " prediction " << i;
  }
}

TEST(CudaTraining, ADatasetOnTheHostTrainsAsOneOnTheGpuDoes) {
  TABULA_REQUIRE_CUDA_DEVICE();
  for (const Workload& w : workloads()) {
    const std::vector<std::vector<float>> initial = initial_weights(w);
    // Batches staged from the host and batches gathered on the device hold the same rows.
    const Trained from_device = train_on(Device::cuda(0), w, initial);
    const Trained from_host = train_on(Device::cuda(0), w, initial, true);
    EXPECT_EQ(from_host.losses, from_device.losses) << w.name;
    EXPECT_EQ(from_host.weights, from_device.weights) << w.name;
  }
}

TEST(CudaTraining, ShuffledBatchesFromTheHostAndFromTheGpuAreTheSameRows) {
  TABULA_REQUIRE_CUDA_DEVICE();
  // Two models fit with the same seed, one from host data and one from device data: the
  // shuffles are the same draws, so any row gathered wrongly shows in the weights.
  const Workload w = workloads()[0];
  std::vector<std::vector<float>> weights[2];
  for (int on_host = 0; on_host < 2; ++on_host) {
    Session data_session({.name = "data"});
    Session session({.device = Device::cuda(0), .name = "shuffled", .seed = 11});
    std::pair<Tensor, Tensor> data;
    {
      SessionScope scope(on_host ? data_session : session);
      data = data_for(w, 200);
    }
    SessionScope scope(session);
    Sequential model = w.build();
    model.compile(w.optimizer(), w.loss);
    model.fit(data.first, data.second, {.epochs = 2, .batch_size = 16, .verbose = 0});
    for (const Tensor& t : model.get_weights()) weights[on_host].push_back(t.to_vector<float>());
  }
  EXPECT_EQ(weights[1], weights[0]);
}

TEST(CudaMemory, StagingForHostBatchesBelongsToTheSessionAndGoesBackWithIt) {
  TABULA_REQUIRE_CUDA_DEVICE();
  Session data_session({.name = "data"});
  const Workload w = workloads()[0];
  const std::pair<Tensor, Tensor> data = host_data(data_session, w, 128);
  Session session({.device = Device::cuda(0), .name = "staged"});
  {
    SessionScope scope(session);
    Sequential model = w.build();
    model.compile(w.optimizer(), w.loss);
    model.fit(data.first, data.second, {.epochs = 1, .batch_size = 32, .verbose = 0});
    int listed = 0;
    for (const LiveObject& o : session.live_objects())
      listed += o.name.rfind("cuda_staging", 0) == 0 && o.category == Category::data;
    EXPECT_EQ(listed, 2) << "the two pinned staging buffers are not among the session's data";
    EXPECT_GT(session.memory_info(Device::cpu()).current, 0u);
  }
  session.clear();
  EXPECT_EQ(session.memory_info(Device::cpu()).reserved, 0u);
  EXPECT_EQ(session.memory_info(Device::cuda(0)).reserved, 0u);
  // The dataset's own session is untouched, and a new model trains from it.
  Session again({.device = Device::cuda(0), .name = "again"});
  SessionScope scope(again);
  Sequential model = w.build();
  model.compile(w.optimizer(), w.loss);
  History h = model.fit(data.first, data.second, {.epochs = 5, .batch_size = 32, .verbose = 0});
  EXPECT_LT(h.history["loss"].back(), h.history["loss"].front());
}

TEST(CudaTraining, ByteLabelsGatherOntoTheGpuAsInt64LabelsDo) {
  TABULA_REQUIRE_CUDA_DEVICE();
  // One-byte rows: from the device they take the gather kernel's byte path, from the host the
  // staging; shuffled, so that every row is gathered on its own.
  const Workload w = workloads()[0];
  const std::vector<std::vector<float>> initial = initial_weights(w);
  std::vector<double> losses[3];
  for (int variant = 0; variant < 3;
       ++variant) {  // int64 on the GPU, uint8 on the GPU, on the host
    Session data_session({.name = "data"});
    Session session({.device = Device::cuda(0), .name = "labels", .seed = 5});
    std::pair<Tensor, Tensor> data;
    {
      SessionScope scope(variant == 2 ? data_session : session);
      data = data_for(w, 96);
      if (variant > 0) data.second = data.second.astype(DType::uint8);
    }
    SessionScope scope(session);
    Sequential model = w.build();
    model.compile(w.optimizer(), w.loss, {"accuracy"});
    set_weights(model, initial);
    History h = model.fit(data.first, data.second, {.epochs = 3, .batch_size = 32, .verbose = 0});
    losses[variant] = h.history["loss"];
  }
  EXPECT_EQ(losses[1], losses[0]);
  EXPECT_EQ(losses[2], losses[0]);
}

// Counts the session's pinned staging buffers when the first epoch begins: after the fit has
// reserved its buffers, before any step has changed the model.
class StagingAtFirstEpoch final : public Callback {
 public:
  explicit StagingAtFirstEpoch(const Session& session) : session_(session) {}
  void on_epoch_begin(int epoch) override {
    if (epoch != 0) return;
    buffers = 0;
    for (const LiveObject& o : session_.live_objects())
      buffers += o.name.rfind("cuda_staging", 0) == 0;
  }
  int buffers = -1;  // -1: the first epoch never began

 private:
  const Session& session_;
};

TEST(CudaMemory, HostStagingIsAllocatedBeforeTheFirstStepChangesTheModel) {
  TABULA_REQUIRE_CUDA_DEVICE();
  // An allocation refused mid-step would leave batch normalisation's moving statistics
  // changed: both staging buffers exist before the first forward pass.
  Session data_session({.name = "data"});
  const Workload w = workloads()[1];
  const std::pair<Tensor, Tensor> data = host_data(data_session, w, 64);
  Session session({.device = Device::cuda(0), .name = "reserved-staging"});
  SessionScope scope(session);
  Sequential model = w.build();
  model.compile(w.optimizer(), w.loss);
  auto probe = std::make_shared<StagingAtFirstEpoch>(session);
  model.fit(data.first, data.second,
            {.epochs = 1, .batch_size = 32, .verbose = 0, .callbacks = {probe}});
  EXPECT_EQ(probe->buffers, 2);
}

TEST(CudaMemory, ALibraryWorkspaceThatDoesNotFitIsRefusedBeforeTheModelChanges) {
  TABULA_REQUIRE_CUDA_DEVICE();
  // cuBLAS's workspace (32 MiB on Hopper, 4 MiB before) is made with the plan's buffers: a
  // limit below it refuses the fit before batch normalisation, ahead of the first GEMM, has
  // moved its statistics.
  Session session({.device = Device::cuda(0), .memory_limit = 3 << 20, .name = "no-workspace"});
  SessionScope scope(session);
  Sequential model({layers::Input({8}), layers::BatchNormalization(), layers::Dense(4)});
  model.compile(optimizers::SGD(0.1), "mse");
  const Tensor x = from_vector(random_values(64 * 8, 3), Shape{64, 8});
  const Tensor y = from_vector(random_values(64 * 4, 4), Shape{64, 4});
  std::vector<std::vector<float>> before;
  for (const Tensor& t : model.get_weights()) before.push_back(t.to_vector<float>());
  try {
    model.fit(x, y, {.epochs = 1, .batch_size = 32, .verbose = 0});
    FAIL() << "a fit whose cuBLAS workspace exceeds the session's limit went through";
  } catch (const OutOfMemory& e) {
    EXPECT_NE(std::string(e.what()).find("cublas_workspace"), std::string::npos) << e.what();
  }
  std::vector<std::vector<float>> after;
  for (const Tensor& t : model.get_weights()) after.push_back(t.to_vector<float>());
  EXPECT_EQ(after, before);
}

TEST(CudaTraining, DropoutTrainsOnTheGpu) {
  TABULA_REQUIRE_CUDA_DEVICE();
  Session session({.device = Device::cuda(0), .name = "dropout"});
  SessionScope scope(session);
  Sequential model({layers::Input({20}), layers::Dense(64, "relu"), layers::Dropout(0.5),
                    layers::Dense(5, "softmax")});
  model.compile(optimizers::Adam(1e-2), "sparse_categorical_crossentropy", {"accuracy"});
  auto [x, y] = data_for(workloads()[0], 256);
  History h = model.fit(x, y, {.epochs = 20, .batch_size = 32, .verbose = 0});
  EXPECT_LT(h.history["loss"].back(), h.history["loss"].front());
}

// The driver's free bytes with tabula's contexts and modules loaded: a first session that
// trains every workload and clears loads the CUDA context, cuBLAS, cuDNN and the kernels'
// modules, which stay for the process (the "context excepted" of the release targets). CUDA
// loads kernels lazily, so the warm-up runs every workload at the batch sizes the tests use,
// with the accuracy metric, through fit and predict: planned for 64 (its last batch is 32) and
// planned for 32, since cuDNN may choose other algorithms for a plan of 32.
std::size_t warm_driver_free() {
  {
    Session warm({.device = Device::cuda(0), .name = "warm-up"});
    SessionScope scope(warm);
    for (const Workload& w : workloads()) {
      Sequential model = w.build();
      model.compile(w.optimizer(), w.loss, {"accuracy"});
      auto [x, y] = data_for(w, 96);
      model.fit(x, y, {.epochs = 1, .batch_size = 64, .verbose = 0});
      model.fit(x, y, {.epochs = 1, .batch_size = 32, .verbose = 0});
      (void)model.predict(x);
    }
  }
  return device_memory(Device::cuda(0)).free;
}

std::int64_t mib_difference(std::size_t a, std::size_t b) {
  return (static_cast<std::int64_t>(a) - static_cast<std::int64_t>(b)) /
         static_cast<std::int64_t>(kMiB);
}

TEST(CudaMemory, EveryGpuBufferIsAlignedTo256BytesAsCudaMallocGives) {
  TABULA_REQUIRE_CUDA_DEVICE();
  Session session({.device = Device::cuda(0), .name = "aligned"});
  SessionScope scope(session);
  // Odd sizes, and a hole left by a freed buffer that a later, larger one is carved from:
  // cuBLAS refuses a workspace that is not 256-byte aligned.
  std::vector<Tensor> held;
  for (std::int64_t n : {3, 100, 17, 1000, 5}) held.push_back(empty({n}));
  held[1] = Tensor();
  held.push_back(empty({8 * 1024 * 1024}));
  held.push_back(empty({33}));
  for (const Tensor& t : held) {
    if (!t.defined()) continue;
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(t.raw_data()) % 256, 0u)
        << t.numel() << " floats at " << t.raw_data();
  }
}

TEST(CudaMemory, TheDriverSeesExactlyWhatTheSessionReserves) {
  TABULA_REQUIRE_CUDA_DEVICE();
  const std::size_t before = warm_driver_free();
  Session session({.device = Device::cuda(0), .name = "reserved"});
  SessionScope scope(session);
  std::vector<Tensor> held;
  for (int i = 0; i < 64; ++i) held.push_back(empty({4 * 1024 * 1024}));  // 64 x 16 MiB
  const MemoryInfo info = session.memory_info(Device::cuda(0));
  const std::size_t used = before - device_memory(Device::cuda(0)).free;
  EXPECT_GE(info.reserved, 1024 * kMiB);
  EXPECT_LE(std::llabs(mib_difference(used, info.reserved)), 4)
      << "driver used " << used << " bytes, tabula reserved " << info.reserved;
}

TEST(CudaMemory, ClearingGivesEveryByteBackToTheDriverEvenWithStaleHandlesHeld) {
  TABULA_REQUIRE_CUDA_DEVICE();
  const std::size_t before = warm_driver_free();
  std::vector<Tensor> stale;
  Sequential stale_model = [&] {
    Session session({.device = Device::cuda(0), .name = "eight-gib"});
    SessionScope scope(session);
    for (int i = 0; i < 512; ++i) stale.push_back(empty({4 * 1024 * 1024}));  // 512 x 16 MiB
    const Workload w = workloads()[1];
    Sequential model = w.build();
    model.compile(w.optimizer(), w.loss);
    auto [x, y] = data_for(w, 256);
    model.fit(x, y, {.epochs = 1, .batch_size = 64, .verbose = 0});
    EXPECT_GE(before - device_memory(Device::cuda(0)).free, 8192 * kMiB);
    clear_session();
    return model;
  }();
  const std::size_t after = device_memory(Device::cuda(0)).free;
  EXPECT_LE(std::llabs(mib_difference(before, after)), 4)
      << "free before " << before << ", after clearing " << after;
  EXPECT_THROW((void)stale.front().to_vector<float>(), SessionCleared);
  EXPECT_THROW(stale_model.summary_string(), SessionCleared);
}

TEST(CudaMemory, HundredBuildFitClearCyclesKeepDriverMemoryFlat) {
  TABULA_REQUIRE_CUDA_DEVICE();
  const std::size_t before = warm_driver_free();
  for (int cycle = 0; cycle < 100; ++cycle) {
    Session session({.device = Device::cuda(0), .name = "cycle"});
    SessionScope scope(session);
    const Workload w = workloads()[cycle % 3];
    Sequential model = w.build();
    model.compile(w.optimizer(), w.loss, {"accuracy"});
    auto [x, y] = data_for(w, 64);
    model.fit(x, y, {.epochs = 1, .batch_size = 32, .verbose = 0});
  }
  const std::size_t after = device_memory(Device::cuda(0)).free;
  EXPECT_LE(std::llabs(mib_difference(before, after)), 4)
      << "free before " << before << ", after 100 cycles " << after;
}

TEST(CudaMemory, AnOutOfMemorySaysWhoHoldsWhatAndOtherSessionsKeepTraining) {
  TABULA_REQUIRE_CUDA_DEVICE();
  Session other({.device = Device::cuda(0), .name = "other"});
  Session limited({.device = Device::cuda(0), .memory_limit = 8 * kMiB, .name = "limited"});
  {
    SessionScope scope(limited);
    try {
      Sequential model({layers::Input({1024}), layers::Dense(4096, "relu"), layers::Dense(10)});
      model.compile(optimizers::Adam(), "mse");
      FAIL() << "a 16 MiB model fit in an 8 MiB session";
    } catch (const OutOfMemory& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("cuda:0"), std::string::npos) << what;
      EXPECT_NE(what.find("weights"), std::string::npos) << what;
    }
  }
  SessionScope scope(other);
  const Workload w = workloads()[0];
  Sequential model = w.build();
  model.compile(w.optimizer(), w.loss);
  auto [x, y] = data_for(w, 128);
  History h = model.fit(x, y, {.epochs = 5, .batch_size = 32, .verbose = 0});
  EXPECT_LT(h.history["loss"].back(), h.history["loss"].front());
}

}  // namespace
}  // namespace tabula
