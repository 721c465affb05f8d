#include "backend/cuda/cuda_launch.cuh"
#include "backend/cuda/cuda_recurrent_kernels.hpp"
#include "backend/cuda/kernel_bodies.hpp"
#include "backend/cuda/per_device.hpp"

namespace tabula::detail {

RecurrentKernels& cuda_recurrent_kernels_for(Device device) {
  return per_device<CudaRecurrentKernels>(device, "CUDA recurrent kernels");
}

namespace {

void check_gates(const LstmStep& s) {
  const auto gate_function = [](Activation f) {
    return f == Activation::tanh || f == Activation::sigmoid;
  };
  TABULA_EXPECT(gate_function(s.activation), InvalidArgument, "LSTM kernel activation",
                "tanh or sigmoid", name_of(s.activation));
  TABULA_EXPECT(gate_function(s.recurrent_activation), InvalidArgument,
                "LSTM kernel recurrent_activation", "tanh or sigmoid",
                name_of(s.recurrent_activation));
}

}  // namespace

void CudaRecurrentKernels::lstm_forward_step(const LstmStep& s, float* gates, const float* c_prev,
                                             float* c, float* h) {
  check_gates(s);
  const LstmStep step = s;
  for_each_index(
      Stream::for_device(device_), s.batch * s.units,
      [=] __device__(index_t i) { bodies::lstm_forward(i, step, gates, c_prev, c, h); },
      "lstm_forward_step");
}

void CudaRecurrentKernels::lstm_backward_step(const LstmStep& s, float* gates, const float* c_prev,
                                              const float* c, const float* dh, const float* dy,
                                              float* dc) {
  check_gates(s);
  const LstmStep step = s;
  for_each_index(
      Stream::for_device(device_), s.batch * s.units,
      [=] __device__(index_t i) { bodies::lstm_backward(i, step, gates, c_prev, c, dh, dy, dc); },
      "lstm_backward_step");
}

}  // namespace tabula::detail
