#include "backend/cpu/cpu_kernels.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "backend/cpu/gemm/packed_gemm.hpp"
#include "backend/cpu/thread_pool.hpp"
#include "backend/cpu/vector_clones.hpp"
#include "tabula/core/errors.hpp"

namespace tabula::detail {

namespace {

// A GEMM is split only into parts of at least this many multiply-adds (~5 µs on one core): a
// smaller part costs more in hand-over than it saves.
constexpr std::int64_t min_part_work = std::int64_t{1} << 18;

// Part boundaries fall on multiples of this many rows or columns, which most micro-tiles
// divide: a part seldom adds an edge tile (and never changes a value, see gemm below).
constexpr index_t part_align = 16;

// Scratch of each part is rounded to whole cache lines of this many floats.
constexpr index_t floats_per_line = 16;

// At most this many parts for a GEMM of these extents cut along `extent` (m or n): no more
// than the pool's threads, whole minimum-work parts, and part_align-wide steps.
int max_parts(index_t m, index_t n, index_t k, index_t extent) {
  const std::int64_t by_work = m * n * std::max<index_t>(k, 1) / min_part_work;
  const std::int64_t by_extent = extent / part_align;
  return static_cast<int>(std::max<std::int64_t>(
      1, std::min<std::int64_t>({ThreadPool::instance().size(), by_work, by_extent})));
}

// The rows (or columns) of each of `parts` parts of `extent`, in part_align steps.
index_t part_step(index_t extent, int parts) {
  const index_t tiles = (extent + part_align - 1) / part_align;
  return (tiles + parts - 1) / parts * part_align;
}

// Packing floats of each part, rounded to whole cache lines so that parts never share one.
index_t floats_per_part(bool split_rows, index_t m, index_t n, index_t k, index_t step) {
  const index_t floats = best_gemm_kernel().scratch_floats(split_rows ? std::min(m, step) : m,
                                                           split_rows ? n : std::min(n, step), k);
  return (floats + floats_per_line - 1) / floats_per_line * floats_per_line;
}

// How one GEMM is cut into parts: along C's longer side, in 16-aligned steps, each part with
// its own packing buffer of part_floats.
struct GemmPlan {
  GemmPlan(index_t m, index_t n, index_t k)
      : split_rows(m >= n),
        extent(split_rows ? m : n),
        parts(max_parts(m, n, k, extent)),
        step(part_step(extent, parts)),
        part_floats(floats_per_part(split_rows, m, n, k, step)) {}
  std::size_t scratch_floats() const { return static_cast<std::size_t>(part_floats * parts); }

  bool split_rows;
  index_t extent;
  int parts;
  index_t step;
  index_t part_floats;
};

}  // namespace

// Not GemmPlan(m, n, k)'s own need: a smaller GEMM may be cut into fewer, wider parts and need
// more (the part count follows m * n * k). The most any cut of these extents can need, along
// either side into any count of parts it allows, bounds every GEMM up to them, as each part's
// packing grows with every extent.
std::size_t CpuKernels::gemm_scratch_bytes(index_t m, index_t n, index_t k) const {
  if (m <= 0 || n <= 0) return 0;
  std::size_t most = 0;
  for (const bool split_rows : {true, false}) {
    const index_t extent = split_rows ? m : n;
    for (int parts = 1; parts <= max_parts(m, n, k, extent); ++parts) {
      const index_t floats = floats_per_part(split_rows, m, n, k, part_step(extent, parts)) * parts;
      most = std::max(most, static_cast<std::size_t>(floats));
    }
  }
  return most * sizeof(float);
}

// The parts split C along its longer side (never along k), each one packed GEMM on one thread
// with its own packing buffer; a pool that stays awake between a training step's calls repays
// the hand-over even for its small GEMMs (a 128x784x128 layer). The packed GEMM sums every
// element of C in an order fixed by k alone, so the result is bitwise the same on any number of
// threads. The packing buffers are borrowed from `scratch` for this call only.
void CpuKernels::gemm(Scratch& scratch, bool trans_a, bool trans_b, index_t m, index_t n, index_t k,
                      float alpha, const float* a, index_t lda, const float* b, index_t ldb,
                      float beta, float* c, index_t ldc) {
  if (m <= 0 || n <= 0) return;
  const GemmKernel& kernel = best_gemm_kernel();
  const GemmPlan plan(m, n, k);
  const ScratchFloats packing(scratch, plan.scratch_floats());
  const GemmArgs whole{trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc};
  if (plan.parts == 1) return kernel.run(whole, packing.data());
  ThreadPool::instance().run(plan.parts, [&](int part) {
    const index_t begin = part * plan.step;
    const index_t count = std::min(plan.extent, begin + plan.step) - begin;
    if (count <= 0) return;
    GemmArgs g = whole;
    if (plan.split_rows) {
      // Rows begin.. of C and of op(A).
      g.m = count;
      g.a = trans_a ? a + begin : a + begin * lda;
      g.c = c + begin * ldc;
    } else {
      // Columns begin.. of C and of op(B).
      g.n = count;
      g.b = trans_b ? b + begin * ldb : b + begin;
      g.c = c + begin;
    }
    kernel.run(g, packing.data() + part * plan.part_floats);
  });
}

void CpuKernels::sum_rows(Scratch&, const float* dy, float* db, index_t rows, index_t cols) {
  std::fill(db, db + cols, 0.0f);
  for (index_t r = 0; r < rows; ++r) {
    const float* row = dy + r * cols;
    for (index_t c = 0; c < cols; ++c) db[c] += row[c];
  }
}

namespace {

TABULA_VECTOR_CLONES
void add_bias_part(float* y, const float* bias, index_t rows, index_t cols) {
  for (index_t r = 0; r < rows; ++r) {
    float* row = y + r * cols;
    for (index_t c = 0; c < cols; ++c) row[c] += bias[c];
  }
}

TABULA_VECTOR_CLONES
void activation_forward_part(Activation f, const float* x, float* y, index_t rows,
                             index_t cols) {
  const index_t n = rows * cols;
  switch (f) {
    case Activation::linear:
      if (x != y) std::memcpy(y, x, static_cast<std::size_t>(n) * sizeof(float));
      return;
    case Activation::relu:
      for (index_t i = 0; i < n; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
      return;
    case Activation::sigmoid:
      for (index_t i = 0; i < n; ++i) y[i] = 1.0f / (1.0f + std::exp(-x[i]));
      return;
    case Activation::tanh:
      for (index_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
      return;
    case Activation::softmax:
      for (index_t r = 0; r < rows; ++r) {
        const float* in = x + r * cols;
        float* out = y + r * cols;
        const float top = *std::max_element(in, in + cols);
        float sum = 0.0f;
        for (index_t c = 0; c < cols; ++c) {
          out[c] = std::exp(in[c] - top);
          sum += out[c];
        }
        const float inv = 1.0f / sum;
        for (index_t c = 0; c < cols; ++c) out[c] *= inv;
      }
      return;
  }
}

TABULA_VECTOR_CLONES
void activation_backward_part(Activation f, const float* y, const float* dy, float* dx,
                              index_t rows, index_t cols) {
  const index_t n = rows * cols;
  switch (f) {
    case Activation::linear:
      if (dx != dy) std::memcpy(dx, dy, static_cast<std::size_t>(n) * sizeof(float));
      return;
    case Activation::relu:
      // Loading dy first makes this a select, not a branch that mispredicts on random signs.
      for (index_t i = 0; i < n; ++i) {
        const float g = dy[i];
        dx[i] = y[i] > 0.0f ? g : 0.0f;
      }
      return;
    case Activation::sigmoid:
      for (index_t i = 0; i < n; ++i) dx[i] = dy[i] * y[i] * (1.0f - y[i]);
      return;
    case Activation::tanh:
      for (index_t i = 0; i < n; ++i) dx[i] = dy[i] * (1.0f - y[i] * y[i]);
      return;
    case Activation::softmax:
      for (index_t r = 0; r < rows; ++r) {
        const float* p = y + r * cols;
        const float* g = dy + r * cols;
        float* out = dx + r * cols;
        float dot = 0.0f;
        for (index_t c = 0; c < cols; ++c) dot += g[c] * p[c];
        for (index_t c = 0; c < cols; ++c) out[c] = p[c] * (g[c] - dot);
      }
      return;
  }
}

// Rows are independent: any split gives bitwise the same values.
template <typename F>
void over_rows(index_t rows, index_t cols, F&& part) {
  ThreadPool::instance().run_over(rows, cols, part);
}

}  // namespace

void CpuKernels::add_bias(float* y, const float* bias, index_t rows, index_t cols) {
  over_rows(rows, cols, [&](index_t at, index_t n) { add_bias_part(y + at * cols, bias, n, cols); });
}

void CpuKernels::activation_forward(Activation f, const float* x, float* y, index_t rows,
                                    index_t cols) {
  over_rows(rows, cols, [&](index_t at, index_t n) {
    activation_forward_part(f, x + at * cols, y + at * cols, n, cols);
  });
}

void CpuKernels::activation_backward(Activation f, const float* y, const float* dy, float* dx,
                                     index_t rows, index_t cols) {
  over_rows(rows, cols, [&](index_t at, index_t n) {
    activation_backward_part(f, y + at * cols, dy + at * cols, dx + at * cols, n, cols);
  });
}

void CpuKernels::transpose(const float* a, index_t rows, index_t cols, float* t) {
  // Tiles that keep both the rows read and the rows written in cache.
  constexpr index_t kTile = 32;
  for (index_t r0 = 0; r0 < rows; r0 += kTile)
    for (index_t c0 = 0; c0 < cols; c0 += kTile)
      for (index_t r = r0; r < std::min(rows, r0 + kTile); ++r)
        for (index_t c = c0; c < std::min(cols, c0 + kTile); ++c) t[c * rows + r] = a[r * cols + c];
}

void CpuKernels::multiply(const float* x, const float* mask, float scale, float* y, index_t n) {
  for (index_t i = 0; i < n; ++i) y[i] = x[i] * mask[i] * scale;
}

void CpuKernels::dropout_mask(float* mask, index_t n, float rate, RandomGenerator& rng) {
  rng.fill_uniform(mask, static_cast<std::size_t>(n), 0.0f, 1.0f);
  for (index_t i = 0; i < n; ++i) mask[i] = mask[i] >= rate ? 1.0f : 0.0f;
}

// ---- convolution as GEMM over unfolded patches (NHWC, patch order kh, kw, c) -------------

namespace {

void im2col_part(const Window2d& w, const float* x, index_t first, index_t count,
                 float* columns) {
  const index_t patch = w.kernel_h * w.kernel_w * w.channels;
  const std::size_t row_bytes = static_cast<std::size_t>(w.channels) * sizeof(float);
  for (index_t s = 0; s < count; ++s) {
    const float* image = x + (first + s) * w.in_h * w.in_w * w.channels;
    for (index_t oh = 0; oh < w.out_h; ++oh) {
      for (index_t ow = 0; ow < w.out_w; ++ow) {
        float* out = columns + ((s * w.out_h + oh) * w.out_w + ow) * patch;
        for (index_t kh = 0; kh < w.kernel_h; ++kh) {
          const index_t ih = oh * w.stride_h - w.pad_top + kh;
          const index_t iw0 = ow * w.stride_w - w.pad_left;
          if (ih >= 0 && ih < w.in_h && iw0 >= 0 && iw0 + w.kernel_w <= w.in_w) {
            // The whole kernel row lies inside the image: its kw * C floats are contiguous.
            std::memcpy(out, image + (ih * w.in_w + iw0) * w.channels, row_bytes * w.kernel_w);
            out += w.kernel_w * w.channels;
            continue;
          }
          for (index_t kw = 0; kw < w.kernel_w; ++kw, out += w.channels) {
            const index_t iw = iw0 + kw;
            if (ih < 0 || ih >= w.in_h || iw < 0 || iw >= w.in_w) {
              std::memset(out, 0, row_bytes);
            } else {
              std::memcpy(out, image + (ih * w.in_w + iw) * w.channels, row_bytes);
            }
          }
        }
      }
    }
  }
}

void col2im_part(const Window2d& w, const float* columns, index_t first, index_t count,
                 float* dx) {
  const index_t patch = w.kernel_h * w.kernel_w * w.channels;
  const index_t image_size = w.in_h * w.in_w * w.channels;
  std::fill(dx + first * image_size, dx + (first + count) * image_size, 0.0f);
  for (index_t s = 0; s < count; ++s) {
    float* image = dx + (first + s) * image_size;
    for (index_t oh = 0; oh < w.out_h; ++oh) {
      for (index_t ow = 0; ow < w.out_w; ++ow) {
        const float* in = columns + ((s * w.out_h + oh) * w.out_w + ow) * patch;
        for (index_t kh = 0; kh < w.kernel_h; ++kh) {
          const index_t ih = oh * w.stride_h - w.pad_top + kh;
          for (index_t kw = 0; kw < w.kernel_w; ++kw, in += w.channels) {
            const index_t iw = ow * w.stride_w - w.pad_left + kw;
            if (ih < 0 || ih >= w.in_h || iw < 0 || iw >= w.in_w) continue;
            float* target = image + (ih * w.in_w + iw) * w.channels;
            for (index_t c = 0; c < w.channels; ++c) target[c] += in[c];
          }
        }
      }
    }
  }
}

// Floats of columns per sample. Each sample has its own rows of the columns and its own
// input gradient, so unfolding and folding run over samples in parts.
index_t columns_per_sample(const Window2d& w) {
  return w.out_h * w.out_w * w.kernel_h * w.kernel_w * w.channels;
}

}  // namespace

void CpuKernels::im2col(const Window2d& w, const float* x, index_t first, index_t count,
                        float* columns) {
  const index_t per_sample = columns_per_sample(w);
  ThreadPool::instance().run_over(count, per_sample, [&](index_t at, index_t n) {
    im2col_part(w, x, first + at, n, columns + at * per_sample);
  });
}

void CpuKernels::col2im(const Window2d& w, const float* columns, index_t first, index_t count,
                        float* dx) {
  const index_t per_sample = columns_per_sample(w);
  ThreadPool::instance().run_over(count, per_sample, [&](index_t at, index_t n) {
    col2im_part(w, columns + at * per_sample, first + at, n, dx);
  });
}

// ---- pooling ----------------------------------------------------------------------------

namespace {

// Calls f(oh, ow, h0, h1, w0, w1) with the window clipped to the input for every output.
// Inlined, so that a caller's vector clones (TABULA_VECTOR_CLONES) hold its loops too.
template <typename F>
[[gnu::always_inline]] inline void for_each_window(const Window2d& w, F&& f) {
  for (index_t oh = 0; oh < w.out_h; ++oh) {
    const index_t h_start = oh * w.stride_h - w.pad_top;
    const index_t h0 = std::max<index_t>(h_start, 0);
    const index_t h1 = std::min<index_t>(h_start + w.kernel_h, w.in_h);
    for (index_t ow = 0; ow < w.out_w; ++ow) {
      const index_t w_start = ow * w.stride_w - w.pad_left;
      const index_t w0 = std::max<index_t>(w_start, 0);
      const index_t w1 = std::min<index_t>(w_start + w.kernel_w, w.in_w);
      f(oh, ow, h0, h1, w0, w1);
    }
  }
}

}  // namespace

namespace {

// Pooling runs over samples in parts: samples are independent, so the parts give bitwise the
// result of one pass.

// Folds the C channels of one input position (x + at) into the running maxima out, and with
// kArgmax their positions arg: a larger value replaces the maximum, so ties keep the first.
// Selects, not branches, so the loop vectorises.
template <bool kArgmax>
[[gnu::always_inline]] inline void fold_max(const float* x, index_t at, index_t C,
                                            float* __restrict out, std::int32_t* __restrict arg) {
  for (index_t c = 0; c < C; ++c) {
    const float v = x[at + c];
    const bool larger = v > out[c];
    out[c] = larger ? v : out[c];
    if constexpr (kArgmax) arg[c] = larger ? static_cast<std::int32_t>(at + c) : arg[c];
  }
}

// The samples' maxima, and with kArgmax their positions (a training pass; inference has none
// to keep). Inlined into max_pool_samples' clones, so that each loop vectorises for each.
template <bool kArgmax>
[[gnu::always_inline]] inline void max_pool_samples_of(const Window2d& w, const float* x, float* y,
                                                       std::int32_t* argmax, index_t first_sample,
                                                       index_t samples) {
  const index_t C = w.channels;
  for (index_t n = first_sample; n < first_sample + samples; ++n) {
    const index_t in_base = n * w.in_h * w.in_w * C;
    const index_t out_base = n * w.out_h * w.out_w * C;
    for_each_window(w, [&](index_t oh, index_t ow, index_t h0, index_t h1, index_t w0, index_t w1) {
      float* out = y + out_base + (oh * w.out_w + ow) * C;
      std::int32_t* arg = kArgmax ? argmax + out_base + (oh * w.out_w + ow) * C : nullptr;
      // Start from the window's first element (windows are never empty); folding it in again
      // changes nothing, as it is not larger than itself.
      const index_t first = in_base + (h0 * w.in_w + w0) * C;
      for (index_t c = 0; c < C; ++c) {
        out[c] = x[first + c];
        if constexpr (kArgmax) arg[c] = static_cast<std::int32_t>(first + c);
      }
      for (index_t ih = h0; ih < h1; ++ih)
        for (index_t iw = w0; iw < w1; ++iw)
          fold_max<kArgmax>(x, in_base + (ih * w.in_w + iw) * C, C, out, arg);
    });
  }
}

TABULA_VECTOR_CLONES
void max_pool_samples(const Window2d& w, const float* x, float* y, std::int32_t* argmax,
                      index_t first_sample, index_t samples) {
  if (argmax)
    max_pool_samples_of<true>(w, x, y, argmax, first_sample, samples);
  else
    max_pool_samples_of<false>(w, x, y, nullptr, first_sample, samples);
}

// Samples [first, first + count): their outputs' gradients go to their own inputs only.
void max_pool_backward_samples(const Window2d& w, const float* dy, const std::int32_t* argmax,
                               float* dx, index_t first_sample, index_t samples) {
  const index_t in_size = w.in_h * w.in_w * w.channels;
  const index_t out_size = w.out_h * w.out_w * w.channels;
  std::fill(dx + first_sample * in_size, dx + (first_sample + samples) * in_size, 0.0f);
  for (index_t i = first_sample * out_size; i < (first_sample + samples) * out_size; ++i)
    dx[argmax[i]] += dy[i];
}

}  // namespace

void CpuKernels::max_pool_forward(const Window2d& w, const float* x, float* y,
                                  std::int32_t* argmax) {
  ThreadPool::instance().run_over(
      w.batch, w.out_h * w.out_w * w.channels,
      [&](index_t first, index_t count) { max_pool_samples(w, x, y, argmax, first, count); });
}

void CpuKernels::max_pool_backward(const Window2d& w, const float* dy, const std::int32_t* argmax,
                                   float* dx) {
  ThreadPool::instance().run_over(w.batch, w.out_h * w.out_w * w.channels,
                                  [&](index_t first, index_t count) {
                                    max_pool_backward_samples(w, dy, argmax, dx, first, count);
                                  });
}

void CpuKernels::avg_pool_forward(const Window2d& w, const float* x, float* y) {
  const index_t C = w.channels;
  for (index_t n = 0; n < w.batch; ++n) {
    const index_t in_base = n * w.in_h * w.in_w * C;
    const index_t out_base = n * w.out_h * w.out_w * C;
    for_each_window(w, [&](index_t oh, index_t ow, index_t h0, index_t h1, index_t w0,
                           index_t w1) {
      float* out = y + out_base + (oh * w.out_w + ow) * C;
      std::fill(out, out + C, 0.0f);
      for (index_t ih = h0; ih < h1; ++ih)
        for (index_t iw = w0; iw < w1; ++iw) {
          const float* in = x + in_base + (ih * w.in_w + iw) * C;
          for (index_t c = 0; c < C; ++c) out[c] += in[c];
        }
      const float inv = 1.0f / static_cast<float>((h1 - h0) * (w1 - w0));
      for (index_t c = 0; c < C; ++c) out[c] *= inv;
    });
  }
}

void CpuKernels::avg_pool_backward(const Window2d& w, const float* dy, float* dx) {
  const index_t C = w.channels;
  std::fill(dx, dx + w.batch * w.in_h * w.in_w * C, 0.0f);
  for (index_t n = 0; n < w.batch; ++n) {
    const index_t in_base = n * w.in_h * w.in_w * C;
    const index_t out_base = n * w.out_h * w.out_w * C;
    for_each_window(w, [&](index_t oh, index_t ow, index_t h0, index_t h1, index_t w0,
                           index_t w1) {
      const float* g = dy + out_base + (oh * w.out_w + ow) * C;
      const float inv = 1.0f / static_cast<float>((h1 - h0) * (w1 - w0));
      for (index_t ih = h0; ih < h1; ++ih)
        for (index_t iw = w0; iw < w1; ++iw) {
          float* d = dx + in_base + (ih * w.in_w + iw) * C;
          for (index_t c = 0; c < C; ++c) d[c] += g[c] * inv;
        }
    });
  }
}

}  // namespace tabula::detail
