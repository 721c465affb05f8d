#include "nn/detail/batch_score.hpp"

#include <algorithm>
#include <sstream>

#include "backend/detail/device_copy.hpp"
#include "backend/detail/kernels.hpp"
#include "nn/detail/loss.hpp"
#include "nn/detail/metric.hpp"
#include "session/detail/session_scratch.hpp"
#include "tabula/core/errors.hpp"

namespace tabula::detail {

namespace {

// The first sample whose class index is outside [0, classes): read on the host, on the error
// path only.
[[noreturn]] void throw_bad_label(const Tensor& y_true, std::int64_t rows, std::int64_t classes) {
  const Tensor labels = y_true.device().is_cpu() ? y_true : y_true.to(Device::cpu());
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t label = label_at(labels, r);
    if (label >= 0 && label < classes) continue;
    // A floating-point label is shown as it is: NaN or -0.5 rather than what no cast defines.
    std::ostringstream got;
    if (labels.dtype() == DType::float32)
      got << labels.data<float>()[r];
    else if (labels.dtype() == DType::float64)
      got << labels.data<double>()[r];
    else
      got << label;
    TABULA_EXPECT(false, InvalidArgument, "sparse_categorical_crossentropy label of sample " << r,
                  "a class index in [0, " << classes << ")", got.str());
  }
  TABULA_THROW(Error,
               "sparse_categorical_crossentropy: the device flagged a class index out of "
               "range that the host does not find");
}

std::int64_t score_columns(std::size_t metrics) {
  return ScoreMatrix::kFirstMetricColumn + static_cast<std::int64_t>(metrics);
}

}  // namespace

std::int64_t score_batch_doubles(std::int64_t rows, std::size_t metrics) {
  return (rows + 1) * score_columns(metrics);
}

BatchScore score_batch(const Loss* loss, std::span<const Metric> metrics, const Tensor& y_pred,
                       const Tensor& y_true, const Tensor* grad, bool fused,
                       const Tensor& reserved) {
  const Device device = y_pred.device();
  TABULA_EXPECT(y_true.device() == device, InvalidArgument, "targets' device",
                device.str() << " (the outputs')", y_true.device().str());
  TABULA_EXPECT(y_pred.dtype() == DType::float32, InvalidArgument, "model outputs' dtype",
                "float32", name_of(y_pred.dtype()));
  const std::int64_t n = y_pred.numel();
  const std::int64_t cols = y_pred.shape().rank() > 0 ? y_pred.shape()[-1] : 1;
  const std::int64_t rows = cols > 0 ? n / cols : 0;
  // The kernels read and write raw device memory: every extent is checked here first.
  const bool class_indices = (loss && loss->kind() == LossKind::sparse_categorical_crossentropy) ||
                             std::any_of(metrics.begin(), metrics.end(), [](const Metric& m) {
                               return m.kind() == MetricKind::sparse_categorical_accuracy;
                             });
  TABULA_EXPECT(y_true.numel() == (class_indices ? rows : n), InvalidArgument,
                "targets of " << y_pred.shape().str() << " outputs",
                (class_indices ? rows : n) << (class_indices ? " class indices" : " values"),
                y_true.numel() << " (" << y_true.shape().str() << ")");
  if (loss && !class_indices)
    TABULA_EXPECT(y_true.dtype() == DType::float32, InvalidArgument, loss->name() << " targets",
                  "float32", name_of(y_true.dtype()));
  if (grad) {
    TABULA_EXPECT(grad->device() == device && grad->dtype() == DType::float32 && grad->numel() == n,
                  InvalidArgument, "loss gradient buffer",
                  "float32 of " << n << " elements on " << device.str(),
                  name_of(grad->dtype())
                      << " of " << grad->numel() << " on " << grad->device().str());
  }
  BatchScore out;
  out.correct.assign(metrics.size(), 0.0);
  out.counted.assign(metrics.size(), 0.0);
  for (std::size_t i = 0; i < metrics.size(); ++i) {
    const bool binary = metrics[i].kind() == MetricKind::binary_accuracy;
    out.counted[i] = static_cast<double>(binary ? n : rows);
    if (metrics[i].kind() == MetricKind::categorical_accuracy)
      TABULA_EXPECT(y_true.dtype() == DType::float32, InvalidArgument,
                    metrics[i].name() << " targets", "float32 one-hot rows",
                    name_of(y_true.dtype())
                        << " (sparse_categorical_accuracy reads class indices)");
  }
  if (rows == 0) return out;

  const std::int64_t columns = score_columns(metrics.size());
  // The score matrix, then its column sums on the device.
  SessionScratch scratch(y_pred, reserved);
  const ScratchBlock block(
      scratch,
      static_cast<std::size_t>(score_batch_doubles(rows, metrics.size())) * sizeof(double));
  const ScoreMatrix scores{static_cast<double*>(block.data()), columns};
  const ScoredBatch batch{static_cast<const float*>(y_pred.raw_data()), y_true.raw_data(),
                          y_true.dtype(), rows, cols};
  Kernels& kernels = kernels_for(device);
  const bool per_class = loss && (loss->kind() == LossKind::categorical_crossentropy ||
                                  loss->kind() == LossKind::sparse_categorical_crossentropy);
  if (loss) {
    const float grad_scale = 1.0f / static_cast<float>(per_class ? rows : n);
    kernels.loss_rows(loss->kind(), batch, fused,
                      grad ? static_cast<float*>(grad->raw_data()) : nullptr, grad_scale, scores);
  } else {
    // No loss: its columns are summed too, so they hold zeros rather than whatever was there.
    zero_bytes(scores.data, device, static_cast<std::size_t>(rows * columns) * sizeof(double));
  }
  for (std::size_t i = 0; i < metrics.size(); ++i)
    kernels.metric_rows(metrics[i].kind(), batch, scores,
                        ScoreMatrix::kFirstMetricColumn + static_cast<std::int64_t>(i));
  std::vector<double> sums(static_cast<std::size_t>(columns));
  kernels.sum_scores(scores, rows, scores.data + rows * columns, sums.data());

  if (loss) {
    if (sums[ScoreMatrix::kBadLabelColumn] > 0) throw_bad_label(y_true, rows, cols);
    out.loss = sums[ScoreMatrix::kLossColumn] / static_cast<double>(per_class ? rows : n);
  }
  for (std::size_t i = 0; i < metrics.size(); ++i)
    out.correct[i] = sums[ScoreMatrix::kFirstMetricColumn + i];
  return out;
}

}  // namespace tabula::detail
