#pragma once
// A batch's loss, gradient and metrics, computed where the batch lives and read back once.

#include <span>
#include <vector>

#include "tabula/core/tensor.hpp"

namespace tabula::detail {

class Loss;
class Metric;

/// What scoring one batch gives back to the host.
struct BatchScore {
  double loss = 0.0;            // the mean loss (0 without a loss)
  std::vector<double> correct;  // per metric: correct predictions in the batch
  std::vector<double> counted;  // per metric: predictions counted
};

/// Doubles of scratch score_batch uses for `rows` rows and `metrics` metrics.
std::int64_t score_batch_doubles(std::int64_t rows, std::size_t metrics);

/// Scores `y_pred` against `y_true` (both on the same device) with `loss` (none: metrics
/// only) and `metrics`; writes the loss's gradient into `grad` when given (dL/d(logits) when
/// `fused`, see Loss::fuses_with). The kernels run on the batch's device with scratch from its
/// session (`reserved` first, when it is defined and large enough: a training loop's buffer,
/// so that its steps allocate nothing; no other call may be using it meanwhile); one copy
/// brings every figure back, so a training step waits for its device once.
/// @throws InvalidArgument naming the first sample whose class index is out of range; for
/// targets, outputs or a gradient buffer of the wrong device, dtype or size (expected and got);
/// OutOfMemory when the scratch cannot be had.
BatchScore score_batch(const Loss* loss, std::span<const Metric> metrics, const Tensor& y_pred,
                       const Tensor& y_true, const Tensor* grad, bool fused,
                       const Tensor& reserved = Tensor());

}  // namespace tabula::detail
