#pragma once
// The LSTM's elementwise step on a CUDA device: one thread per (sample, unit).

#include "backend/detail/recurrent_kernels.hpp"

namespace tabula::detail {

class CudaRecurrentKernels final : public RecurrentKernels {
 public:
  explicit CudaRecurrentKernels(Device device) : device_(device) {}

  void lstm_forward_step(const LstmStep& s, float* gates, const float* c_prev, float* c,
                         float* h) override;
  void lstm_backward_step(const LstmStep& s, float* gates, const float* c_prev, const float* c,
                          const float* dh, const float* dy, float* dc) override;

 private:
  Device device_;
};

/// The recurrent kernels of CUDA device `device`. @throws Error when it is not present.
RecurrentKernels& cuda_recurrent_kernels_for(Device device);

}  // namespace tabula::detail
