#pragma once
// Runs a stack of layers over batches in buffers allocated once per batch capacity.

#include <cstdint>
#include <memory>
#include <vector>

#include "nn/detail/shared_workspace.hpp"
#include "tabula/core/tensor.hpp"
#include "tabula/nn/layer.hpp"

namespace tabula::detail {

class SessionCore;

/// The per-batch memory of a model, reserved once (ggml's reserve-then-run): an input
/// staging buffer, for training one output buffer per computing layer and two ping-pong
/// gradient buffers for the backward pass, for inference two ping-pong output buffers, all
/// sized for `capacity` samples; smaller batches use leading views of them. Each layer
/// reserves its own batch buffers for the same pass, unless an enclosing plan's already serve
/// (an evaluate inside a fit's callback), and the layers share one workspace, which the plan
/// lends them. A training step therefore allocates nothing. Not thread-safe.
class ExecutionPlan {
 public:
  /// @param layers built layers; @param input per-sample input shape.
  ExecutionPlan(const std::vector<Layer>& layers, const Shape& input, std::int64_t capacity,
                bool training);
  ~ExecutionPlan();
  ExecutionPlan(const ExecutionPlan&) = delete;
  ExecutionPlan& operator=(const ExecutionPlan&) = delete;

  std::int64_t capacity() const noexcept { return capacity_; }
  /// View of the input staging buffer for `rows` samples (fill it, then run forward).
  Tensor input(std::int64_t rows) const;
  /// View of the target staging buffer with per-sample `shape` and `dtype` (allocated on
  /// first use for that shape/dtype).
  Tensor targets(std::int64_t rows, const Shape& shape, DType dtype);
  /// The buffer a batch's scores are computed in (score_batch's `reserved`), for a loss and
  /// `metrics` metrics (allocated on first use for that count).
  Tensor scores(std::size_t metrics);

  /// Runs every layer on input(rows); returns the output view.
  Tensor forward(std::int64_t rows, bool training);
  /// Buffer the loss writes dL/d(output) into, for `rows` samples.
  Tensor output_gradient(std::int64_t rows) const;
  /// Back-propagates output_gradient(rows) through every layer (parameter gradients set).
  void backward(std::int64_t rows);

 private:
  // Allocates the buffers above and has each layer reserve its own.
  void reserve(bool training);
  // Frees the plan's own buffers, then gives each layer it reserved back what it had before.
  void release() noexcept;

  std::vector<Layer> layers_;
  Shape input_shape_;
  std::int64_t capacity_;
  Tensor input_;
  Tensor targets_;
  Shape targets_shape_;
  DType targets_dtype_ = DType::float32;
  Tensor scores_;
  // What this plan did to a layer's own batch buffers: reserved them, and for what they had
  // been reserved before (an enclosing plan's, given back when this plan ends).
  struct LayerReservation {
    bool made = false;
    std::int64_t previous_batch = 0;
    bool previous_training = false;
    SharedWorkspace* previous_workspace = nullptr;
  };

  std::vector<Tensor> outputs_;                 // per layer: its output (views share the input's)
  std::vector<LayerReservation> reservations_;  // per layer
  Tensor deltas_[2];
  SharedWorkspace workspace_{"batch/workspace"};  // lent to the layers it reserves
  // The session the plan allocates in: when its Session object is gone (a callback destroyed
  // it), release() gives no layer its old reservation back, which would allocate in it.
  std::shared_ptr<SessionCore> session_;
};

}  // namespace tabula::detail
