#include "tabula/nn/layers/lstm.hpp"

#include <algorithm>
#include <cstddef>
#include <string_view>
#include <vector>

#include "backend/detail/device_copy.hpp"
#include "backend/detail/kernels.hpp"
#include "backend/detail/recurrent_kernels.hpp"
#include "memory/detail/align.hpp"
#include "nn/detail/gemm_packing.hpp"
#include "nn/detail/initializers.hpp"
#include "nn/detail/shared_workspace.hpp"
#include "nn/detail/tensor_views.hpp"
#include "session/detail/session_scratch.hpp"
#include "tabula/core/errors.hpp"

namespace tabula::layers {
namespace {

using detail::f32;
using detail::index_t;

Activation lstm_activation(std::string_view option, const std::string& value) {
  if (value == "tanh") return Activation::tanh;
  if (value == "sigmoid") return Activation::sigmoid;
  TABULA_THROW(InvalidArgument,
               "LSTM option " << option << ": expected 'tanh' or 'sigmoid', got '" << value << "'");
}

// Buffers, per batch of up to reserved_batch() samples, all laid out (batch, timesteps, ...) so
// that timestep t of every sample is one strided matrix a gemm can address in place. Those of
// a training reservation:
//   gates_  (B, T, 4U)  pre-activations, then the gate activations backward needs; backward
//                       turns step t's into dL/d(pre-activations) once it has used them, and
//                       the two whole-sequence gemms (d kernel, dx) read them from there
//   cells_  (B, T, U)   the cell states c_t
//   hidden_ (B, T, U)   h_0 .. h_{T-2} without return_sequences, and zeros in the last slot
//                       (h_{T-1} goes straight to y); with it, y holds every h_t. Either way
//                       the h_t of all samples are one (B * T, U) matrix, which the recurrent
//                       kernel's gradient reads in one gemm (see backward)
//   dh_, dc_ (B, U)     the gradients flowing back through the recurrence, and
//   recurrence_         what the device's recurrence asks for (lstm_workspace_bytes), if any:
//                       the backward pass's workspace, reserved for training only, and carved
//                       from an execution plan's shared workspace when one is lent
// An inference pass keeps no state for backward: the latest c_t only (cells_ is (B, U)), the
// latest h_t in y itself, and where the device projects each step's input as it goes (the
// CPU), the latest step's gates only (gates_ is (B, 4U)); else every step's, as above.
class LSTMLayer final : public LayerImpl {
 public:
  LSTMLayer(std::int64_t units, const LSTMOptions& options)
      : LayerImpl("lstm", options.name),
        units_(units),
        return_sequences_(options.return_sequences),
        activation_(lstm_activation("activation", options.activation)),
        recurrent_activation_(
            lstm_activation("recurrent_activation", options.recurrent_activation)),
        use_bias_(options.use_bias),
        unit_forget_bias_(options.unit_forget_bias) {}

  std::string type_name() const override { return "LSTM"; }

  Shape do_build(const Shape& input) override {
    TABULA_EXPECT(input.rank() == 2 && input[0] > 0 && input[1] > 0, InvalidArgument,
                  "input shape of LSTM layer '" << name() << "'",
                  "(timesteps, features) with positive extents", input.str());
    timesteps_ = input[0];
    features_ = input[1];
    kernel_ = &add_weight("kernel", {features_, 4 * units_});
    recurrent_kernel_ = &add_weight("recurrent_kernel", {units_, 4 * units_});
    if (use_bias_) bias_ = &add_weight("bias", {4 * units_});
    return return_sequences_ ? Shape{timesteps_, units_} : Shape{units_};
  }

  void initialize(RandomGenerator& rng) override {
    detail::glorot_uniform(kernel_->value, features_, 4 * units_, rng);
    detail::orthogonal(recurrent_kernel_->value, rng);
    if (bias_) {
      std::vector<float> bias(static_cast<std::size_t>(4 * units_), 0.0f);
      if (unit_forget_bias_)
        std::fill(bias.begin() + units_, bias.begin() + 2 * units_, 1.0f);  // the f quarter
      detail::copy_from_host(bias_->value, bias);
    }
  }

  // Inference keeps the forward pass's buffers only: no gradients through the recurrence, no
  // workspace for it, no packing for the backward GEMMs.
  void do_reserve(std::int64_t batch, bool training) override {
    const auto buffer = [&](Shape shape, Category category, const char* what) {
      return empty(shape, {.category = category, .name = name() + "/" + what});
    };
    gates_ = buffer(training || !projects_per_step() ? Shape{batch, timesteps_, 4 * units_}
                                                     : Shape{batch, 4 * units_},
                    Category::activations, "gates");
    cells_ = buffer(training ? Shape{batch, timesteps_, units_} : Shape{batch, units_},
                    Category::activations, "cells");
    if (training && !return_sequences_) {
      hidden_ = buffer({batch, timesteps_, units_}, Category::activations, "hidden");
      detail::zero_bytes(hidden_.raw_data(), hidden_.device(), hidden_.nbytes());  // last slots
    }
    if (training) {
      const BackwardLayout layout = backward_layout(batch);
      detail::SharedWorkspace* shared = reserved_workspace();
      lent_workspace_ = shared != nullptr && shared->need(layout.bytes);
      if (!lent_workspace_) {
        dh_ = buffer({batch, units_}, Category::workspace, "dh");
        dc_ = buffer({batch, units_}, Category::workspace, "dc");
        if (layout.recurrence_bytes > 0)
          recurrence_ = buffer({static_cast<std::int64_t>(layout.recurrence_bytes / sizeof(float))},
                               Category::workspace, "recurrence");
      }
    }
    const index_t T = timesteps_, U = units_, G = 4 * units_;
    // The input projection, of every step at once and of one, and the recurrence's steps; for
    // training also the backward GEMMs.
    const detail::GemmExtents gemms[] = {
        {batch * T, G, features_}, {batch, G, features_},    {batch, G, U},
        {U, G, batch * T - 1},     {U, G, batch - 1},        {batch, U, G},
        {features_, G, batch * T}, {batch * T, features_, G}};
    packing_ = detail::reserve_gemm_packing(name(), kernel_->value,
                                            std::span(gemms, training ? std::size(gemms) : 3));
  }

  void do_release_batch_buffers() noexcept override {
    gates_ = cells_ = hidden_ = dh_ = dc_ = recurrence_ = packing_ = Tensor();
    lent_workspace_ = kept_every_state_ = false;
  }

  void forward(const Tensor& x, const Tensor& y, bool training) override {
    reserve_if_needed(detail::rows_of(x), training);
    const index_t rows = checked_rows(x);
    auto& k = detail::kernels_for(x.device());
    detail::SessionScratch scratch(kernel_->value, packing_);  // the GEMMs' packing buffers
    auto& rk = detail::recurrent_kernels_for(x.device());
    const index_t T = timesteps_, G = 4 * units_;
    detail::LstmSequence sequence = sequence_of(rows, y, training);
    if (training || !projects_per_step()) {
      // Every timestep's input projection in one gemm: (rows * T, F) · (F, 4U); the
      // recurrence adds h_{t-1} · recurrent_kernel step by step.
      float* gates = f32(gates_);
      k.gemm(scratch, false, false, rows * T, G, features_, 1.0f, f32(x), features_,
             f32(kernel_->value), G, 0.0f, gates, G);
      if (bias_) k.add_bias(gates, f32(bias_->value), rows * T, G);
    } else {  // each step's, one step's gates at a time
      sequence.step.gates_ld = G;
      sequence.gates_step = 0;
      sequence.input = f32(x);
      sequence.features = features_;
      sequence.kernel = f32(kernel_->value);
      sequence.bias = bias_ ? f32(bias_->value) : nullptr;
    }
    rk.lstm_forward_sequence(k, scratch, sequence);
    kept_every_state_ = sequence.keeps_every_state();
  }

  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor* dx) override {
    TABULA_EXPECT(reserved_for_training(), InvalidArgument,
                  "backward of LSTM layer '" << name() << "'",
                  "a forward pass after reserve(batch, training = true)",
                  "batch buffers reserved for inference (no gradients through the recurrence)");
    TABULA_EXPECT(kept_every_state_, InvalidArgument, "backward of LSTM layer '" << name() << "'",
                  "a forward pass with training = true before it",
                  "an inference forward pass (which keeps the latest cell and hidden state only)");
    const index_t rows = checked_rows(x);
    auto& k = detail::kernels_for(x.device());
    detail::SessionScratch scratch(kernel_->value, packing_);  // the GEMMs' packing buffers
    auto& rk = detail::recurrent_kernels_for(x.device());
    const index_t T = timesteps_, U = units_, G = 4 * units_;
    float* gates = f32(gates_);
    float* d_recurrent = f32(recurrent_kernel_->gradient);

    detail::LstmSequence sequence = sequence_of(rows, y, true);
    sequence.dy = f32(dy);
    sequence.dy_every_step = return_sequences_;
    sequence.step.dy_ld = return_sequences_ ? T * U : U;
    if (lent_workspace_) {
      auto* base = static_cast<std::byte*>(reserved_workspace()->data());
      const BackwardLayout layout = backward_layout(reserved_batch());
      sequence.dh = reinterpret_cast<float*>(base);
      sequence.dc = reinterpret_cast<float*>(base + layout.dc_at);
      sequence.workspace = layout.recurrence_bytes > 0
                               ? reinterpret_cast<float*>(base + layout.recurrence_at)
                               : nullptr;
    } else {
      sequence.dh = f32(dh_);
      sequence.dc = f32(dc_);
      sequence.workspace = recurrence_.defined() ? f32(recurrence_) : nullptr;
    }
    detail::zero_bytes(sequence.dc, x.device(), static_cast<std::size_t>(rows * U) * sizeof(float));
    rk.lstm_backward_sequence(k, scratch, sequence);

    // d(recurrent_kernel) = sum over samples b and steps t >= 1 of h_{b,t-1}^T dg_{b,t}. With
    // the h_t of all samples one (B * T, U) matrix and the dg_t one (B * T, 4U) matrix, these
    // are the pairs (h row i - 1, dg row i) for i = b * T + t: one gemm over i = 1 .. B*T - 1,
    // instead of one per step. The pairs at t = 0 read h_{b-1,T-1}: a zero slot in hidden_,
    // and in y (return_sequences) a real state, whose term the second gemm takes back out.
    // With one step there is no pair at all: zero exactly, not by a cancelling second gemm.
    if (T == 1) {
      detail::zero_bytes(d_recurrent, recurrent_kernel_->gradient.device(),
                         recurrent_kernel_->gradient.nbytes());
    } else {
      const float* h_all = return_sequences_ ? f32(y) : f32(hidden_);
      k.gemm(scratch, true, false, U, G, rows * T - 1, 1.0f, h_all, U, gates + G, G, 0.0f,
             d_recurrent, G);
      if (return_sequences_ && rows > 1)
        k.gemm(scratch, true, false, U, G, rows - 1, -1.0f, f32(y) + (T - 1) * U, T * U,
               gates + T * G, T * G, 1.0f, d_recurrent, G);
    }

    // Whole-sequence gemms over rows * T rows of dL/d(gate pre-activations).
    k.gemm(scratch, true, false, features_, G, rows * T, 1.0f, f32(x), features_, gates, G, 0.0f,
           f32(kernel_->gradient), G);
    if (bias_) k.sum_rows(scratch, gates, f32(bias_->gradient), rows * T, G);
    if (dx)
      k.gemm(scratch, false, true, rows * T, features_, G, 1.0f, gates, G, f32(kernel_->value), G,
             0.0f, f32(*dx), features_);
  }

 private:
  // The sequence of a batch of `rows`. Training keeps every state: c_t in cells_, h_t in y
  // with return_sequences (every step), else in hidden_, except h_{T-1}, which is y. Inference
  // keeps the latest c_t only, and h_t in y: at step t with return_sequences, else all in one.
  detail::LstmSequence sequence_of(index_t rows, const Tensor& y, bool training) const {
    const index_t T = timesteps_, U = units_;
    detail::LstmSequence s{.step = {.batch = rows,
                                    .units = U,
                                    .gates_ld = T * 4 * U,
                                    .cell_ld = training ? T * U : U,
                                    .activation = activation_,
                                    .recurrent_activation = recurrent_activation_},
                           .timesteps = T,
                           .gates = f32(gates_),
                           .gates_step = 4 * U,
                           .cells = f32(cells_),
                           .cell_step = training ? U : 0,
                           .recurrent = f32(recurrent_kernel_->value)};
    if (return_sequences_) {
      s.hidden = f32(y);
      s.hidden_step = U;
      s.hidden_ld = T * U;
      s.last_hidden = f32(y) + (T - 1) * U;
      s.last_ld = T * U;
    } else {
      s.hidden = training ? f32(hidden_) : f32(y);
      s.hidden_step = training ? U : 0;
      s.hidden_ld = training ? T * U : U;
      s.last_hidden = f32(y);
      s.last_ld = U;
    }
    return s;
  }

  // Where dh, dc and the recurrence's workspace lie in one workspace for batches of `batch`
  // (each on a 256-byte boundary, as a GPU's own allocations are).
  struct BackwardLayout {
    std::size_t dc_at, recurrence_at, recurrence_bytes, bytes;
  };
  BackwardLayout backward_layout(index_t batch) const {
    constexpr std::size_t kAlignment = 256;
    const std::size_t state =
        detail::round_up(static_cast<std::size_t>(batch * units_) * sizeof(float), kAlignment);
    const std::size_t recurrence =
        detail::recurrent_kernels_for(kernel_->value.device()).lstm_workspace_bytes(units_);
    return {.dc_at = state,
            .recurrence_at = 2 * state,
            .recurrence_bytes = recurrence,
            .bytes = 2 * state + recurrence};
  }

  // Whether an inference pass here projects each step's input as it goes (one step's gates
  // kept), rather than every step's in one gemm.
  bool projects_per_step() const {
    return detail::recurrent_kernels_for(kernel_->value.device())
        .lstm_projects_input_per_step(units_);
  }

  index_t checked_rows(const Tensor& x) const {
    const index_t rows = detail::rows_of(x);
    TABULA_EXPECT(gates_.defined() && rows <= reserved_batch(), InvalidArgument,
                  "batch of LSTM layer '" << name() << "'",
                  "at most the " << reserved_batch() << " samples reserved", rows);
    return rows;
  }

  std::int64_t units_;
  bool return_sequences_;
  Activation activation_;
  Activation recurrent_activation_;
  bool use_bias_;
  bool unit_forget_bias_;
  index_t timesteps_ = 0;
  index_t features_ = 0;
  Parameter* kernel_ = nullptr;
  Parameter* recurrent_kernel_ = nullptr;
  Parameter* bias_ = nullptr;
  Tensor gates_, cells_, hidden_, dh_, dc_, recurrence_;
  bool lent_workspace_ = false;  // dh, dc and recurrence lie in reserved_workspace()
  bool kept_every_state_ = false;  // the last forward pass was a training one (backward needs)
  Tensor packing_;  // the GEMMs' packing buffer, per batch size (reserve)
};

}  // namespace

Layer LSTM(std::int64_t units, const LSTMOptions& options) {
  TABULA_EXPECT(units > 0, InvalidArgument, "LSTM units", "> 0", units);
  return Layer(std::make_shared<LSTMLayer>(units, options));
}

}  // namespace tabula::layers
