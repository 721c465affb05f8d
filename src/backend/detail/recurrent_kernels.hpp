#pragma once
// The recurrence of recurrent layers, on raw float32 buffers that live on the kernels' device.
// The layer forms x · kernel (+ bias) for every timestep with one Kernels::gemm; what is left
// runs here over the whole sequence: per timestep, h_{t-1} · recurrent_kernel and then the gate
// nonlinearities and the cell update (one fused pass per step). By default that is one gemm and
// one step kernel per timestep; a device may run the whole sequence at once instead (CUDA: one
// launch, where a launch per step would cost more than the step's arithmetic).
//
// Like Kernels, these never allocate: every buffer comes from the layer, which takes it from
// the session. One implementation per device, chosen by recurrent_kernels_for(device).

#include "backend/detail/host_device.hpp"
#include "backend/detail/kernels.hpp"
#include "tabula/core/device.hpp"
#include "tabula/nn/activation.hpp"

namespace tabula::detail {

/// Geometry of one LSTM timestep for `batch` samples. Rows are strided so that the buffers of
/// a whole sequence, laid out (batch, timesteps, ...), are addressed at timestep t in place.
/// Gate rows hold 4 * units floats in Keras's (and PyTorch's) order: input i, forget f,
/// candidate g, output o.
struct LstmStep {
  index_t batch = 0;
  index_t units = 0;
  index_t gates_ld = 0;  ///< floats between consecutive samples' gate rows
  index_t cell_ld = 0;   ///< ... of the cell states c_{t-1} and c_t
  index_t h_ld = 0;      ///< ... of the hidden state h_t (forward output)
  index_t dy_ld = 0;     ///< ... of the upstream gradient dL/dh_t (backward input)
  Activation activation = Activation::tanh;               ///< on g and on c_t (tanh or sigmoid)
  Activation recurrent_activation = Activation::sigmoid;  ///< on i, f, o (tanh or sigmoid)
};

/// A whole LSTM sequence of `timesteps` steps for `step.batch` samples. Where its gates, c_t
/// and h_t live depends on the pass and the layer: `gates_at`, `cell_at` and `h_at` say.
/// Training keeps every step's for backward: gates (batch, T, 4U) (gates_ld = T * 4U,
/// gates_step = 4U), cells (batch, T, U) (cell_ld = T * U, cell_step = U), h_t in the layer's
/// output y or a buffer of its own. Inference keeps the latest only, each step overwriting the
/// one before in place (cell_step = hidden_step = 0), which every step's reads-before-writes
/// allow; where the device projects the input per step (`input` set), the gates too
/// (gates (batch, 4U), gates_ld = 4U, gates_step = 0).
struct LstmSequence {
  LstmStep step;  ///< h_ld is per timestep (h_ld_at); dy_ld is dy's
  index_t timesteps = 0;
  float* gates = nullptr;  ///< step t's at gates + t * gates_step, rows step.gates_ld apart
  index_t gates_step = 0;  ///< 4U where every step's are kept, 0 where the latest are
  /// Null: on entry `gates` holds x_t · kernel + bias of every step (the layer's one gemm).
  /// Else each step's are formed here, from x (batch, T, features) and the layer's kernel
  /// (features, 4U) and bias (4U, or null): RecurrentKernels::lstm_projects_input_per_step.
  const float* input = nullptr;
  index_t features = 0;
  const float* kernel = nullptr;
  const float* bias = nullptr;
  float* cells = nullptr;            ///< c_t at cells + t * cell_step, rows step.cell_ld apart
  index_t cell_step = 0;             ///< U where every c_t is kept, 0 where only the latest is
  const float* recurrent = nullptr;  ///< the recurrent kernel, (U, 4U) row-major
  float* hidden = nullptr;           ///< h_t for t < T - 1 at hidden + t * hidden_step, ...
  index_t hidden_step = 0;           ///< ... (U where every h_t is kept, 0 where the latest is)
  index_t hidden_ld = 0;             ///< ... rows hidden_ld floats apart
  float* last_hidden = nullptr;      ///< h_{T-1}, ...
  index_t last_ld = 0;               ///< ... rows last_ld floats apart
  /// Backward: dL/dh_t from the layer's output, at dy + t * U for every t (dy_every_step),
  /// else for h_{T-1} only, at dy; rows step.dy_ld floats apart.
  const float* dy = nullptr;
  bool dy_every_step = false;
  float* dh = nullptr;  ///< backward workspace, (batch, U) contiguous
  float* dc = nullptr;  ///< backward workspace, (batch, U) contiguous, zero on entry
  /// lstm_workspace_bytes(units) bytes of workspace for the device's own use (null when 0).
  float* workspace = nullptr;

  /// Whether backward can run on what forward left: every step's gates, c_t and h_t (with one
  /// step, the latest is every one).
  TABULA_HD bool keeps_every_state() const {
    return timesteps == 1 ||
           (gates_step == 4 * step.units && cell_step == step.units && hidden_step == step.units);
  }
  TABULA_HD float* gates_at(index_t t) const { return gates + t * gates_step; }
  TABULA_HD float* cell_at(index_t t) const { return cells + t * cell_step; }
  TABULA_HD float* h_at(index_t t) const {
    return t == timesteps - 1 ? last_hidden : hidden + t * hidden_step;
  }
  TABULA_HD index_t h_ld_at(index_t t) const { return t == timesteps - 1 ? last_ld : hidden_ld; }
  TABULA_HD const float* dy_at(index_t t) const {
    if (dy_every_step) return dy + t * step.units;
    return t == timesteps - 1 ? dy : nullptr;
  }
};

class RecurrentKernels {
 public:
  virtual ~RecurrentKernels() = default;

  /// One LSTM step after the caller has written the gates' pre-activations
  /// (x_t · kernel + bias + h_{t-1} · recurrent_kernel) into `gates`:
  ///   i, f, o = recurrent_activation(.);  g = activation(.)
  ///   c_t = f * c_{t-1} + i * g;          h_t = o * activation(c_t)
  /// `gates` is overwritten with the activations (i, f, g, o), which backward needs.
  /// `c_prev` null means c_{t-1} = 0 (the first step); `c` may be `c_prev` (each element is
  /// read before it is written), so that inference keeps one cell state.
  virtual void lstm_forward_step(const LstmStep& s, float* gates, const float* c_prev, float* c,
                                 float* h) = 0;

  /// Back-propagates one LSTM step. On entry `gates` holds the step's activations (as forward
  /// left them), `dh` ((batch, units), contiguous) the gradient reaching h_t through the
  /// recurrence, `dy` (nullable) the gradient reaching h_t from the layer's output, and `dc`
  /// ((batch, units), contiguous) dL/dc_t from step t + 1. On return `gates` holds
  /// dL/d(pre-activations) of the step and `dc` holds dL/dc_{t-1}; the caller then forms
  /// dL/dh_{t-1} = dgates · recurrent_kernel^T with gemm. `c_prev` null means c_{t-1} = 0;
  /// `dh` null means no recurrent gradient (the last step). No two of the buffers overlap.
  virtual void lstm_backward_step(const LstmStep& s, float* gates, const float* c_prev,
                                  const float* c, const float* dh, const float* dy, float* dc) = 0;

  /// Bytes of LstmSequence::workspace the sequences of an LSTM with `units` units need here,
  /// whatever the batch: the layer reserves them with its other buffers. 0 by default.
  virtual std::size_t lstm_workspace_bytes(index_t units) const {
    (void)units;
    return 0;
  }

  /// Whether an inference sequence here forms each step's input projection itself
  /// (LstmSequence::input), so that the layer keeps one step's gates instead of every step's.
  /// True by default: that is a gemm (and a bias) more per step on the default path. A device
  /// that runs the whole sequence in one launch says false.
  virtual bool lstm_projects_input_per_step(index_t units) const {
    (void)units;
    return true;
  }

  /// The forward recurrence of a whole sequence. On entry `s.gates` holds every step's
  /// x_t · kernel + bias, unless `s.input` is set; on return every step's gate activations (as
  /// lstm_forward_step leaves them; the latest only where s.gates_step is 0), and every c_t and
  /// h_t are written (cell_at, h_at). The default runs, per timestep, the input projection
  /// where `s.input` is set (a `k.gemm` and `k.add_bias`), one `k.gemm` (h_{t-1} ·
  /// recurrent_kernel, its packing from `scratch`) and then one lstm_forward_step, which may
  /// therefore write h_t over h_{t-1}.
  virtual void lstm_forward_sequence(Kernels& k, Scratch& scratch, const LstmSequence& s);

  /// The backward recurrence of a whole sequence, after lstm_forward_sequence: on return
  /// `s.gates` holds every step's dL/d(pre-activations), from which the layer forms the weight
  /// and input gradients. Needs every state kept (keeps_every_state); uses s.dh and s.dc (dc zero
  /// on entry). The default runs, per
  /// timestep, one lstm_backward_step and one `k.gemm` (dL/dh_{t-1} = dgates · recurrent^T).
  virtual void lstm_backward_sequence(Kernels& k, Scratch& scratch, const LstmSequence& s);
};

/// The recurrent kernels of `device`. @throws Error when the device has none in this build.
RecurrentKernels& recurrent_kernels_for(Device device);

}  // namespace tabula::detail
