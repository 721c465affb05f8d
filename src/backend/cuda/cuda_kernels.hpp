#pragma once
// The kernels of one CUDA device: cuBLAS for the GEMM, tabula's own kernels (kernel_bodies.hpp
// run over a grid) for the rest. Every call is queued on the calling thread's stream
// (`Stream`) and returns without waiting; copies to the host wait for it.

#include "backend/detail/kernels.hpp"

namespace tabula::detail {

class CudaKernels final : public Kernels {
 public:
  explicit CudaKernels(Device device) : device_(device) {}

  /// The session's cuBLAS handle and workspace (`CublasContext`) and reduction buffer
  /// (`CudaReduction`).
  void prepare(Scratch& scratch) override;
  /// 0: cuBLAS works in the session's workspace (`CublasContext`), not in per-call scratch.
  std::size_t gemm_scratch_bytes(index_t m, index_t n, index_t k) const override;
  void gemm(Scratch& scratch, bool trans_a, bool trans_b, index_t m, index_t n, index_t k,
            float alpha, const float* a, index_t lda, const float* b, index_t ldb, float beta,
            float* c, index_t ldc) override;
  void add_bias(float* y, const float* bias, index_t rows, index_t cols) override;
  void sum_rows(Scratch& scratch, const float* dy, float* db, index_t rows, index_t cols) override;
  void activation_forward(Activation f, const float* x, float* y, index_t rows,
                          index_t cols) override;
  void activation_backward(Activation f, const float* y, const float* dy, float* dx, index_t rows,
                           index_t cols) override;
  /// One launch for an elementwise f with a bias; softmax (a row's) after the bias, as two.
  void bias_activation(float* y, const float* bias, Activation f, index_t rows,
                       index_t cols) override;
  void transpose(const float* a, index_t rows, index_t cols, float* t) override;
  void multiply(const float* x, const float* mask, float scale, float* y, index_t n) override;
  void dropout_mask(float* mask, index_t n, float rate, RandomGenerator& rng) override;
  void im2col(const Window2d& w, const float* x, index_t first, index_t count,
              float* columns) override;
  void col2im(const Window2d& w, const float* columns, index_t first, index_t count,
              float* dx) override;
  void max_pool_forward(const Window2d& w, const float* x, float* y, std::int32_t* argmax) override;
  void max_pool_backward(const Window2d& w, const float* dy, const std::int32_t* argmax,
                         float* dx) override;
  void avg_pool_forward(const Window2d& w, const float* x, float* y) override;
  void avg_pool_backward(const Window2d& w, const float* dy, float* dx) override;
  void loss_rows(LossKind kind, const ScoredBatch& batch, bool fused, float* grad, float grad_scale,
                 ScoreMatrix scores) override;
  void metric_rows(MetricKind kind, const ScoredBatch& batch, ScoreMatrix scores,
                   index_t column) override;
  void sum_scores(ScoreMatrix scores, index_t rows, double* device_sums,
                  double* host_sums) override;
  void sgd_update(float* w, const float* g, float* velocity, index_t n, float lr, float momentum,
                  bool nesterov) override;
  void adam_update(float* w, const float* g, float* m, float* v, index_t n, float step,
                   float beta_1, float beta_2, float epsilon, float decay) override;
  void rmsprop_update(float* w, const float* g, float* mean_square, float* momentum_buf, index_t n,
                      float lr, float rho, float momentum, float epsilon) override;
  /// The batched updates: one launch for up to 32 tensors (tensor_chunks.hpp).
  void sgd_update_many(std::span<const UpdateTensor> tensors, float lr, float momentum,
                       bool nesterov) override;
  void adam_update_many(std::span<const UpdateTensor> tensors, float step, float beta_1,
                        float beta_2, float epsilon, float decay) override;
  void rmsprop_update_many(std::span<const UpdateTensor> tensors, float lr, float rho,
                           float momentum, float epsilon) override;

 private:
  Device device_;
};

/// The kernels of CUDA device `device`. @throws Error when no such device is present.
Kernels& cuda_kernels_for(Device device);

}  // namespace tabula::detail
