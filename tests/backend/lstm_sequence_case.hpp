#pragma once
// An LSTM sequence with random operands, its h_t laid out as the LSTM layer lays them out, for
// the tests that run one recurrence two ways (the default step-by-step path, the one-launch
// block programs on the host or on a GPU) and compare.

#include <cstddef>
#include <string>
#include <vector>

#include "backend/detail/recurrent_kernels.hpp"
#include "backend/random_floats.hpp"

namespace tabula::detail::testing {

struct LstmSequenceCase {
  index_t batch, timesteps, units;
  bool every_step;  ///< return_sequences: every h_t in one (B, T, U) output, a dy for each
  Activation activation = Activation::tanh;
  Activation recurrent_activation = Activation::sigmoid;
  /// Inference's layout: the latest c_t only, and without every_step the latest h_t only, in
  /// `last` (the layer's output y); else training's, every state kept for backward.
  bool latest_only = false;

  index_t gate_count() const { return batch * timesteps * 4 * units; }
  index_t sequence_count() const { return batch * timesteps * units; }
  index_t cell_count() const { return latest_only ? batch * units : sequence_count(); }
  index_t hidden_count() const { return latest_only && !every_step ? 0 : sequence_count(); }
  index_t last_count() const { return every_step ? 0 : batch * units; }
  index_t dy_count() const { return every_step ? sequence_count() : batch * units; }

  /// The same sequence in the other layout.
  LstmSequenceCase keeping_latest_only(bool latest) const {
    LstmSequenceCase c = *this;
    c.latest_only = latest;
    return c;
  }

  std::string str() const {
    return "batch " + std::to_string(batch) + ", " + std::to_string(timesteps) + " steps, " +
           std::to_string(units) + " units" + (every_step ? ", return_sequences" : "") + ", " +
           std::string(name_of(activation)) + "/" + std::string(name_of(recurrent_activation)) +
           (latest_only ? ", latest state only" : "");
  }

  /// x_t · kernel + bias for every step, the recurrent kernel (scaled down, as orthogonal
  /// weights keep a long sequence's states in range) and dL/dh from the output.
  std::vector<float> gates() const {
    return random_floats(static_cast<std::size_t>(gate_count()), 31);
  }
  std::vector<float> recurrent() const {
    auto r = random_floats(static_cast<std::size_t>(units * 4 * units), 32);
    for (float& w : r) w *= 0.5f;
    return r;
  }
  std::vector<float> dy() const { return random_floats(static_cast<std::size_t>(dy_count()), 33); }

  /// The sequence over buffers of these sizes: gates (gate_count), cells (cell_count), hidden
  /// (hidden_count; the layer's output y with every_step, else its own buffer, whose last
  /// slots stay zero), last (last_count: y without every_step), dh and dc (batch * units),
  /// workspace (the device's lstm_workspace_bytes).
  LstmSequence over(float* gates, float* cells, const float* recurrent, float* hidden, float* last,
                    const float* dy, float* dh, float* dc, float* workspace) const {
    const index_t T = timesteps, U = units;
    const bool hidden_in_last = latest_only && !every_step;
    LstmSequence s{.step = {.batch = batch,
                            .units = U,
                            .gates_ld = T * 4 * U,
                            .cell_ld = latest_only ? U : T * U,
                            .dy_ld = every_step ? T * U : U,
                            .activation = activation,
                            .recurrent_activation = recurrent_activation},
                   .timesteps = T,
                   .gates = gates,
                   .gates_step = 4 * U,
                   .cells = cells,
                   .cell_step = latest_only ? 0 : U,
                   .recurrent = recurrent,
                   .hidden = hidden_in_last ? last : hidden,
                   .hidden_step = hidden_in_last ? 0 : U,
                   .hidden_ld = hidden_in_last ? U : T * U,
                   .last_hidden = every_step ? hidden + (T - 1) * U : last,
                   .last_ld = every_step ? T * U : U,
                   .dy = dy,
                   .dy_every_step = every_step,
                   .dh = dh,
                   .dc = dc,
                   .workspace = workspace};
    return s;
  }
};

/// Different shapes of batch, units and steps, both layouts, one step only, other activations.
inline std::vector<LstmSequenceCase> lstm_sequence_cases() {
  return {{5, 4, 3, false},
          {5, 4, 3, true},
          {3, 1, 4, false},
          {3, 1, 4, true},
          {9, 6, 7, true, Activation::sigmoid, Activation::tanh},
          {17, 5, 10, false}};
}

/// A case's buffers on the host, and its sequence over them.
struct HostLstmSequence {
  explicit HostLstmSequence(const LstmSequenceCase& c)
      : gates(c.gates()),
        cells(static_cast<std::size_t>(c.cell_count()), 0.0f),
        recurrent(c.recurrent()),
        hidden(static_cast<std::size_t>(c.hidden_count()), 0.0f),
        last(static_cast<std::size_t>(c.last_count()), 0.0f),
        dy(c.dy()),
        dh(static_cast<std::size_t>(c.batch * c.units), 0.0f),
        dc(dh.size(), 0.0f),
        workspace(recurrent.size(), 0.0f),
        sequence(c.over(gates.data(), cells.data(), recurrent.data(), hidden.data(), last.data(),
                        dy.data(), dh.data(), dc.data(), workspace.data())) {}
  HostLstmSequence(const HostLstmSequence&) = delete;  // `sequence` points into this one
  HostLstmSequence& operator=(const HostLstmSequence&) = delete;

  std::vector<float> gates, cells, recurrent, hidden, last, dy, dh, dc;
  std::vector<float> workspace;  ///< room for the recurrent kernel transposed
  LstmSequence sequence;
};

/// c_{T-1} of a sequence run with every state kept, (batch, units): what one run keeping the
/// latest state only ends with.
inline std::vector<float> last_cells(const LstmSequenceCase& c, const std::vector<float>& cells) {
  std::vector<float> last;
  for (index_t b = 0; b < c.batch; ++b) {
    const auto row = cells.begin() + (b * c.timesteps + c.timesteps - 1) * c.units;
    last.insert(last.end(), row, row + c.units);
  }
  return last;
}

}  // namespace tabula::detail::testing
