#pragma once
// What scoring computes for one row of a batch, as plain functions of the row index: the CPU
// kernels loop over them and the CUDA kernels run them over a grid (one thread per row), so
// both backends compute the same losses, gradients and metrics from the same code. Each body
// writes only its own row (of the gradient and of the score matrix): no races, no atomics.
//
// The formulas are Keras's: probabilities are clipped to [1e-7, 1 - 1e-7] before logarithms;
// a row's terms are summed in double; the gradient is the loss's mean's, scaled by
// `grad_scale` (1 / rows for the cross-entropies over classes, 1 / elements otherwise).

#include <cmath>
#include <cstdint>

#include "backend/detail/host_device.hpp"
#include "backend/detail/scoring.hpp"

namespace tabula::detail::bodies {

using index_t = std::int64_t;

TABULA_HD inline float clip_probability(float p) {
  constexpr float kEpsilon = 1e-7f;
  // NaN passes through, so that a diverged model's loss reads as not finite.
  return p < kEpsilon ? kEpsilon : (p > 1.0f - kEpsilon ? 1.0f - kEpsilon : p);
}

/// A floating-point class index as an integer, truncated as Keras casts it; -1 (a bad label)
/// for a negative, NaN or huge value, which no integer conversion defines (the CPU and the GPU
/// would disagree).
TABULA_HD inline std::int64_t label_from(double v) {
  return v >= 0.0 && v < 9.0e18 ? static_cast<std::int64_t>(v) : -1;
}

/// Target `i` of a batch whose targets are class indices (or 0/1 labels), as an integer.
TABULA_HD inline std::int64_t label_of(const ScoredBatch& b, index_t i) {
  switch (b.target_dtype) {
    case DType::int64:
      return static_cast<const std::int64_t*>(b.target)[i];
    case DType::int32:
      return static_cast<const std::int32_t*>(b.target)[i];
    case DType::uint8:
      return static_cast<const std::uint8_t*>(b.target)[i];
    case DType::float32:
      return label_from(static_cast<const float*>(b.target)[i]);
    case DType::float64:
      return label_from(static_cast<const double*>(b.target)[i]);
  }
  return -1;
}

/// Row r's loss terms into the score matrix, and its gradient row when `grad` is given:
/// dL/d(pred), or dL/d(logits) when `fused` (softmax or sigmoid folded into the loss).
TABULA_HD inline void loss_row(index_t r, LossKind kind, const ScoredBatch& b, bool fused,
                               float* grad, float grad_scale, ScoreMatrix scores) {
  const index_t cols = b.cols;
  const float* p = b.pred + r * cols;
  float* g = grad ? grad + r * cols : nullptr;
  double* score = scores.data + r * scores.stride;
  double total = 0.0;
  score[ScoreMatrix::kBadLabelColumn] = 0.0;
  switch (kind) {
    case LossKind::categorical_crossentropy: {
      const float* t = static_cast<const float*>(b.target) + r * cols;
      float target_sum = 0.0f;
      for (index_t c = 0; c < cols; ++c) {
        total -= static_cast<double>(t[c]) * logf(clip_probability(p[c]));
        target_sum += t[c];
      }
      if (g)
        for (index_t c = 0; c < cols; ++c)
          g[c] = fused ? (p[c] * target_sum - t[c]) * grad_scale
                       : -t[c] / clip_probability(p[c]) * grad_scale;
      break;
    }
    case LossKind::sparse_categorical_crossentropy: {
      const std::int64_t label = label_of(b, r);
      if (label < 0 || label >= cols) {
        // Reported by the caller, which names the sample; nothing out of the row is read.
        score[ScoreMatrix::kBadLabelColumn] = 1.0;
        if (g)
          for (index_t c = 0; c < cols; ++c) g[c] = 0.0f;
        break;
      }
      total = -static_cast<double>(logf(clip_probability(p[label])));
      if (g) {
        for (index_t c = 0; c < cols; ++c) g[c] = fused ? p[c] * grad_scale : 0.0f;
        g[label] = fused ? g[label] - grad_scale : -grad_scale / clip_probability(p[label]);
      }
      break;
    }
    case LossKind::binary_crossentropy: {
      const float* t = static_cast<const float*>(b.target) + r * cols;
      for (index_t c = 0; c < cols; ++c) {
        const float q = clip_probability(p[c]);
        total -= static_cast<double>(t[c]) * logf(q) + (1.0 - t[c]) * logf(1.0f - q);
        if (g)
          g[c] = fused ? (p[c] - t[c]) * grad_scale : (q - t[c]) / (q * (1.0f - q)) * grad_scale;
      }
      break;
    }
    case LossKind::mean_squared_error:
    case LossKind::mean_absolute_error: {
      const float* t = static_cast<const float*>(b.target) + r * cols;
      const bool squared = kind == LossKind::mean_squared_error;
      for (index_t c = 0; c < cols; ++c) {
        const float d = p[c] - t[c];
        total += squared ? static_cast<double>(d) * d : static_cast<double>(fabsf(d));
        if (g) g[c] = (squared ? 2.0f * d : static_cast<float>((d > 0) - (d < 0))) * grad_scale;
      }
      break;
    }
  }
  score[ScoreMatrix::kLossColumn] = total;
}

/// The first largest of n values (as std::max_element picks it).
TABULA_HD inline index_t first_argmax(const float* v, index_t n) {
  index_t best = 0;
  for (index_t c = 1; c < n; ++c)
    if (v[best] < v[c]) best = c;
  return best;
}

/// Row r's correct predictions into `column` of the score matrix: 0 or 1 for the class
/// accuracies, the row's correct elements for binary accuracy (threshold 0.5).
TABULA_HD inline void metric_row(index_t r, MetricKind kind, const ScoredBatch& b,
                                 ScoreMatrix scores, index_t column) {
  const index_t cols = b.cols;
  const float* p = b.pred + r * cols;
  double correct = 0.0;
  switch (kind) {
    case MetricKind::binary_accuracy: {
      // Float targets are probabilities (above 0.5 is 1); integer targets are 0/1 labels.
      for (index_t c = 0; c < cols; ++c) {
        const index_t at = r * cols + c;
        bool target;
        if (b.target_dtype == DType::float32)
          target = static_cast<const float*>(b.target)[at] > 0.5f;
        else if (b.target_dtype == DType::float64)
          target = static_cast<const double*>(b.target)[at] > 0.5;
        else
          target = label_of(b, at) != 0;
        correct += (p[c] > 0.5f) == target ? 1.0 : 0.0;
      }
      break;
    }
    case MetricKind::sparse_categorical_accuracy:
      correct = first_argmax(p, cols) == label_of(b, r) ? 1.0 : 0.0;
      break;
    case MetricKind::categorical_accuracy:
      correct = first_argmax(p, cols) ==
                        first_argmax(static_cast<const float*>(b.target) + r * cols, cols)
                    ? 1.0
                    : 0.0;
      break;
  }
  scores.data[r * scores.stride + column] = correct;
}

/// Column `column` of the score matrix summed over its rows (ascending, in double).
TABULA_HD inline void sum_score_column(index_t column, ScoreMatrix scores, index_t rows,
                                       double* sums) {
  double sum = 0.0;
  for (index_t r = 0; r < rows; ++r) sum += scores.data[r * scores.stride + column];
  sums[column] = sum;
}

}  // namespace tabula::detail::bodies
