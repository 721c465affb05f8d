#pragma once
// The kernel interface of a device: every numeric operation layers, losses and optimizers
// need, on raw float32 buffers that live on that device. Kernels never allocate on their own:
// scratch memory comes from the caller's session (category workspace), as a buffer the
// caller holds or as a `Scratch` the kernel borrows from for the length of the call.
//
// One implementation per device (cpu/, cuda/), chosen once per call site by
// kernels_for(device), so no operation carries an if/else over backends.

#include <cstdint>
#include <span>

#include "backend/detail/scoring.hpp"
#include "backend/detail/scratch.hpp"
#include "tabula/core/device.hpp"
#include "tabula/nn/activation.hpp"
#include "tabula/session/random_generator.hpp"

namespace tabula::detail {

using index_t = std::int64_t;

/// Extents of one GEMM: op(A) is m x k, op(B) is k x n.
struct GemmExtents {
  index_t m, n, k;
};

/// Geometry of a 2-D convolution or pooling window over NHWC data.
struct Window2d {
  index_t batch, in_h, in_w, channels;
  index_t kernel_h, kernel_w, stride_h, stride_w;
  index_t pad_top, pad_left;
  index_t out_h, out_w;
};

/// One parameter of a batched optimizer update: its weights, gradient and element count, and
/// the rule's state buffers in the order its single update takes them (null where it has fewer).
struct UpdateTensor {
  float* w = nullptr;
  const float* g = nullptr;
  float* state0 = nullptr;
  float* state1 = nullptr;
  index_t n = 0;
};

class Kernels {
 public:
  virtual ~Kernels() = default;

  /// Makes now what the first kernel call with `scratch` would make in its owner's session
  /// (a library handle and its workspace), so that a training step never has to. Nothing on
  /// the CPU. @throws OutOfMemory, Error.
  virtual void prepare(Scratch& scratch) { (void)scratch; }

  /// Bytes of scratch that serve `gemm` for these extents, or any smaller ones, on the current
  /// thread count: what a layer reserves for its largest batch serves its last, smaller one.
  virtual std::size_t gemm_scratch_bytes(index_t m, index_t n, index_t k) const = 0;
  /// C = alpha * op(A) * op(B) + beta * C; row-major; op(A) is m x k, op(B) is k x n. Packing
  /// buffers come from `scratch` and are returned before it returns. With beta == 0, C is
  /// not read. @throws OutOfMemory when the scratch cannot be had (C untouched).
  virtual void gemm(Scratch& scratch, bool trans_a, bool trans_b, index_t m, index_t n, index_t k,
                    float alpha, const float* a, index_t lda, const float* b, index_t ldb,
                    float beta, float* c, index_t ldc) = 0;

  /// y[r, :] += bias for every row r.
  virtual void add_bias(float* y, const float* bias, index_t rows, index_t cols) = 0;
  /// db = sum over rows of dy (db overwritten). The CPU sums the rows in order; a GPU sums
  /// parts of the rows apart first, in a buffer of the session's (`scratch`'s context, which
  /// `prepare` makes), then the parts, in a fixed order: the same result every run.
  virtual void sum_rows(Scratch& scratch, const float* dy, float* db, index_t rows,
                        index_t cols) = 0;

  /// y = f(x), elementwise or row-wise (softmax over `cols`). x and y may alias.
  virtual void activation_forward(Activation f, const float* x, float* y, index_t rows,
                                  index_t cols) = 0;
  /// y[r, :] = f(y[r, :] + bias) for every row r (bias null: f alone), in place: add_bias and
  /// activation_forward, the defaults' two calls, which a device may make one pass.
  virtual void bias_activation(float* y, const float* bias, Activation f, index_t rows,
                               index_t cols);
  /// dx = f'(x) * dy computed from the output y = f(x). dy and dx may alias.
  virtual void activation_backward(Activation f, const float* y, const float* dy, float* dx,
                                   index_t rows, index_t cols) = 0;

  /// t = a^T for row-major `a` (rows x cols); t is (cols x rows) and does not overlap a.
  virtual void transpose(const float* a, index_t rows, index_t cols, float* t) = 0;

  /// y = x * mask * scale with mask[i] in {0, 1}; mask drawn by the caller.
  virtual void multiply(const float* x, const float* mask, float scale, float* y,
                        index_t n) = 0;
  /// mask[i] = 0 with probability `rate`, else 1, drawn from `rng` (which advances).
  virtual void dropout_mask(float* mask, index_t n, float rate, RandomGenerator& rng) = 0;

  /// Unfolds NHWC `x` for samples [first, first + count) into rows of (kh, kw, c) patches.
  virtual void im2col(const Window2d& w, const float* x, index_t first, index_t count,
                      float* columns) = 0;
  /// Folds patch gradients back into NHWC `dx` (overwrites the samples' dx).
  virtual void col2im(const Window2d& w, const float* columns, index_t first, index_t count,
                      float* dx) = 0;

  /// Max pooling; `argmax` records the flat input index of each output's maximum (null: not
  /// wanted, as at inference).
  virtual void max_pool_forward(const Window2d& w, const float* x, float* y,
                                std::int32_t* argmax) = 0;
  virtual void max_pool_backward(const Window2d& w, const float* dy,
                                 const std::int32_t* argmax, float* dx) = 0;
  /// Average pooling over the window's elements inside the input (padding not counted).
  virtual void avg_pool_forward(const Window2d& w, const float* x, float* y) = 0;
  virtual void avg_pool_backward(const Window2d& w, const float* dy, float* dx) = 0;

  // ---- scoring a batch (scoring_bodies.hpp has the formulas) -----------------------------
  /// Each row's loss terms (and bad-label flag) into `scores`; the gradient, scaled by
  /// `grad_scale`, into `grad` unless it is null. `grad` may not alias the batch.
  virtual void loss_rows(LossKind kind, const ScoredBatch& batch, bool fused, float* grad,
                         float grad_scale, ScoreMatrix scores) = 0;
  /// Each row's correct predictions into column `column` of `scores`.
  virtual void metric_rows(MetricKind kind, const ScoredBatch& batch, ScoreMatrix scores,
                           index_t column) = 0;
  /// The sums over `rows` of every column of `scores`, read back into the host array
  /// `host_sums` (scores.stride values): waits for the kernels queued before it, the one
  /// read-back a training step makes. `device_sums` (scores.stride doubles on the device,
  /// from the caller's scratch) is where a device sums before the copy; the CPU ignores it.
  virtual void sum_scores(ScoreMatrix scores, index_t rows, double* device_sums,
                          double* host_sums) = 0;

  // ---- optimizer updates (Keras's formulas) ---------------------------------------------
  /// Plain SGD, or with momentum: v = momentum * v - lr * g; w += v (nesterov:
  /// w += momentum * v - lr * g). `velocity` is null without momentum.
  virtual void sgd_update(float* w, const float* g, float* velocity, index_t n, float lr,
                          float momentum, bool nesterov) = 0;
  /// m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2); w -= step * m / (sqrt(v) + eps), with
  /// `step` the bias-corrected learning rate; first w -= decay * w (AdamW; 0 for Adam).
  virtual void adam_update(float* w, const float* g, float* m, float* v, index_t n, float step,
                           float beta_1, float beta_2, float epsilon, float decay) = 0;
  /// ms = rho * ms + (1 - rho) g^2; delta = lr * g / (sqrt(ms) + eps); with momentum:
  /// mom = momentum * mom + delta, w -= mom; else w -= delta.
  virtual void rmsprop_update(float* w, const float* g, float* mean_square, float* momentum_buf,
                              index_t n, float lr, float rho, float momentum, float epsilon) = 0;

  // ---- the same updates for every parameter at once ---------------------------------------
  // A device may run many in one launch (CUDA: up to 32 a launch); by default they are one
  // call each. No two tensors may overlap.
  /// sgd_update of each tensor (state0: velocity).
  virtual void sgd_update_many(std::span<const UpdateTensor> tensors, float lr, float momentum,
                               bool nesterov);
  /// adam_update of each tensor (state0: m, state1: v).
  virtual void adam_update_many(std::span<const UpdateTensor> tensors, float step, float beta_1,
                                float beta_2, float epsilon, float decay);
  /// rmsprop_update of each tensor (state0: mean square, state1: momentum).
  virtual void rmsprop_update_many(std::span<const UpdateTensor> tensors, float lr, float rho,
                                   float momentum, float epsilon);
};

/// The kernels of `device`. @throws Error when the device has no kernels in this build.
Kernels& kernels_for(Device device);

}  // namespace tabula::detail
