#pragma once
// The CPU normalisation kernels: loops over rows with the channels innermost, so each row's
// contiguous channels vectorise; per-channel sums are accumulated in double.

#include "backend/detail/normalization_kernels.hpp"

namespace tabula::detail {

/// Stateless; thread-safe. Per-channel scratch lives on the stack (channels are processed in
/// fixed-size blocks), so no call allocates.
class CpuNormalizationKernels final : public NormalizationKernels {
 public:
  void batch_norm_forward_training(Scratch& scratch, const float* x, const float* gamma,
                                   const float* beta, float* y, index_t rows, index_t channels,
                                   float momentum, float epsilon, float* moving_mean,
                                   float* moving_variance, float* saved_mean,
                                   float* saved_inv_std) override;
  void batch_norm_forward_inference(const float* x, const float* gamma, const float* beta,
                                    const float* mean, const float* variance, float epsilon,
                                    float* y, index_t rows, index_t channels, float* saved_mean,
                                    float* saved_inv_std) override;
  void batch_norm_backward(Scratch& scratch, const float* x, const float* dy, const float* gamma,
                           const float* saved_mean, const float* saved_inv_std, index_t rows,
                           index_t channels, bool through_statistics, float* dx, float* dgamma,
                           float* dbeta) override;
};

}  // namespace tabula::detail
