#pragma once
// The normalisation kernels of a device (batch normalisation today), on raw float32 buffers
// that live on that device. Like `Kernels`, they never allocate: what the backward pass needs
// is saved into per-channel buffers the caller owns, and what a device sums apart between
// passes goes to the session's buffers through `Scratch`.
//
// Data is laid out channels last: `rows` rows of `channels` values, channel fastest, where
// the rows fold together the batch axis and any spatial axes (N*H*W for NHWC). One
// implementation per device, found with normalization_kernels_for(device).

#include <cstdint>

#include "backend/detail/scratch.hpp"
#include "tabula/core/device.hpp"

namespace tabula::detail {

using index_t = std::int64_t;

class NormalizationKernels {
 public:
  virtual ~NormalizationKernels() = default;

  /// Makes the per-session state these kernels take from `scratch` (a GPU's buffer of partial
  /// sums), so that a training step allocates nothing once it has begun. Layers call it when
  /// they reserve their buffers. @throws OutOfMemory.
  virtual void prepare(Scratch& scratch) { (void)scratch; }

  /// Batch normalisation with the statistics of this batch (Keras 3, training). For each
  /// channel c, with mean and biased variance var of column c over the rows:
  ///   y = gamma[c] * (x - mean) / sqrt(var + epsilon) + beta[c]
  ///   moving_mean[c]     = moving_mean[c] * momentum + mean * (1 - momentum)
  ///   moving_variance[c] = moving_variance[c] * momentum + var * (1 - momentum)
  /// and saves mean and 1 / sqrt(var + epsilon) per channel for the backward pass.
  /// `gamma` null means 1, `beta` null means 0. `x` and `y` may alias. With rows == 0
  /// nothing is written.
  virtual void batch_norm_forward_training(Scratch& scratch, const float* x, const float* gamma,
                                           const float* beta, float* y, index_t rows,
                                           index_t channels, float momentum, float epsilon,
                                           float* moving_mean, float* moving_variance,
                                           float* saved_mean, float* saved_inv_std) = 0;

  /// Batch normalisation with given statistics (inference):
  ///   y = gamma[c] * (x - mean[c]) / sqrt(variance[c] + epsilon) + beta[c].
  /// When `saved_mean`/`saved_inv_std` are non-null they receive mean and
  /// 1 / sqrt(variance + epsilon), so a backward pass can follow. `x` and `y` may alias.
  virtual void batch_norm_forward_inference(const float* x, const float* gamma, const float* beta,
                                            const float* mean, const float* variance, float epsilon,
                                            float* y, index_t rows, index_t channels,
                                            float* saved_mean, float* saved_inv_std) = 0;

  /// Gradients of batch normalisation given dL/dy, from `x` and the `saved_mean` and
  /// `saved_inv_std` its forward pass wrote. With xhat = (x - mean) * inv_std per channel:
  ///   dbeta[c] = sum(dy), dgamma[c] = sum(dy * xhat) over the rows;
  ///   through_statistics (the forward used the batch's own statistics, M = rows):
  ///     dx = gamma * inv_std / M * (M * dy - dbeta - xhat * dgamma)
  ///   else (the statistics were constants): dx = gamma * inv_std * dy.
  /// `gamma` null means 1; `dgamma`, `dbeta` and `dx` may each be null (not wanted); `dx` may
  /// alias `dy` (both are read before dx is written, element by element).
  virtual void batch_norm_backward(Scratch& scratch, const float* x, const float* dy,
                                   const float* gamma, const float* saved_mean,
                                   const float* saved_inv_std, index_t rows, index_t channels,
                                   bool through_statistics, float* dx, float* dgamma,
                                   float* dbeta) = 0;
};

/// The normalisation kernels of `device`. @throws Error when the device has none in this
/// build.
NormalizationKernels& normalization_kernels_for(Device device);

}  // namespace tabula::detail
