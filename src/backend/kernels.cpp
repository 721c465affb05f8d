// What every device's kernels can do with their own single operations.

#include "backend/detail/kernels.hpp"

namespace tabula::detail {

void Kernels::bias_activation(float* y, const float* bias, Activation f, index_t rows,
                              index_t cols) {
  if (bias) add_bias(y, bias, rows, cols);
  activation_forward(f, y, y, rows, cols);
}

void Kernels::sgd_update_many(std::span<const UpdateTensor> tensors, float lr, float momentum,
                              bool nesterov) {
  for (const UpdateTensor& t : tensors) sgd_update(t.w, t.g, t.state0, t.n, lr, momentum, nesterov);
}

void Kernels::adam_update_many(std::span<const UpdateTensor> tensors, float step, float beta_1,
                               float beta_2, float epsilon, float decay) {
  for (const UpdateTensor& t : tensors)
    adam_update(t.w, t.g, t.state0, t.state1, t.n, step, beta_1, beta_2, epsilon, decay);
}

void Kernels::rmsprop_update_many(std::span<const UpdateTensor> tensors, float lr, float rho,
                                  float momentum, float epsilon) {
  for (const UpdateTensor& t : tensors)
    rmsprop_update(t.w, t.g, t.state0, t.state1, t.n, lr, rho, momentum, epsilon);
}

}  // namespace tabula::detail
