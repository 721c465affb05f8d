// The recurrences every device can run: a timestep at a time, a gemm and a fused step each.

#include "backend/detail/recurrent_kernels.hpp"

namespace tabula::detail {

void RecurrentKernels::lstm_forward_sequence(Kernels& k, Scratch& scratch, const LstmSequence& s) {
  const index_t T = s.timesteps, U = s.step.units, G = 4 * U;
  LstmStep step = s.step;
  for (index_t t = 0; t < T; ++t) {
    float* gates_t = s.gates_at(t);
    if (s.input) {  // x_t · kernel + bias, x_t the rows T * features floats apart
      k.gemm(scratch, false, false, step.batch, G, s.features, 1.0f, s.input + t * s.features,
             T * s.features, s.kernel, G, 0.0f, gates_t, step.gates_ld);
      if (s.bias) k.add_bias(gates_t, s.bias, step.batch, G);
    }
    if (t > 0)  // h_{-1} = 0 adds nothing
      k.gemm(scratch, false, false, step.batch, G, U, 1.0f, s.h_at(t - 1), s.h_ld_at(t - 1),
             s.recurrent, G, 1.0f, gates_t, step.gates_ld);
    step.h_ld = s.h_ld_at(t);
    lstm_forward_step(step, gates_t, t > 0 ? s.cell_at(t - 1) : nullptr, s.cell_at(t), s.h_at(t));
  }
}

void RecurrentKernels::lstm_backward_sequence(Kernels& k, Scratch& scratch, const LstmSequence& s) {
  const index_t T = s.timesteps, U = s.step.units, G = 4 * U;
  for (index_t t = T; t-- > 0;) {
    float* gates_t = s.gates_at(t);
    lstm_backward_step(s.step, gates_t, t > 0 ? s.cell_at(t - 1) : nullptr, s.cell_at(t),
                       t == T - 1 ? nullptr : s.dh, s.dy_at(t), s.dc);
    if (t == 0) break;  // h_{-1} = 0: no earlier state
    k.gemm(scratch, false, true, s.step.batch, U, G, 1.0f, gates_t, s.step.gates_ld, s.recurrent, G,
           0.0f, s.dh, U);
  }
}

}  // namespace tabula::detail
