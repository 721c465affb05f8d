#pragma once
// Batch normalisation on a GPU as a sequence of passes, each a launch of a body
// (kernel_bodies.hpp) over a range of indices, in stream order. Written once for any launcher,
// so that the host tests run the very sequence, parts and buffer layout the CUDA kernels run.
//
// A channel's sums are made in parts of the rows, a thread per (part, channel), so that a warp
// reads neighbouring channels of a row; a thread per channel then adds the parts up in order
// (the same result every run), and a thread per element normalises or back-propagates. With
// few rows, or channels enough to fill a GPU, a thread per channel does everything and no
// buffer is used.
//
// `launch(n, body, what)` runs body(i) for every i in [0, n) after the previous launch.

#include <algorithm>

#include "backend/cuda/kernel_bodies.hpp"

namespace tabula::detail::bodies {

/// The parts of the rows a pass sums apart (as column_sum_parts), within a buffer of
/// `capacity` floats that holds two arrays of (part, channel) doubles and two floats per
/// channel; and the rows in each part. `count` 1: a thread per channel, no buffer.
struct BatchNormParts {
  index_t count;
  index_t span;

  static BatchNormParts of(index_t rows, index_t channels, index_t capacity) {
    const index_t per_array = std::max<index_t>((capacity - 2 * channels) / 4, 0);
    const index_t count = channels <= 0 ? 1 : column_sum_parts(rows, channels, per_array);
    return {count, (rows + count - 1) / count};
  }
};

/// Where the passes keep their sums in a buffer of BatchNormParts' capacity (8-byte aligned),
/// which the view does not own: two arrays of parts * channels doubles, then 2 * channels
/// floats.
struct BatchNormSumsView {
  double* first;
  double* second;
  float* per_channel;

  BatchNormSumsView(float* buffer, BatchNormParts parts, index_t channels)
      : first(reinterpret_cast<double*>(buffer)),
        second(first + parts.count * channels),
        per_channel(reinterpret_cast<float*>(second + parts.count * channels)) {}
};

/// NormalizationKernels::batch_norm_forward_training's passes. `buffer` (capacity floats) is
/// only touched when the rows are cut into parts.
template <typename Launch>
void batch_norm_training_passes(const Launch& launch, float* buffer, index_t capacity,
                                const float* x, const float* gamma, const float* beta, float* y,
                                index_t rows, index_t channels, float momentum, float epsilon,
                                float* moving_mean, float* moving_variance, float* saved_mean,
                                float* saved_inv_std) {
  if (rows == 0 || channels == 0) return;
  const BatchNormParts parts = BatchNormParts::of(rows, channels, capacity);
  if (parts.count == 1) {
    launch(
        channels,
        [=] TABULA_DEVICE_LAMBDA(index_t c) {
          batch_norm_training_channel(c, x, gamma, beta, y, rows, channels, momentum, epsilon,
                                      moving_mean, moving_variance, saved_mean, saved_inv_std);
        },
        "batch_norm_forward_training");
    return;
  }
  const BatchNormSumsView sums(buffer, parts, channels);
  double* partial = sums.first;
  double* mean = sums.second;  // one per channel
  const index_t count = parts.count, span = parts.span;
  const double inv_rows = 1.0 / static_cast<double>(rows);
  launch(
      count * channels,
      [=] TABULA_DEVICE_LAMBDA(index_t i) {
        batch_norm_sum_part(i, x, partial, rows, channels, span);
      },
      "batch_norm_forward_training (sums)");
  launch(
      channels,
      [=] TABULA_DEVICE_LAMBDA(index_t c) {
        mean[c] = sum_of_parts(c, partial, count, channels) * inv_rows;
      },
      "batch_norm_forward_training (means)");
  launch(
      count * channels,
      [=] TABULA_DEVICE_LAMBDA(index_t i) {
        batch_norm_deviation_part(i, x, mean, partial, rows, channels, span);
      },
      "batch_norm_forward_training (deviations)");
  launch(
      channels,
      [=] TABULA_DEVICE_LAMBDA(index_t c) {
        const double variance = sum_of_parts(c, partial, count, channels) * inv_rows;
        finish_batch_statistics(c, mean[c], variance, momentum, epsilon, moving_mean,
                                moving_variance, saved_mean, saved_inv_std);
      },
      "batch_norm_forward_training (statistics)");
  launch(
      rows * channels,
      [=] TABULA_DEVICE_LAMBDA(index_t i) {
        batch_norm_apply(i, x, y, channels, saved_mean, saved_inv_std, gamma, beta);
      },
      "batch_norm_forward_training (normalise)");
}

/// NormalizationKernels::batch_norm_backward's passes; `buffer` as for the training passes.
template <typename Launch>
void batch_norm_backward_passes(const Launch& launch, float* buffer, index_t capacity,
                                const float* x, const float* dy, const float* gamma,
                                const float* saved_mean, const float* saved_inv_std, index_t rows,
                                index_t channels, bool through_statistics, float* dx, float* dgamma,
                                float* dbeta) {
  if (channels == 0) return;
  const BatchNormParts parts = BatchNormParts::of(rows, channels, capacity);
  if (parts.count == 1) {
    launch(
        channels,
        [=] TABULA_DEVICE_LAMBDA(index_t c) {
          batch_norm_backward_channel(c, x, dy, gamma, saved_mean, saved_inv_std, rows, channels,
                                      through_statistics, dx, dgamma, dbeta);
        },
        "batch_norm_backward");
    return;
  }
  const BatchNormSumsView sums(buffer, parts, channels);
  double* partial_dy = sums.first;
  double* partial_dy_xhat = sums.second;
  const bool means_wanted = dx != nullptr && through_statistics;
  float* mean_dy = means_wanted ? sums.per_channel : nullptr;
  float* mean_dy_xhat = means_wanted ? sums.per_channel + channels : nullptr;
  const index_t count = parts.count, span = parts.span;
  // Every read of dy happens in the first pass or in dx's own element: dx may alias dy.
  launch(
      count * channels,
      [=] TABULA_DEVICE_LAMBDA(index_t i) {
        batch_norm_gradient_part(i, x, dy, saved_mean, saved_inv_std, partial_dy, partial_dy_xhat,
                                 rows, channels, span);
      },
      "batch_norm_backward (sums)");
  launch(
      channels,
      [=] TABULA_DEVICE_LAMBDA(index_t c) {
        finish_gradient_sums(c, sum_of_parts(c, partial_dy, count, channels),
                             sum_of_parts(c, partial_dy_xhat, count, channels), rows, dgamma, dbeta,
                             mean_dy, mean_dy_xhat);
      },
      "batch_norm_backward (parameters)");
  if (dx == nullptr) return;
  launch(
      rows * channels,
      [=] TABULA_DEVICE_LAMBDA(index_t i) {
        batch_norm_input_gradient(i, x, dy, dx, channels, saved_mean, saved_inv_std, gamma, mean_dy,
                                  mean_dy_xhat);
      },
      "batch_norm_backward (dx)");
}

}  // namespace tabula::detail::bodies
