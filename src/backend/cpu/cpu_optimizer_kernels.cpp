// Optimizer updates of the CPU kernels: one pass over each parameter, vectorised, in parts on
// the pool for large parameters (each element's update is independent, so any split gives
// bitwise the same weights).

#include <cmath>

#include "backend/cpu/cpu_kernels.hpp"
#include "backend/cpu/thread_pool.hpp"
#include "backend/cpu/vector_clones.hpp"

namespace tabula::detail {
namespace {

// Parameters, gradients and state never overlap; saying so lets the loops vectorise.

TABULA_VECTOR_CLONES
void sgd_part(float* __restrict w, const float* __restrict g, index_t n, float lr) {
  for (index_t i = 0; i < n; ++i) w[i] -= lr * g[i];
}

TABULA_VECTOR_CLONES
void sgd_momentum_part(float* __restrict w, const float* __restrict g,
                       float* __restrict velocity, index_t n, float lr, float momentum,
                       bool nesterov) {
  for (index_t i = 0; i < n; ++i) {
    velocity[i] = momentum * velocity[i] - lr * g[i];
    w[i] += nesterov ? momentum * velocity[i] - lr * g[i] : velocity[i];
  }
}

TABULA_VECTOR_CLONES
void adam_part(float* __restrict w, const float* __restrict g, float* __restrict m,
               float* __restrict v, index_t n, float step, float beta_1, float beta_2,
               float epsilon, float decay) {
  const float one_minus_b1 = 1.0f - beta_1, one_minus_b2 = 1.0f - beta_2;
  for (index_t i = 0; i < n; ++i) {
    w[i] -= decay * w[i];
    m[i] += (g[i] - m[i]) * one_minus_b1;
    v[i] += (g[i] * g[i] - v[i]) * one_minus_b2;
    w[i] -= step * m[i] / (std::sqrt(v[i]) + epsilon);
  }
}

TABULA_VECTOR_CLONES
void rmsprop_part(float* __restrict w, const float* __restrict g, float* __restrict mean_square,
                  float* __restrict momentum_buf, index_t n, float lr, float rho, float momentum,
                  float epsilon) {
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

template <typename F>
void in_parts(index_t n, F&& part) {
  ThreadPool::instance().run_over(n, 1, part);
}

}  // namespace

void CpuKernels::sgd_update(float* w, const float* g, float* velocity, index_t n, float lr,
                            float momentum, bool nesterov) {
  in_parts(n, [&](index_t at, index_t count) {
    if (velocity == nullptr) sgd_part(w + at, g + at, count, lr);
    else sgd_momentum_part(w + at, g + at, velocity + at, count, lr, momentum, nesterov);
  });
}

void CpuKernels::adam_update(float* w, const float* g, float* m, float* v, index_t n,
                             float step, float beta_1, float beta_2, float epsilon,
                             float decay) {
  in_parts(n, [&](index_t at, index_t count) {
    adam_part(w + at, g + at, m + at, v + at, count, step, beta_1, beta_2, epsilon, decay);
  });
}

void CpuKernels::rmsprop_update(float* w, const float* g, float* mean_square,
                                float* momentum_buf, index_t n, float lr, float rho,
                                float momentum, float epsilon) {
  in_parts(n, [&](index_t at, index_t count) {
    rmsprop_part(w + at, g + at, mean_square + at,
                 momentum_buf != nullptr ? momentum_buf + at : nullptr, count, lr, rho, momentum,
                 epsilon);
  });
}

}  // namespace tabula::detail
