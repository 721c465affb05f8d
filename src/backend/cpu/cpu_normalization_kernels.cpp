#include "backend/cpu/cpu_normalization_kernels.hpp"

#include <algorithm>
#include <cmath>

#include "tabula/core/errors.hpp"

namespace tabula::detail {

namespace {

// Per-position scratch of a panel row lives on the stack: at most this many values.
constexpr index_t kWidth = 256;

// A view of channels-last data as rows of `width` values whose position j holds channel
// `first_channel + j % channels`, so that every loop runs over a long contiguous row:
//  - few channels (<= kWidth): the whole flat array, cut into rows of as many whole samples'
//    channels as fit in kWidth, plus a last partial row of `tail` values (a prefix of a row,
//    since the array and the row width are both multiples of the channel count);
//  - many channels: blocks of kWidth channels, one panel row per data row.
struct Panel {
  index_t first_channel;  // channel of position 0; also the offset of the first value
  index_t channels;       // channels the panel covers
  index_t width;          // values per row, a multiple of `channels`
  index_t stride;         // values between the starts of consecutive rows
  index_t rows;           // full rows
  index_t tail;           // values in a last, partial row
};

template <typename F>
void for_each_panel(index_t rows, index_t channels, F&& f) {
  if (channels <= 0) return;
  if (channels <= kWidth) {
    const index_t width = channels * (kWidth / channels), n = rows * channels;
    f(Panel{0, channels, width, width, n / width, n % width});
    return;
  }
  for (index_t c0 = 0; c0 < channels; c0 += kWidth) {
    const index_t nb = std::min(kWidth, channels - c0);
    f(Panel{c0, nb, nb, channels, rows, 0});
  }
}

// Calls row(offset, count) for each row of the panel, the partial one last.
template <typename F>
void for_each_row(const Panel& p, F&& row) {
  for (index_t r = 0; r < p.rows; ++r) row(p.first_channel + r * p.stride, p.width);
  if (p.tail > 0) row(p.first_channel + p.rows * p.stride, p.tail);
}

// Per-channel totals of per-position sums: out[c] = sum over k of acc[k * channels + c].
void fold(const double* acc, const Panel& p, double* out) {
  std::fill(out, out + p.channels, 0.0);
  for (index_t j = 0; j < p.width; j += p.channels)
    for (index_t c = 0; c < p.channels; ++c) out[c] += acc[j + c];
}

// Repeats per-channel values across the positions of a panel row.
void spread(const float* per_channel, const Panel& p, float* out) {
  for (index_t j = 0; j < p.width; j += p.channels)
    std::copy(per_channel, per_channel + p.channels, out + j);
}

// scale[c] = gamma[c] * inv_std[c] (gamma null: 1), for the panel's channels.
void scale_of(const float* gamma, const float* inv_std, const Panel& p, float* scale) {
  for (index_t c = 0; c < p.channels; ++c)
    scale[c] = gamma ? gamma[p.first_channel + c] * inv_std[c] : inv_std[c];
}

// y = (x - mean) * scale + shift with per-channel values spread over the row. Subtracting the
// mean before scaling keeps y accurate when the mean is large next to the spread.
void normalise(const float* x, float* y, const Panel& p, const float* mean, const float* scale,
               const float* shift) {
  float m[kWidth], s[kWidth], b[kWidth];
  spread(mean, p, m);
  spread(scale, p, s);
  spread(shift, p, b);
  for_each_row(p, [&](index_t at, index_t count) {
    const float* in = x + at;
    float* out = y + at;
    for (index_t j = 0; j < count; ++j) out[j] = (in[j] - m[j]) * s[j] + b[j];
  });
}

void shift_of(const float* beta, const Panel& p, float* shift) {
  for (index_t c = 0; c < p.channels; ++c) shift[c] = beta ? beta[p.first_channel + c] : 0.0f;
}

}  // namespace

void CpuNormalizationKernels::batch_norm_forward_training(
    Scratch&, const float* x, const float* gamma, const float* beta, float* y, index_t rows,
    index_t channels, float momentum, float epsilon, float* moving_mean, float* moving_variance,
    float* saved_mean, float* saved_inv_std) {
  if (rows == 0) return;
  const double inv_rows = 1.0 / static_cast<double>(rows);
  const double keep = momentum, take = 1.0 - static_cast<double>(momentum);
  for_each_panel(rows, channels, [&](const Panel& p) {
    double acc[kWidth], total[kWidth], mean_d[kWidth];
    float mean[kWidth], inv_std[kWidth], scale[kWidth], shift[kWidth];
    // Two passes (mean, then squared deviations) rather than sum and sum of squares: the
    // variance stays accurate when the mean is large next to the spread.
    std::fill(acc, acc + p.width, 0.0);
    for_each_row(p, [&](index_t at, index_t count) {
      const float* in = x + at;
      for (index_t j = 0; j < count; ++j) acc[j] += static_cast<double>(in[j]);
    });
    fold(acc, p, total);
    for (index_t c = 0; c < p.channels; ++c) {
      mean_d[c] = total[c] * inv_rows;
      mean[c] = static_cast<float>(mean_d[c]);
    }
    double spread_mean_d[kWidth];
    for (index_t j = 0; j < p.width; ++j) spread_mean_d[j] = mean_d[j % p.channels];
    std::fill(acc, acc + p.width, 0.0);
    for_each_row(p, [&](index_t at, index_t count) {
      const float* in = x + at;
      for (index_t j = 0; j < count; ++j) {
        const double d = static_cast<double>(in[j]) - spread_mean_d[j];
        acc[j] += d * d;
      }
    });
    fold(acc, p, total);
    for (index_t c = 0; c < p.channels; ++c) {
      const double variance = total[c] * inv_rows;  // biased, as Keras 3 uses it everywhere
      const index_t at = p.first_channel + c;
      inv_std[c] = static_cast<float>(1.0 / std::sqrt(variance + static_cast<double>(epsilon)));
      moving_mean[at] = static_cast<float>(moving_mean[at] * keep + mean_d[c] * take);
      moving_variance[at] = static_cast<float>(moving_variance[at] * keep + variance * take);
      saved_mean[at] = mean[c];
      saved_inv_std[at] = inv_std[c];
    }
    scale_of(gamma, inv_std, p, scale);
    shift_of(beta, p, shift);
    normalise(x, y, p, mean, scale, shift);
  });
}

void CpuNormalizationKernels::batch_norm_forward_inference(const float* x, const float* gamma,
                                                           const float* beta, const float* mean,
                                                           const float* variance, float epsilon,
                                                           float* y, index_t rows, index_t channels,
                                                           float* saved_mean,
                                                           float* saved_inv_std) {
  for_each_panel(rows, channels, [&](const Panel& p) {
    float inv_std[kWidth], scale[kWidth], shift[kWidth];
    const float* panel_mean = mean + p.first_channel;
    for (index_t c = 0; c < p.channels; ++c) {
      const index_t at = p.first_channel + c;
      inv_std[c] = static_cast<float>(
          1.0 / std::sqrt(static_cast<double>(variance[at]) + static_cast<double>(epsilon)));
      if (saved_mean) saved_mean[at] = mean[at];
      if (saved_inv_std) saved_inv_std[at] = inv_std[c];
    }
    scale_of(gamma, inv_std, p, scale);
    shift_of(beta, p, shift);
    normalise(x, y, p, panel_mean, scale, shift);
  });
}

void CpuNormalizationKernels::batch_norm_backward(Scratch&, const float* x, const float* dy,
                                                  const float* gamma, const float* saved_mean,
                                                  const float* saved_inv_std, index_t rows,
                                                  index_t channels, bool through_statistics,
                                                  float* dx, float* dgamma, float* dbeta) {
  const double inv_rows = rows > 0 ? 1.0 / static_cast<double>(rows) : 0.0;
  for_each_panel(rows, channels, [&](const Panel& p) {
    double acc_dy[kWidth], acc_dy_xhat[kWidth], sum_dy[kWidth], sum_dy_xhat[kWidth];
    float mean[kWidth], inv_std[kWidth], scale[kWidth];
    spread(saved_mean + p.first_channel, p, mean);
    spread(saved_inv_std + p.first_channel, p, inv_std);
    // Every read of dy happens in this pass, before dx (which may alias dy) is written.
    std::fill(acc_dy, acc_dy + p.width, 0.0);
    std::fill(acc_dy_xhat, acc_dy_xhat + p.width, 0.0);
    for_each_row(p, [&](index_t at, index_t count) {
      const float* in = x + at;
      const float* g = dy + at;
      for (index_t j = 0; j < count; ++j) {
        // One float rounding per product is harmless; their sum is what needs double.
        const float xhat = (in[j] - mean[j]) * inv_std[j];
        acc_dy[j] += static_cast<double>(g[j]);
        acc_dy_xhat[j] += static_cast<double>(g[j] * xhat);
      }
    });
    fold(acc_dy, p, sum_dy);
    fold(acc_dy_xhat, p, sum_dy_xhat);
    for (index_t c = 0; c < p.channels; ++c) {
      if (dbeta) dbeta[p.first_channel + c] = static_cast<float>(sum_dy[c]);
      if (dgamma) dgamma[p.first_channel + c] = static_cast<float>(sum_dy_xhat[c]);
    }
    if (!dx) return;
    float per_channel[kWidth];
    scale_of(gamma, saved_inv_std + p.first_channel, p, per_channel);
    spread(per_channel, p, scale);
    if (!through_statistics) {
      // The statistics were constants: y is affine in x.
      for_each_row(p, [&](index_t at, index_t count) {
        const float* g = dy + at;
        float* out = dx + at;
        for (index_t j = 0; j < count; ++j) out[j] = g[j] * scale[j];
      });
      return;
    }
    // dx = gamma * inv_std * (dy - mean(dy) - xhat * mean(dy * xhat)).
    float mean_dy[kWidth], mean_dy_xhat[kWidth];
    for (index_t c = 0; c < p.channels; ++c)
      per_channel[c] = static_cast<float>(sum_dy[c] * inv_rows);
    spread(per_channel, p, mean_dy);
    for (index_t c = 0; c < p.channels; ++c)
      per_channel[c] = static_cast<float>(sum_dy_xhat[c] * inv_rows);
    spread(per_channel, p, mean_dy_xhat);
    for_each_row(p, [&](index_t at, index_t count) {
      const float* in = x + at;
      const float* g = dy + at;
      float* out = dx + at;
      for (index_t j = 0; j < count; ++j) {
        const float xhat = (in[j] - mean[j]) * inv_std[j];
        out[j] = scale[j] * (g[j] - mean_dy[j] - xhat * mean_dy_xhat[j]);
      }
    });
  });
}

}  // namespace tabula::detail
