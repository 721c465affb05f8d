#pragma once
// The shared state behind a Sequential handle.

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nn/detail/loss.hpp"
#include "nn/detail/metric.hpp"
#include "session/detail/session_core.hpp"
#include "session/detail/tracked.hpp"
#include "tabula/nn/sequential.hpp"

namespace tabula::detail {

/// A model: its layers, compile settings, and registration in its session's registry (kind
/// "model"), which marks it stale when the session is cleared.
class SequentialImpl final : public Tracked, public std::enable_shared_from_this<SequentialImpl> {
 public:
  /// Made through `create`, which lists the model in its session only once it is whole.
  SequentialImpl(std::vector<Layer> layers, std::string name);
  /// The model, listed in the current session's registry. Listing it from the constructor
  /// would let another thread's `memory_info` describe it (and read its weak self-reference)
  /// while make_shared was still writing that reference: a race TSan reported.
  static std::shared_ptr<SequentialImpl> create(std::vector<Layer> layers, std::string name);
  ~SequentialImpl() override;

  LiveObject describe() const override;
  void invalidate() noexcept override { stale_.store(true, std::memory_order_release); }
  /// @throws SessionCleared naming the model when its session was cleared.
  void ensure_live() const;
  SessionCore& core() const noexcept { return *core_; }

  std::string name_;
  std::vector<Layer> layers_;
  std::optional<Shape> input_shape_;
  bool built_ = false;
  Optimizer optimizer_;
  std::optional<Loss> loss_;
  std::vector<Metric> metrics_;
  std::vector<std::string> metric_names_;
  bool compiled_ = false;
  bool fused_output_ = false;

  std::vector<Parameter*> parameters() const;
  /// Recounts the bytes `describe()` reports; called by whatever changes the layers.
  void refresh_weight_bytes();

 private:
  std::shared_ptr<SessionCore> core_;
  std::atomic<bool> stale_{false};
  // What describe() reports: another thread lists live objects while this one builds the
  // model, so the registry must not walk the layers.
  std::atomic<std::size_t> weight_bytes_{0};
};

}  // namespace tabula::detail
