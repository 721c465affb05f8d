#pragma once
// What one GPU thread computes, as plain functions of its output index: the CUDA kernels
// (cuda_launch.cu) run each body over a grid, and the tests run the same bodies on the host
// against the CPU kernels, so the index arithmetic is checked on machines without a GPU.
//
// Every body writes exactly one output (an element, a row or a column) and reads only inputs,
// so threads never race and no atomics are needed. Where the CPU kernels sum in a fixed order,
// the bodies sum in the same order (col2im, pooling backward, sum_rows): their results match
// the CPU's bitwise up to the device's own exp/tanh and fused multiply-adds.
//
// No CUDA header is needed here: see host_device.hpp.

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "backend/detail/host_device.hpp"
#include "backend/detail/kernels.hpp"
#include "backend/detail/recurrent_kernels.hpp"

namespace tabula::detail::bodies {

TABULA_HD inline float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

TABULA_HD inline float activate(Activation f, float x) {
  switch (f) {
    case Activation::relu:
      return x > 0.0f ? x : 0.0f;
    case Activation::sigmoid:
      return sigmoid(x);
    case Activation::tanh:
      return tanhf(x);
    default:
      return x;  // linear (softmax is row-wise: softmax_row)
  }
}

/// dL/dx from the output y = f(x) and dL/dy, elementwise activations.
TABULA_HD inline float activation_gradient(Activation f, float y, float dy) {
  switch (f) {
    case Activation::relu:
      return y > 0.0f ? dy : 0.0f;
    case Activation::sigmoid:
      return dy * y * (1.0f - y);
    case Activation::tanh:
      return dy * (1.0f - y * y);
    default:
      return dy;
  }
}

// ---- dense layers ------------------------------------------------------------------------

TABULA_HD inline void add_bias(index_t i, float* y, const float* bias, index_t cols) {
  y[i] += bias[i % cols];
}

/// Column `col` of db: the CPU's order (rows ascending, float sums).
TABULA_HD inline void sum_column(index_t col, const float* dy, float* db, index_t rows,
                                 index_t cols) {
  float sum = 0.0f;
  for (index_t r = 0; r < rows; ++r) sum += dy[r * cols + col];
  db[col] = sum;
}

/// How many parts of the rows a device's sum_rows sums apart first: enough (part, column)
/// threads to fill a GPU (32768), parts of 64 rows or more, at most `capacity` partial sums;
/// 1 (no first pass) when that leaves a single part.
inline index_t column_sum_parts(index_t rows, index_t cols, index_t capacity) {
  if (rows <= 0 || cols <= 0) return 1;
  index_t parts = std::min((index_t{32768} + cols - 1) / cols, (rows + 63) / 64);
  parts = std::min(parts, capacity / cols);
  return std::max<index_t>(parts, 1);
}

/// Element i = (part p, column c) of a first pass over parts of the rows: column c, and the
/// rows [p * span, (p + 1) * span) that exist.
struct PartOfColumn {
  index_t column, begin, end;
};
TABULA_HD inline PartOfColumn part_of_column(index_t i, index_t rows, index_t cols, index_t span) {
  const index_t p = i / cols;
  return {i % cols, p * span, (p + 1) * span < rows ? (p + 1) * span : rows};
}

/// Element i = (part p, column c) of sum_rows' first pass: column c summed over the part's rows,
/// in order, into partial[p * cols + c].
TABULA_HD inline void sum_column_part(index_t i, const float* dy, float* partial, index_t rows,
                                      index_t cols, index_t span) {
  const PartOfColumn part = part_of_column(i, rows, cols, span);
  float sum = 0.0f;
  for (index_t r = part.begin; r < part.end; ++r) sum += dy[r * cols + part.column];
  partial[i] = sum;
}

TABULA_HD inline void activation_forward(index_t i, Activation f, const float* x, float* y) {
  y[i] = activate(f, x[i]);
}

/// add_bias then activation_forward of element i in one pass (f elementwise).
TABULA_HD inline void bias_activation(index_t i, Activation f, float* y, const float* bias,
                                      index_t cols) {
  y[i] = activate(f, y[i] + bias[i % cols]);
}

TABULA_HD inline void activation_backward(index_t i, Activation f, const float* y, const float* dy,
                                          float* dx) {
  dx[i] = activation_gradient(f, y[i], dy[i]);
}

/// Row `r` of a softmax over `cols` (x and y may alias).
TABULA_HD inline void softmax_row(index_t r, const float* x, float* y, index_t cols) {
  const float* in = x + r * cols;
  float* out = y + r * cols;
  float top = in[0];
  for (index_t c = 1; c < cols; ++c) top = in[c] > top ? in[c] : top;
  float sum = 0.0f;
  for (index_t c = 0; c < cols; ++c) {
    out[c] = expf(in[c] - top);
    sum += out[c];
  }
  const float inv = 1.0f / sum;
  for (index_t c = 0; c < cols; ++c) out[c] *= inv;
}

/// Row `r` of softmax's gradient from its output (dy and dx may alias).
TABULA_HD inline void softmax_backward_row(index_t r, const float* y, const float* dy, float* dx,
                                           index_t cols) {
  const float* p = y + r * cols;
  const float* g = dy + r * cols;
  float* out = dx + r * cols;
  float dot = 0.0f;
  for (index_t c = 0; c < cols; ++c) dot += g[c] * p[c];
  for (index_t c = 0; c < cols; ++c) out[c] = p[c] * (g[c] - dot);
}

TABULA_HD inline void multiply(index_t i, const float* x, const float* mask, float scale,
                               float* y) {
  y[i] = x[i] * mask[i] * scale;
}

/// C = beta * C for a GEMM with nothing to sum (k == 0); with beta == 0 C is not read.
TABULA_HD inline void scale_matrix(index_t i, float* c, index_t n, index_t ldc, float beta) {
  float& v = c[(i / n) * ldc + i % n];
  v = beta == 0.0f ? 0.0f : beta * v;
}

// ---- dropout -----------------------------------------------------------------------------

/// A 64-bit mix of (seed, i) (splitmix64's finaliser): counter-based, so every thread draws
/// its own number without state.
TABULA_HD inline std::uint64_t mix(std::uint64_t seed, std::uint64_t i) {
  std::uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/// mask[i] = 1 with probability 1 - rate, else 0.
TABULA_HD inline void dropout_mask(index_t i, float* mask, float rate, std::uint64_t seed) {
  const float u = static_cast<float>(mix(seed, static_cast<std::uint64_t>(i)) >> 40) *
                  (1.0f / 16777216.0f);  // 24 bits: exact in float, in [0, 1)
  mask[i] = u >= rate ? 1.0f : 0.0f;
}

// ---- convolution as GEMM (NHWC; patch order kh, kw, c) ------------------------------------

/// Element i of the columns of samples [first, first + count): (s, oh, ow, kh, kw, c).
TABULA_HD inline void im2col(index_t i, const Window2d& w, const float* x, index_t first,
                             float* columns) {
  index_t rest = i;
  const index_t c = rest % w.channels;
  rest /= w.channels;
  const index_t kw = rest % w.kernel_w;
  rest /= w.kernel_w;
  const index_t kh = rest % w.kernel_h;
  rest /= w.kernel_h;
  const index_t ow = rest % w.out_w;
  rest /= w.out_w;
  const index_t oh = rest % w.out_h;
  const index_t s = rest / w.out_h;
  const index_t ih = oh * w.stride_h - w.pad_top + kh;
  const index_t iw = ow * w.stride_w - w.pad_left + kw;
  const bool inside = ih >= 0 && ih < w.in_h && iw >= 0 && iw < w.in_w;
  columns[i] = inside ? x[(((first + s) * w.in_h + ih) * w.in_w + iw) * w.channels + c] : 0.0f;
}

/// The outputs [lo, hi] along one axis whose window (start o * stride - pad, `kernel` wide)
/// covers input position `at`; empty when lo > hi.
struct Covering {
  index_t lo, hi;
};
TABULA_HD inline Covering covering(index_t at, index_t pad, index_t kernel, index_t stride,
                                   index_t outputs) {
  // o covers `at` when o * stride - pad <= at < o * stride - pad + kernel.
  const index_t past = at + pad - kernel;  // o * stride must exceed this
  const index_t lo = past < 0 ? 0 : past / stride + 1;
  index_t hi = (at + pad) / stride;  // at + pad >= 0
  if (hi > outputs - 1) hi = outputs - 1;
  return {lo, hi};
}

/// Element i of dx for samples [first, first + count), i counted from sample `first`:
/// the sum of the patch entries that unfolded from it, in the CPU's order (outputs ascending).
TABULA_HD inline void col2im(index_t i, const Window2d& w, const float* columns, index_t first,
                             float* dx) {
  index_t rest = i;
  const index_t c = rest % w.channels;
  rest /= w.channels;
  const index_t iw = rest % w.in_w;
  rest /= w.in_w;
  const index_t ih = rest % w.in_h;
  const index_t s = rest / w.in_h;
  const index_t patch = w.kernel_h * w.kernel_w * w.channels;
  const Covering rows = covering(ih, w.pad_top, w.kernel_h, w.stride_h, w.out_h);
  const Covering cols = covering(iw, w.pad_left, w.kernel_w, w.stride_w, w.out_w);
  float sum = 0.0f;
  for (index_t oh = rows.lo; oh <= rows.hi; ++oh) {
    const index_t kh = ih - (oh * w.stride_h - w.pad_top);
    for (index_t ow = cols.lo; ow <= cols.hi; ++ow) {
      const index_t kw = iw - (ow * w.stride_w - w.pad_left);
      sum += columns[((s * w.out_h + oh) * w.out_w + ow) * patch +
                     (kh * w.kernel_w + kw) * w.channels + c];
    }
  }
  dx[first * w.in_h * w.in_w * w.channels + i] = sum;
}

// ---- pooling (windows clipped to the input; never empty) ---------------------------------

/// The (sample, row, column, channel) of flat NHWC index i.
struct Nhwc {
  index_t n, h, w, c;
};
TABULA_HD inline Nhwc nhwc_of(index_t i, index_t height, index_t width, index_t channels) {
  return {i / (channels * width * height), (i / (channels * width)) % height,
          (i / channels) % width, i % channels};
}

/// The window of output (oh, ow) clipped to the input: rows [h0, h1), columns [w0, w1).
struct Clipped {
  index_t h0, h1, w0, w1;
};
TABULA_HD inline Clipped clipped_window(const Window2d& w, index_t oh, index_t ow) {
  const index_t hs = oh * w.stride_h - w.pad_top, ws = ow * w.stride_w - w.pad_left;
  return {hs < 0 ? 0 : hs, hs + w.kernel_h < w.in_h ? hs + w.kernel_h : w.in_h, ws < 0 ? 0 : ws,
          ws + w.kernel_w < w.in_w ? ws + w.kernel_w : w.in_w};
}

/// Output element i = (n, oh, ow, c): the window's first maximum and, unless `argmax` is null,
/// its flat input index.
TABULA_HD inline void max_pool_forward(index_t i, const Window2d& w, const float* x, float* y,
                                       std::int32_t* argmax) {
  const auto [n, oh, ow, c] = nhwc_of(i, w.out_h, w.out_w, w.channels);
  const Clipped b = clipped_window(w, oh, ow);
  const index_t base = n * w.in_h * w.in_w * w.channels + c;
  index_t best_at = base + (b.h0 * w.in_w + b.w0) * w.channels;
  float best = x[best_at];
  for (index_t ih = b.h0; ih < b.h1; ++ih)
    for (index_t iw = b.w0; iw < b.w1; ++iw) {
      const index_t at = base + (ih * w.in_w + iw) * w.channels;
      if (x[at] > best) {
        best = x[at];
        best_at = at;
      }
    }
  y[i] = best;
  if (argmax) argmax[i] = static_cast<std::int32_t>(best_at);
}

/// Input element i = (n, ih, iw, c): the gradients of the outputs whose maximum it was.
TABULA_HD inline void max_pool_backward(index_t i, const Window2d& w, const float* dy,
                                        const std::int32_t* argmax, float* dx) {
  const auto [n, ih, iw, c] = nhwc_of(i, w.in_h, w.in_w, w.channels);
  const Covering rows = covering(ih, w.pad_top, w.kernel_h, w.stride_h, w.out_h);
  const Covering cols = covering(iw, w.pad_left, w.kernel_w, w.stride_w, w.out_w);
  float sum = 0.0f;
  for (index_t oh = rows.lo; oh <= rows.hi; ++oh)
    for (index_t ow = cols.lo; ow <= cols.hi; ++ow) {
      const index_t o = ((n * w.out_h + oh) * w.out_w + ow) * w.channels + c;
      if (argmax[o] == i) sum += dy[o];
    }
  dx[i] = sum;
}

TABULA_HD inline float window_inverse_size(const Clipped& b) {
  return 1.0f / static_cast<float>((b.h1 - b.h0) * (b.w1 - b.w0));
}

/// Output element i: the mean of its window's elements inside the input.
TABULA_HD inline void avg_pool_forward(index_t i, const Window2d& w, const float* x, float* y) {
  const auto [n, oh, ow, c] = nhwc_of(i, w.out_h, w.out_w, w.channels);
  const Clipped b = clipped_window(w, oh, ow);
  const index_t base = n * w.in_h * w.in_w * w.channels + c;
  float sum = 0.0f;
  for (index_t ih = b.h0; ih < b.h1; ++ih)
    for (index_t iw = b.w0; iw < b.w1; ++iw) sum += x[base + (ih * w.in_w + iw) * w.channels];
  y[i] = sum * window_inverse_size(b);
}

/// Input element i: its share of the gradient of every window that covers it.
TABULA_HD inline void avg_pool_backward(index_t i, const Window2d& w, const float* dy, float* dx) {
  const auto [n, ih, iw, c] = nhwc_of(i, w.in_h, w.in_w, w.channels);
  const Covering rows = covering(ih, w.pad_top, w.kernel_h, w.stride_h, w.out_h);
  const Covering cols = covering(iw, w.pad_left, w.kernel_w, w.stride_w, w.out_w);
  float sum = 0.0f;
  for (index_t oh = rows.lo; oh <= rows.hi; ++oh)
    for (index_t ow = cols.lo; ow <= cols.hi; ++ow) {
      const index_t o = ((n * w.out_h + oh) * w.out_w + ow) * w.channels + c;
      sum += dy[o] * window_inverse_size(clipped_window(w, oh, ow));
    }
  dx[i] = sum;
}

// ---- optimizer updates (Keras's formulas, as the CPU kernels) -----------------------------

TABULA_HD inline void sgd_update(index_t i, float* w, const float* g, float* velocity, float lr,
                                 float momentum, bool nesterov) {
  if (velocity == nullptr) {
    w[i] -= lr * g[i];
    return;
  }
  velocity[i] = momentum * velocity[i] - lr * g[i];
  w[i] += nesterov ? momentum * velocity[i] - lr * g[i] : velocity[i];
}

TABULA_HD inline void adam_update(index_t i, float* w, const float* g, float* m, float* v,
                                  float step, float beta_1, float beta_2, float epsilon,
                                  float decay) {
  w[i] -= decay * w[i];
  m[i] += (g[i] - m[i]) * (1.0f - beta_1);
  v[i] += (g[i] * g[i] - v[i]) * (1.0f - beta_2);
  w[i] -= step * m[i] / (sqrtf(v[i]) + epsilon);
}

TABULA_HD inline void rmsprop_update(index_t i, float* w, const float* g, float* mean_square,
                                     float* momentum_buf, float lr, float rho, float momentum,
                                     float epsilon) {
  mean_square[i] = rho * mean_square[i] + (1.0f - rho) * g[i] * g[i];
  const float delta = lr * g[i] / sqrtf(mean_square[i] + epsilon);  // Keras: eps inside
  if (momentum_buf != nullptr) {
    momentum_buf[i] = momentum * momentum_buf[i] + delta;
    w[i] -= momentum_buf[i];
  } else {
    w[i] -= delta;
  }
}

// ---- batch normalisation ------------------------------------------------------------------
//
// Channels last: `rows` rows of `channels` values. A channel's sums are double, as the CPU's:
// a channel can hold a million values. With few rows, or channels enough to fill a GPU, a
// thread per channel does everything (the *_channel bodies); otherwise the rows are cut into
// parts (BatchNormParts in batch_norm_passes.hpp), a thread per (part, channel) sums its part of a
// column, so that neighbouring threads read neighbouring channels, and a thread per channel adds
// the parts up in order: the same result every run.

/// Column c of x summed over rows [begin, end).
TABULA_HD inline double column_sum(const float* x, index_t c, index_t begin, index_t end,
                                   index_t channels) {
  double sum = 0.0;
  for (index_t r = begin; r < end; ++r) sum += static_cast<double>(x[r * channels + c]);
  return sum;
}

/// The squared deviations of column c of x from `mean`, summed over rows [begin, end).
TABULA_HD inline double column_squared_deviations(const float* x, index_t c, index_t begin,
                                                  index_t end, index_t channels, double mean) {
  double sum = 0.0;
  for (index_t r = begin; r < end; ++r) {
    const double d = static_cast<double>(x[r * channels + c]) - mean;
    sum += d * d;
  }
  return sum;
}

/// The sums of dy and dy * xhat over rows [begin, end) of column c, xhat = (x - mean) * inv_std.
/// One float rounding per product, as the CPU; their sum is what needs double.
TABULA_HD inline void column_gradient_sums(const float* x, const float* dy, index_t c,
                                           index_t begin, index_t end, index_t channels, float mean,
                                           float inv_std, double& sum_dy, double& sum_dy_xhat) {
  sum_dy = 0.0;
  sum_dy_xhat = 0.0;
  for (index_t r = begin; r < end; ++r) {
    const float g = dy[r * channels + c];
    const float xhat = (x[r * channels + c] - mean) * inv_std;
    sum_dy += static_cast<double>(g);
    sum_dy_xhat += static_cast<double>(g * xhat);
  }
}

/// Channel c's batch statistics, once its mean and biased variance are known: the moving
/// statistics, and the mean and 1 / sqrt(variance + epsilon) saved for y and the backward pass.
TABULA_HD inline void finish_batch_statistics(index_t c, double mean, double variance,
                                              float momentum, float epsilon, float* moving_mean,
                                              float* moving_variance, float* saved_mean,
                                              float* saved_inv_std) {
  const double keep = momentum, take = 1.0 - static_cast<double>(momentum);
  moving_mean[c] = static_cast<float>(moving_mean[c] * keep + mean * take);
  moving_variance[c] = static_cast<float>(moving_variance[c] * keep + variance * take);
  saved_mean[c] = static_cast<float>(mean);
  saved_inv_std[c] = static_cast<float>(1.0 / sqrt(variance + static_cast<double>(epsilon)));
}

/// Channel c's parameter gradients from its sums, and, when `mean_dy` is non-null (dx goes
/// through the batch statistics), the means of dy and dy * xhat that dx needs.
TABULA_HD inline void finish_gradient_sums(index_t c, double sum_dy, double sum_dy_xhat,
                                           index_t rows, float* dgamma, float* dbeta,
                                           float* mean_dy, float* mean_dy_xhat) {
  if (dbeta) dbeta[c] = static_cast<float>(sum_dy);
  if (dgamma) dgamma[c] = static_cast<float>(sum_dy_xhat);
  if (mean_dy == nullptr) return;
  const double inv_rows = rows > 0 ? 1.0 / static_cast<double>(rows) : 0.0;
  mean_dy[c] = static_cast<float>(sum_dy * inv_rows);
  mean_dy_xhat[c] = static_cast<float>(sum_dy_xhat * inv_rows);
}

/// y = (x - mean) * scale + shift with scale = gamma * inv_std, shift = beta, per channel.
TABULA_HD inline void batch_norm_apply(index_t i, const float* x, float* y, index_t channels,
                                       const float* mean, const float* inv_std, const float* gamma,
                                       const float* beta) {
  const index_t c = i % channels;
  const float scale = gamma ? gamma[c] * inv_std[c] : inv_std[c];
  y[i] = (x[i] - mean[c]) * scale + (beta ? beta[c] : 0.0f);
}

/// dx of one element: scale * dy when the statistics were constants (`through` false), else
/// scale * (dy - mean(dy) - xhat * mean(dy * xhat)).
TABULA_HD inline float batch_norm_dx(float x, float dy, float mean, float inv_std, float scale,
                                     bool through, float mean_dy, float mean_dy_xhat) {
  if (!through) return dy * scale;
  const float xhat = (x - mean) * inv_std;
  return scale * (dy - mean_dy - xhat * mean_dy_xhat);
}

/// dx from dy and the per-channel means of dy and dy * xhat (null when the statistics were
/// constants).
TABULA_HD inline void batch_norm_input_gradient(index_t i, const float* x, const float* dy,
                                                float* dx, index_t channels, const float* mean,
                                                const float* inv_std, const float* gamma,
                                                const float* mean_dy, const float* mean_dy_xhat) {
  const index_t c = i % channels;
  const float scale = gamma ? gamma[c] * inv_std[c] : inv_std[c];
  const bool through = mean_dy != nullptr;
  dx[i] = batch_norm_dx(x[i], dy[i], mean[c], inv_std[c], scale, through,
                        through ? mean_dy[c] : 0.0f, through ? mean_dy_xhat[c] : 0.0f);
}

/// Element i = (part p, channel c): column c of x summed over the part's rows, into partial[i].
TABULA_HD inline void batch_norm_sum_part(index_t i, const float* x, double* partial, index_t rows,
                                          index_t channels, index_t span) {
  const PartOfColumn part = part_of_column(i, rows, channels, span);
  partial[i] = column_sum(x, part.column, part.begin, part.end, channels);
}

/// Element i = (part p, channel c): the part's squared deviations from mean[c], into partial[i].
TABULA_HD inline void batch_norm_deviation_part(index_t i, const float* x, const double* mean,
                                                double* partial, index_t rows, index_t channels,
                                                index_t span) {
  const PartOfColumn part = part_of_column(i, rows, channels, span);
  partial[i] =
      column_squared_deviations(x, part.column, part.begin, part.end, channels, mean[part.column]);
}

/// Channel c's parts of `partial` added up in order.
TABULA_HD inline double sum_of_parts(index_t c, const double* partial, index_t parts,
                                     index_t channels) {
  double sum = 0.0;
  for (index_t p = 0; p < parts; ++p) sum += partial[p * channels + c];
  return sum;
}

/// Element i = (part p, channel c): the part's sums of dy and dy * xhat, into partial_dy[i] and
/// partial_dy_xhat[i].
TABULA_HD inline void batch_norm_gradient_part(index_t i, const float* x, const float* dy,
                                               const float* mean, const float* inv_std,
                                               double* partial_dy, double* partial_dy_xhat,
                                               index_t rows, index_t channels, index_t span) {
  const PartOfColumn part = part_of_column(i, rows, channels, span);
  column_gradient_sums(x, dy, part.column, part.begin, part.end, channels, mean[part.column],
                       inv_std[part.column], partial_dy[i], partial_dy_xhat[i]);
}

/// Training forward of channel c by one thread: mean, variance (two passes, as the CPU), the
/// statistics, then y. `x` and `y` may alias (each value is read before it is written).
TABULA_HD inline void batch_norm_training_channel(index_t c, const float* x, const float* gamma,
                                                  const float* beta, float* y, index_t rows,
                                                  index_t channels, float momentum, float epsilon,
                                                  float* moving_mean, float* moving_variance,
                                                  float* saved_mean, float* saved_inv_std) {
  const double inv_rows = 1.0 / static_cast<double>(rows);
  const double mean = column_sum(x, c, 0, rows, channels) * inv_rows;
  const double variance = column_squared_deviations(x, c, 0, rows, channels, mean) * inv_rows;
  finish_batch_statistics(c, mean, variance, momentum, epsilon, moving_mean, moving_variance,
                          saved_mean, saved_inv_std);
  for (index_t r = 0; r < rows; ++r)
    batch_norm_apply(r * channels + c, x, y, channels, saved_mean, saved_inv_std, gamma, beta);
}

/// Backward of channel c by one thread: its sums, dgamma and dbeta, then dx (`dx` may alias
/// `dy`: every dy of the channel is read before the first dx is written).
TABULA_HD inline void batch_norm_backward_channel(index_t c, const float* x, const float* dy,
                                                  const float* gamma, const float* saved_mean,
                                                  const float* saved_inv_std, index_t rows,
                                                  index_t channels, bool through, float* dx,
                                                  float* dgamma, float* dbeta) {
  double sum_dy = 0.0, sum_dy_xhat = 0.0;
  const float mean = saved_mean[c], inv_std = saved_inv_std[c];
  column_gradient_sums(x, dy, c, 0, rows, channels, mean, inv_std, sum_dy, sum_dy_xhat);
  float mean_dy = 0.0f, mean_dy_xhat = 0.0f;
  finish_gradient_sums(0, sum_dy, sum_dy_xhat, rows, dgamma ? dgamma + c : nullptr,
                       dbeta ? dbeta + c : nullptr, &mean_dy, &mean_dy_xhat);
  if (dx == nullptr) return;
  const float scale = gamma ? gamma[c] * inv_std : inv_std;
  for (index_t r = 0; r < rows; ++r) {
    const index_t at = r * channels + c;
    dx[at] = batch_norm_dx(x[at], dy[at], mean, inv_std, scale, through, mean_dy, mean_dy_xhat);
  }
}

// ---- LSTM, one timestep, one (sample, unit) per thread ------------------------------------

TABULA_HD inline float gate(Activation f, float x) {
  return f == Activation::tanh ? tanhf(x) : sigmoid(x);
}
TABULA_HD inline float gate_derivative(Activation f, float y) {
  return f == Activation::tanh ? 1.0f - y * y : y * (1.0f - y);
}

/// Element i of the (cols, rows) transpose of row-major (rows, cols) `matrix`.
TABULA_HD inline void transpose(index_t i, const float* matrix, index_t rows, index_t cols,
                                float* transposed) {
  const index_t j = i / rows, k = i % rows;
  transposed[i] = matrix[k * cols + j];
}

/// Element i = (b, u) of one LSTM step forward (see RecurrentKernels::lstm_forward_step).
TABULA_HD inline void lstm_forward(index_t i, const LstmStep& s, float* gates, const float* c_prev,
                                   float* c, float* h) {
  const index_t U = s.units, b = i / U, u = i % U;
  float* row = gates + b * s.gates_ld;
  const float in = gate(s.recurrent_activation, row[u]);
  const float forget = gate(s.recurrent_activation, row[U + u]);
  const float cand = gate(s.activation, row[2 * U + u]);
  const float out = gate(s.recurrent_activation, row[3 * U + u]);
  row[u] = in;
  row[U + u] = forget;
  row[2 * U + u] = cand;
  row[3 * U + u] = out;
  const float cell = (c_prev ? forget * c_prev[b * s.cell_ld + u] : 0.0f) + in * cand;
  c[b * s.cell_ld + u] = cell;
  h[b * s.h_ld + u] = out * gate(s.activation, cell);
}

/// Element i = (b, u) of one LSTM step backward (see RecurrentKernels::lstm_backward_step).
TABULA_HD inline void lstm_backward(index_t i, const LstmStep& s, float* gates, const float* c_prev,
                                    const float* c, const float* dh, const float* dy, float* dc) {
  const index_t U = s.units, b = i / U, u = i % U;
  float* row = gates + b * s.gates_ld;
  const float in = row[u], forget = row[U + u], cand = row[2 * U + u], out = row[3 * U + u];
  const float cell_out = gate(s.activation, c[b * s.cell_ld + u]);
  float dh_total = 0.0f;
  if (dh) dh_total += dh[b * U + u];
  if (dy) dh_total += dy[b * s.dy_ld + u];
  const float dc_total = dc[b * U + u] + dh_total * out * gate_derivative(s.activation, cell_out);
  const float c_before = c_prev ? c_prev[b * s.cell_ld + u] : 0.0f;
  row[u] = dc_total * cand * gate_derivative(s.recurrent_activation, in);
  row[U + u] = dc_total * c_before * gate_derivative(s.recurrent_activation, forget);
  row[2 * U + u] = dc_total * in * gate_derivative(s.activation, cand);
  row[3 * U + u] = dh_total * cell_out * gate_derivative(s.recurrent_activation, out);
  dc[b * U + u] = dc_total * forget;
}

}  // namespace tabula::detail::bodies
