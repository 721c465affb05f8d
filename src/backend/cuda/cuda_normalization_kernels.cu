#include "backend/cuda/cuda_launch.cuh"
#include "backend/cuda/cuda_normalization_kernels.hpp"
#include "backend/cuda/kernel_bodies.hpp"
#include "backend/cuda/per_device.hpp"

namespace tabula::detail {

NormalizationKernels& cuda_normalization_kernels_for(Device device) {
  return per_device<CudaNormalizationKernels>(device, "CUDA normalization kernels");
}

namespace {

constexpr int kReduceThreads = 256;

// The sum of every thread's `value` in the block, returned to all threads. Double precision,
// as the CPU kernels sum: a channel can hold a million values.
__device__ double block_sum(double value, double* shared) {
  shared[threadIdx.x] = value;
  __syncthreads();
  for (int half = kReduceThreads / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) shared[threadIdx.x] += shared[threadIdx.x + half];
    __syncthreads();
  }
  const double total = shared[0];
  __syncthreads();  // shared is reused by the next call
  return total;
}

// Block c: channel c's mean and biased variance (two passes, as the CPU), the moving
// statistics, the saved statistics, then y.
__global__ void batch_norm_training_kernel(const float* x, const float* gamma, const float* beta,
                                           float* y, index_t rows, index_t channels, float momentum,
                                           float epsilon, float* moving_mean,
                                           float* moving_variance, float* saved_mean,
                                           float* saved_inv_std) {
  __shared__ double shared[kReduceThreads];
  const index_t c = blockIdx.x;
  double sum = 0.0;
  for (index_t r = threadIdx.x; r < rows; r += kReduceThreads)
    sum += static_cast<double>(x[r * channels + c]);
  const double mean = block_sum(sum, shared) / static_cast<double>(rows);
  double squares = 0.0;
  for (index_t r = threadIdx.x; r < rows; r += kReduceThreads) {
    const double d = static_cast<double>(x[r * channels + c]) - mean;
    squares += d * d;
  }
  const double variance = block_sum(squares, shared) / static_cast<double>(rows);
  const float mean_f = static_cast<float>(mean);
  const float inv_std = static_cast<float>(1.0 / sqrt(variance + static_cast<double>(epsilon)));
  if (threadIdx.x == 0) {
    const double keep = momentum, take = 1.0 - static_cast<double>(momentum);
    moving_mean[c] = static_cast<float>(moving_mean[c] * keep + mean * take);
    moving_variance[c] = static_cast<float>(moving_variance[c] * keep + variance * take);
    saved_mean[c] = mean_f;
    saved_inv_std[c] = inv_std;
  }
  const float scale = gamma ? gamma[c] * inv_std : inv_std;
  const float shift = beta ? beta[c] : 0.0f;
  for (index_t r = threadIdx.x; r < rows; r += kReduceThreads)
    y[r * channels + c] = (x[r * channels + c] - mean_f) * scale + shift;
}

// Block c: the sums of dy and dy * xhat over channel c, then dx.
__global__ void batch_norm_backward_kernel(const float* x, const float* dy, const float* gamma,
                                           const float* saved_mean, const float* saved_inv_std,
                                           index_t rows, index_t channels, bool through_statistics,
                                           float* dx, float* dgamma, float* dbeta) {
  __shared__ double shared[kReduceThreads];
  const index_t c = blockIdx.x;
  const float mean = saved_mean[c], inv_std = saved_inv_std[c];
  double sum_dy = 0.0, sum_dy_xhat = 0.0;
  for (index_t r = threadIdx.x; r < rows; r += kReduceThreads) {
    const float g = dy[r * channels + c];
    const float xhat = (x[r * channels + c] - mean) * inv_std;
    sum_dy += static_cast<double>(g);
    sum_dy_xhat += static_cast<double>(g * xhat);
  }
  sum_dy = block_sum(sum_dy, shared);
  sum_dy_xhat = block_sum(sum_dy_xhat, shared);
  if (threadIdx.x == 0) {
    if (dbeta) dbeta[c] = static_cast<float>(sum_dy);
    if (dgamma) dgamma[c] = static_cast<float>(sum_dy_xhat);
  }
  if (!dx) return;
  const float scale = gamma ? gamma[c] * inv_std : inv_std;
  const double inv_rows = rows > 0 ? 1.0 / static_cast<double>(rows) : 0.0;
  const float mean_dy = through_statistics ? static_cast<float>(sum_dy * inv_rows) : 0.0f;
  const float mean_dy_xhat = through_statistics ? static_cast<float>(sum_dy_xhat * inv_rows) : 0.0f;
  for (index_t r = threadIdx.x; r < rows; r += kReduceThreads) {
    const index_t at = r * channels + c;
    if (!through_statistics) {
      dx[at] = dy[at] * scale;
    } else {
      const float xhat = (x[at] - mean) * inv_std;
      dx[at] = scale * (dy[at] - mean_dy - xhat * mean_dy_xhat);
    }
  }
}

}  // namespace

void CudaNormalizationKernels::batch_norm_forward_training(
    const float* x, const float* gamma, const float* beta, float* y, index_t rows, index_t channels,
    float momentum, float epsilon, float* moving_mean, float* moving_variance, float* saved_mean,
    float* saved_inv_std) {
  if (rows == 0 || channels == 0) return;
  const Stream stream = Stream::for_device(device_);
  batch_norm_training_kernel<<<static_cast<unsigned>(channels), kReduceThreads, 0,
                               stream.handle()>>>(x, gamma, beta, y, rows, channels, momentum,
                                                  epsilon, moving_mean, moving_variance, saved_mean,
                                                  saved_inv_std);
  check_cuda(cudaGetLastError(), "batch_norm_forward_training");
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

void CudaNormalizationKernels::batch_norm_backward(const float* x, const float* dy,
                                                   const float* gamma, const float* saved_mean,
                                                   const float* saved_inv_std, index_t rows,
                                                   index_t channels, bool through_statistics,
                                                   float* dx, float* dgamma, float* dbeta) {
  if (channels == 0) return;
  const Stream stream = Stream::for_device(device_);
  batch_norm_backward_kernel<<<static_cast<unsigned>(channels), kReduceThreads, 0,
                               stream.handle()>>>(x, dy, gamma, saved_mean, saved_inv_std, rows,
                                                  channels, through_statistics, dx, dgamma, dbeta);
  check_cuda(cudaGetLastError(), "batch_norm_backward");
}

}  // namespace tabula::detail
