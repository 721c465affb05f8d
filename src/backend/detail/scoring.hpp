#pragma once
// What the scoring kernels (a batch's loss, its gradient, and its metrics) read and write.
// nn/detail's Loss and Metric give these kinds their Keras names and formulas' meaning.

#include <cstdint>

#include "tabula/core/dtype.hpp"

namespace tabula::detail {

enum class LossKind {
  categorical_crossentropy,
  sparse_categorical_crossentropy,
  binary_crossentropy,
  mean_squared_error,
  mean_absolute_error,
};

enum class MetricKind { categorical_accuracy, sparse_categorical_accuracy, binary_accuracy };

/// A batch of model outputs and its targets on one device: `rows` outputs of `cols` values
/// (the last axis). Targets are float32 of the outputs' shape, or, for the sparse kinds, one
/// class index per row of `target_dtype` (any integer or float type, as Keras accepts them).
/// Passed by value to the device: it holds only device pointers and sizes.
struct ScoredBatch {
  const float* pred;
  const void* target;
  DType target_dtype;
  std::int64_t rows, cols;
};

/// Where the per-row scores go: a rows x `stride` matrix of doubles, row-major. Column
/// kLossColumn holds each row's summed loss terms, kBadLabelColumn 1 for a row whose class
/// index is outside [0, cols) (0 otherwise), and the columns after them one metric each (the
/// row's correct predictions).
struct ScoreMatrix {
  double* data;
  std::int64_t stride;
  static constexpr std::int64_t kLossColumn = 0;
  static constexpr std::int64_t kBadLabelColumn = 1;
  static constexpr std::int64_t kFirstMetricColumn = 2;
};

}  // namespace tabula::detail
