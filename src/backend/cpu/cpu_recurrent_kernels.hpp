#pragma once
// The CPU recurrent kernels: fused gate loops over one timestep, which the compiler
// specialises for each (activation, recurrent_activation) pair.

#include "backend/detail/recurrent_kernels.hpp"

namespace tabula::detail {

/// Stateless; thread-safe (concurrent calls on different buffers).
class CpuRecurrentKernels final : public RecurrentKernels {
 public:
  void lstm_forward_step(const LstmStep& s, float* gates, const float* c_prev, float* c,
                         float* h) override;
  void lstm_backward_step(const LstmStep& s, float* gates, const float* c_prev, const float* c,
                          const float* dh, const float* dy, float* dc) override;
};

}  // namespace tabula::detail
