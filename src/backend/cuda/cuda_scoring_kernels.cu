// Scoring of the CUDA kernels: the shared row bodies over a grid, one thread per row, and the
// column sums copied back in one small read.

#include "backend/cuda/cuda_kernels.hpp"
#include "backend/cuda/cuda_launch.cuh"
#include "backend/detail/device_copy.hpp"
#include "backend/detail/scoring_bodies.hpp"

namespace tabula::detail {

void CudaKernels::loss_rows(LossKind kind, const ScoredBatch& batch, bool fused, float* grad,
                            float grad_scale, ScoreMatrix scores) {
  const ScoredBatch b = batch;
  for_each_index(
      Stream::for_device(device_), b.rows,
      [=] __device__(index_t r) { bodies::loss_row(r, kind, b, fused, grad, grad_scale, scores); },
      "loss_rows");
}

void CudaKernels::metric_rows(MetricKind kind, const ScoredBatch& batch, ScoreMatrix scores,
                              index_t column) {
  const ScoredBatch b = batch;
  for_each_index(
      Stream::for_device(device_), b.rows,
      [=] __device__(index_t r) { bodies::metric_row(r, kind, b, scores, column); }, "metric_rows");
}

void CudaKernels::sum_scores(ScoreMatrix scores, index_t rows, double* device_sums,
                             double* host_sums) {
  for_each_index(
      Stream::for_device(device_), scores.stride,
      [=] __device__(index_t c) { bodies::sum_score_column(c, scores, rows, device_sums); },
      "sum_scores");
  copy_bytes(host_sums, Device::cpu(), device_sums, device_,
             static_cast<std::size_t>(scores.stride) * sizeof(double));
}

}  // namespace tabula::detail
