#include "nn/detail/execution_plan.hpp"

#include <algorithm>

#include "nn/detail/batch_score.hpp"
#include "nn/detail/tensor_views.hpp"
#include "session/detail/session_core.hpp"

namespace tabula::detail {

ExecutionPlan::ExecutionPlan(const std::vector<Layer>& layers, const Shape& input,
                             std::int64_t capacity, bool training)
    : layers_(layers),
      input_shape_(input),
      capacity_(capacity),
      session_(current_session().core().shared_from_this()) {
  // A buffer refused half-way leaves no layer holding batch buffers: no destructor runs for
  // an object whose constructor threw.
  try {
    reserve(training);
  } catch (...) {
    release();
    throw;
  }
}

void ExecutionPlan::reserve(bool training) {
  input_ = empty(batched(capacity_, input_shape_),
                 {.category = Category::data, .name = "batch/x"});
  // Training keeps every layer's output for the backward pass. Inference needs a layer's
  // output only until the next computing layer has read it: two buffers serve, the computing
  // layers writing into them in turn (a view writes nothing; it passes its input's on).
  std::int64_t widest = input_shape_.numel();
  std::int64_t widest_of_turn[2] = {0, 0};
  int turn = 0;
  for (const Layer& layer : layers_) {
    widest = std::max(widest, layer->output_shape().numel());
    if (!layer->is_view()) {
      widest_of_turn[turn] = std::max(widest_of_turn[turn], layer->output_shape().numel());
      turn = 1 - turn;
    }
  }
  Tensor turns[2];
  if (!training)
    for (int t = 0; t < 2; ++t)
      if (widest_of_turn[t] > 0)
        turns[t] = empty({capacity_ * widest_of_turn[t]},
                         {.category = Category::activations,
                          .name = t == 0 ? "batch/outputs_a" : "batch/outputs_b"});
  Tensor previous = input_;
  turn = 0;
  for (const Layer& layer : layers_) {
    LayerImpl& l = layer.impl();
    reservations_.push_back({});
    if (l.is_view()) {
      outputs_.push_back(previous);  // same storage, reinterpreted per call
    } else {
      outputs_.push_back(
          training ? empty(batched(capacity_, l.output_shape()),
                           {.category = Category::activations, .name = l.name() + "/output"})
                   : turns[turn]);
      turn = 1 - turn;
      // A layer already reserved for this (an outer fit's, whose callback evaluates) keeps
      // its buffers, and is left to the plan that reserved it. One reserved for less gets
      // its old reservation back when this plan ends.
      const bool served = l.reserved_for(capacity_, training);
      if (!served) {
        reservations_.back() = {.made = true,
                                .previous_batch = l.reserved_batch(),
                                .previous_training = l.reserved_for_training(),
                                .previous_workspace = l.reserved_workspace()};
        l.reserve(capacity_, training, &workspace_);
      }
    }
    previous = outputs_.back();
  }
  if (training) {
    for (auto& delta : deltas_)
      delta = empty({capacity_ * widest}, {.category = Category::activations, .name = "delta"});
  }
  workspace_.allocate();  // as large as the largest need its layers stated
}

ExecutionPlan::~ExecutionPlan() { release(); }

void ExecutionPlan::release() noexcept {
  input_ = targets_ = scores_ = deltas_[0] = deltas_[1] = Tensor();
  outputs_.clear();
  workspace_.release();  // the layers it was lent to are released or given their old one below
  for (std::size_t i = 0; i < reservations_.size(); ++i) {
    const LayerReservation& r = reservations_[i];
    if (!r.made) continue;
    LayerImpl& l = layers_[i].impl();
    if (r.previous_batch == 0 || session_->owner() == nullptr) {
      l.release_batch_buffers();
      continue;
    }
    try {
      l.reserve(r.previous_batch, r.previous_training, r.previous_workspace);
    } catch (...) {
      // Refused (out of memory): the layer is left unreserved, and the enclosing plan's next
      // pass reserves what it needs itself.
      l.release_batch_buffers();
    }
  }
}

Tensor ExecutionPlan::input(std::int64_t rows) const {
  return first_rows(input_, rows, input_shape_);
}

Tensor ExecutionPlan::targets(std::int64_t rows, const Shape& shape, DType dtype) {
  if (!targets_.defined() || !(targets_shape_ == shape) || targets_dtype_ != dtype) {
    targets_ = Tensor();
    targets_ = empty(batched(capacity_, shape),
                     {.dtype = dtype, .category = Category::data, .name = "batch/y"});
    targets_shape_ = shape;
    targets_dtype_ = dtype;
  }
  return first_rows(targets_, rows, shape);
}

Tensor ExecutionPlan::scores(std::size_t metrics) {
  const std::int64_t doubles = score_batch_doubles(capacity_, metrics);
  if (!scores_.defined() || scores_.numel() < doubles) {
    scores_ = Tensor();
    scores_ =
        empty({doubles},
              {.dtype = DType::float64, .category = Category::workspace, .name = "batch/scores"});
  }
  return scores_;
}

Tensor ExecutionPlan::forward(std::int64_t rows, bool training) {
  Tensor x = input(rows);
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    LayerImpl& l = layers_[i].impl();
    Tensor y = first_rows(outputs_[i], rows, l.output_shape());
    if (!l.is_view()) l.forward(x, y, training);
    x = std::move(y);
  }
  return x;
}

Tensor ExecutionPlan::output_gradient(std::int64_t rows) const {
  TABULA_EXPECT(deltas_[0].defined(), InvalidArgument, "gradient buffers of an execution plan",
                "a plan made for training", "one made for inference");
  const Shape& out = layers_.empty() ? input_shape_ : layers_.back()->output_shape();
  return first_rows(deltas_[0], rows, out);
}

void ExecutionPlan::backward(std::int64_t rows) {
  TABULA_EXPECT(deltas_[0].defined(), InvalidArgument, "backward pass of an execution plan",
                "a plan made for training", "one made for inference");
  // The first layer that computes needs no input gradient: nothing upstream learns.
  std::size_t first_compute = layers_.size();
  for (std::size_t i = 0; i < layers_.size(); ++i)
    if (!layers_[i]->is_view()) {
      first_compute = i;
      break;
    }
  int current = 0;  // deltas_[current] holds dL/d(output of layer i)
  for (std::size_t i = layers_.size(); i-- > 0;) {
    LayerImpl& l = layers_[i].impl();
    if (l.is_view()) continue;  // same bytes, new shape: the next view below reinterprets
    const Tensor x = i == 0 ? input(rows) : first_rows(outputs_[i - 1], rows, l.input_shape());
    const Tensor y = first_rows(outputs_[i], rows, l.output_shape());
    const Tensor dy = first_rows(deltas_[current], rows, l.output_shape());
    if (i > first_compute) {
      const Tensor dx = first_rows(deltas_[1 - current], rows, l.input_shape());
      l.backward(x, y, dy, &dx);
      current = 1 - current;
    } else {
      l.backward(x, y, dy, nullptr);
    }
  }
}

}  // namespace tabula::detail
