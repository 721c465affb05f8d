// Optimizer updates of the CPU kernels: one pass over each parameter, vectorised.

#include <cmath>

#include "backend/cpu/cpu_kernels.hpp"

namespace tabula::detail {

// Parameters, gradients and state never overlap; saying so lets the loops vectorise.
void CpuKernels::sgd_update(float* __restrict w, const float* __restrict g,
                            float* __restrict velocity, index_t n, float lr, float momentum,
                            bool nesterov) {
  if (velocity == nullptr) {
    for (index_t i = 0; i < n; ++i) w[i] -= lr * g[i];
    return;
  }
  for (index_t i = 0; i < n; ++i) {
    velocity[i] = momentum * velocity[i] - lr * g[i];
    w[i] += nesterov ? momentum * velocity[i] - lr * g[i] : velocity[i];
  }
}

void CpuKernels::adam_update(float* __restrict w, const float* __restrict g,
                             float* __restrict m, float* __restrict v, index_t n, float step,
                             float beta_1, float beta_2, float epsilon, float decay) {
  const float one_minus_b1 = 1.0f - beta_1, one_minus_b2 = 1.0f - beta_2;
  for (index_t i = 0; i < n; ++i) {
    w[i] -= decay * w[i];
    m[i] += (g[i] - m[i]) * one_minus_b1;
    v[i] += (g[i] * g[i] - v[i]) * one_minus_b2;
    w[i] -= step * m[i] / (std::sqrt(v[i]) + epsilon);
  }
}

void CpuKernels::rmsprop_update(float* __restrict w, const float* __restrict g,
                                float* __restrict mean_square, float* __restrict momentum_buf,
                                index_t n, float lr, float rho, float momentum, float epsilon) {
  for (index_t i = 0; i < n; ++i) {
    mean_square[i] = rho * mean_square[i] + (1.0f - rho) * g[i] * g[i];
    // Keras's rule: epsilon inside the square root (PyTorch adds it outside).
    const float delta = lr * g[i] / std::sqrt(mean_square[i] + epsilon);
    if (momentum_buf != nullptr) {
      momentum_buf[i] = momentum * momentum_buf[i] + delta;
      w[i] -= momentum_buf[i];
    } else {
      w[i] -= delta;
    }
  }
}

}  // namespace tabula::detail
