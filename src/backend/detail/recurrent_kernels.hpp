#pragma once
// The elementwise half of recurrent layers, one timestep at a time, on raw float32 buffers
// that live on the kernels' device. The matrix products around them (x · kernel over all
// timesteps, h · recurrent_kernel per step) go through Kernels::gemm; what is left is the gate
// nonlinearities and the cell update, which a device fuses into one pass.
//
// Like Kernels, these never allocate: every buffer comes from the layer, which takes it from
// the session. One implementation per device, chosen by recurrent_kernels_for(device).

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

class RecurrentKernels {
 public:
  virtual ~RecurrentKernels() = default;

  /// One LSTM step after the caller has written the gates' pre-activations
  /// (x_t · kernel + bias + h_{t-1} · recurrent_kernel) into `gates`:
  ///   i, f, o = recurrent_activation(.);  g = activation(.)
  ///   c_t = f * c_{t-1} + i * g;          h_t = o * activation(c_t)
  /// `gates` is overwritten with the activations (i, f, g, o), which backward needs.
  /// `c_prev` null means c_{t-1} = 0 (the first step).
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
};

/// The recurrent kernels of `device`. @throws Error when the device has none in this build.
RecurrentKernels& recurrent_kernels_for(Device device);

}  // namespace tabula::detail
