// Scoring of the CPU kernels: the shared row bodies in a loop. A batch's outputs are small
// (batch x classes), so the rows run on the calling thread.

#include "backend/cpu/cpu_kernels.hpp"
#include "backend/detail/scoring_bodies.hpp"

namespace tabula::detail {

void CpuKernels::loss_rows(LossKind kind, const ScoredBatch& batch, bool fused, float* grad,
                           float grad_scale, ScoreMatrix scores) {
  for (index_t r = 0; r < batch.rows; ++r)
    bodies::loss_row(r, kind, batch, fused, grad, grad_scale, scores);
}

void CpuKernels::metric_rows(MetricKind kind, const ScoredBatch& batch, ScoreMatrix scores,
                             index_t column) {
  for (index_t r = 0; r < batch.rows; ++r) bodies::metric_row(r, kind, batch, scores, column);
}

void CpuKernels::sum_scores(ScoreMatrix scores, index_t rows, double*, double* host_sums) {
  for (index_t c = 0; c < scores.stride; ++c) bodies::sum_score_column(c, scores, rows, host_sums);
}

}  // namespace tabula::detail
