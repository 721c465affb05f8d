#include "backend/cuda/batch_norm_passes.hpp"
#include "backend/cuda/cuda_launch.cuh"
#include "backend/cuda/cuda_normalization_kernels.hpp"
#include "backend/cuda/cuda_reduction.hpp"
#include "backend/cuda/kernel_bodies.hpp"
#include "backend/cuda/per_device.hpp"

namespace tabula::detail {

NormalizationKernels& cuda_normalization_kernels_for(Device device) {
  return per_device<CudaNormalizationKernels>(device, "CUDA normalization kernels");
}

void CudaNormalizationKernels::prepare(Scratch& scratch) {
  (void)scratch.context(&CudaReduction::make);
}

// The launcher of the batch normalisation passes: one grid-stride kernel per pass, on the
// device's stream. Named, not file-local: nvcc's extended lambdas want their enclosing
// function (a pass template instantiated with this type) to have external linkage.
struct NormalizationLaunch {
  Stream stream;
  template <typename F>
  void operator()(index_t n, F f, const char* what) const {
    for_each_index(stream, n, f, what);
  }
};

namespace {

float* reduction_buffer(Scratch& scratch) {
  return static_cast<CudaReduction&>(scratch.context(&CudaReduction::make)).data();
}

}  // namespace

void CudaNormalizationKernels::batch_norm_forward_training(
    Scratch& scratch, const float* x, const float* gamma, const float* beta, float* y, index_t rows,
    index_t channels, float momentum, float epsilon, float* moving_mean, float* moving_variance,
    float* saved_mean, float* saved_inv_std) {
  if (rows == 0 || channels == 0) return;
  bodies::batch_norm_training_passes(NormalizationLaunch{Stream::for_device(device_)},
                                     reduction_buffer(scratch), CudaReduction::kFloats, x, gamma,
                                     beta, y, rows, channels, momentum, epsilon, moving_mean,
                                     moving_variance, saved_mean, saved_inv_std);
}

void CudaNormalizationKernels::batch_norm_forward_inference(const float* x, const float* gamma,
                                                            const float* beta, const float* mean,
                                                            const float* variance, float epsilon,
                                                            float* y, index_t rows,
                                                            index_t channels, float* saved_mean,
                                                            float* saved_inv_std) {
  const Stream stream = Stream::for_device(device_);
  for_each_index(
      stream, rows * channels,
      [=] __device__(index_t i) {
        const index_t c = i % channels;
        const float inv_std = static_cast<float>(
            1.0 / sqrt(static_cast<double>(variance[c]) + static_cast<double>(epsilon)));
        const float scale = gamma ? gamma[c] * inv_std : inv_std;
        y[i] = (x[i] - mean[c]) * scale + (beta ? beta[c] : 0.0f);
      },
      "batch_norm_forward_inference");
  if (saved_mean == nullptr && saved_inv_std == nullptr) return;
  for_each_index(
      stream, channels,
      [=] __device__(index_t c) {
        if (saved_mean) saved_mean[c] = mean[c];
        if (saved_inv_std)
          saved_inv_std[c] = static_cast<float>(
              1.0 / sqrt(static_cast<double>(variance[c]) + static_cast<double>(epsilon)));
      },
      "batch_norm_forward_inference statistics");
}

void CudaNormalizationKernels::batch_norm_backward(Scratch& scratch, const float* x,
                                                   const float* dy, const float* gamma,
                                                   const float* saved_mean,
                                                   const float* saved_inv_std, index_t rows,
                                                   index_t channels, bool through_statistics,
                                                   float* dx, float* dgamma, float* dbeta) {
  if (channels == 0) return;
  bodies::batch_norm_backward_passes(NormalizationLaunch{Stream::for_device(device_)},
                                     reduction_buffer(scratch), CudaReduction::kFloats, x, dy,
                                     gamma, saved_mean, saved_inv_std, rows, channels,
                                     through_statistics, dx, dgamma, dbeta);
}

}  // namespace tabula::detail
