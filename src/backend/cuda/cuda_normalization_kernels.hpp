#pragma once
// Batch normalisation on a CUDA device: the passes of batch_norm_passes.hpp on the device's
// stream, summing in parts in the session's reduction buffer (CudaReduction).

#include "backend/detail/normalization_kernels.hpp"

namespace tabula::detail {

/// One per device, stateless itself. A call sums in the reduction buffer of the session its
/// `Scratch` comes from, so one thread per session at a time (as for the session's cuBLAS
/// workspace); sessions on other threads have buffers of their own.
class CudaNormalizationKernels final : public NormalizationKernels {
 public:
  explicit CudaNormalizationKernels(Device device) : device_(device) {}

  void prepare(Scratch& scratch) override;

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

 private:
  Device device_;
};

/// The normalisation kernels of CUDA device `device`. @throws Error when it is not present.
NormalizationKernels& cuda_normalization_kernels_for(Device device);

}  // namespace tabula::detail
