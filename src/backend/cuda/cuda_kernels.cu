#include <limits>
#include <mutex>

#include "backend/cuda/cublas_context.hpp"
#include "backend/cuda/cublas_library.hpp"
#include "backend/cuda/cuda_kernels.hpp"
#include "backend/cuda/cuda_launch.cuh"
#include "backend/cuda/cuda_reduction.hpp"
#include "backend/cuda/kernel_bodies.hpp"
#include "backend/cuda/per_device.hpp"
#include "tabula/core/errors.hpp"

namespace tabula::detail {

Kernels& cuda_kernels_for(Device device) { return per_device<CudaKernels>(device, "CUDA kernels"); }

void CudaKernels::prepare(Scratch& scratch) {
  (void)scratch.context(&CublasContext::make);
  (void)scratch.context(&CudaReduction::make);
}

std::size_t CudaKernels::gemm_scratch_bytes(index_t, index_t, index_t) const { return 0; }

// Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: cuBLAS gets B first, with
// the row-major leading dimensions unchanged.
void CudaKernels::gemm(Scratch& scratch, bool trans_a, bool trans_b, index_t m, index_t n,
                       index_t k, float alpha, const float* a, index_t lda, const float* b,
                       index_t ldb, float beta, float* c, index_t ldc) {
  if (m <= 0 || n <= 0) return;
  const Stream stream = Stream::for_device(device_);
  if (k <= 0) {
    for_each_index(
        stream, m * n, [=] __device__(index_t i) { bodies::scale_matrix(i, c, n, ldc, beta); },
        "GEMM with k = 0");
    return;
  }
  constexpr index_t kMaxInt = std::numeric_limits<int>::max();
  TABULA_EXPECT(m <= kMaxInt && n <= kMaxInt && k <= kMaxInt && lda <= kMaxInt && ldb <= kMaxInt &&
                    ldc <= kMaxInt,
                InvalidArgument, "extents of a GEMM on " << device_.str(),
                "each at most " << kMaxInt << " (cuBLAS takes int)",
                "m " << m << ", n " << n << ", k " << k << ", lda " << lda << ", ldb " << ldb
                     << ", ldc " << ldc);
  auto& context = static_cast<CublasContext&>(scratch.context(&CublasContext::make));
  std::unique_lock lock(context.mutex());
  cublasHandle_t handle = context.bind(stream, lock);
  check_cublas(CublasLibrary::get().sgemm(handle, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                                          trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, static_cast<int>(n),
                                          static_cast<int>(m), static_cast<int>(k), &alpha, b,
                                          static_cast<int>(ldb), a, static_cast<int>(lda), &beta, c,
                                          static_cast<int>(ldc)),
               "cublasSgemm");
}

void CudaKernels::add_bias(float* y, const float* bias, index_t rows, index_t cols) {
  for_each_index(
      Stream::for_device(device_), rows * cols,
      [=] __device__(index_t i) { bodies::add_bias(i, y, bias, cols); }, "add_bias");
}

// A thread per column alone would leave a GPU idle when there are few columns and many rows (a
// convolution's bias: 32 columns of 43,264 rows at batch 64): parts of the rows go first, a
// thread per (part, column), into the session's reduction buffer; then a thread per column
// sums its parts.
void CudaKernels::sum_rows(Scratch& scratch, const float* dy, float* db, index_t rows,
                           index_t cols) {
  if (cols <= 0) return;
  const Stream stream = Stream::for_device(device_);
  auto& reduction = static_cast<CudaReduction&>(scratch.context(&CudaReduction::make));
  const index_t parts = bodies::column_sum_parts(rows, cols, CudaReduction::kFloats);
  if (parts == 1) {
    for_each_index(
        stream, cols, [=] __device__(index_t j) { bodies::sum_column(j, dy, db, rows, cols); },
        "sum_rows");
    return;
  }
  const index_t span = (rows + parts - 1) / parts;
  float* partial = reduction.data();
  for_each_index(
      stream, parts * cols,
      [=] __device__(index_t i) { bodies::sum_column_part(i, dy, partial, rows, cols, span); },
      "sum_rows (parts)");
  for_each_index(
      stream, cols, [=] __device__(index_t j) { bodies::sum_column(j, partial, db, parts, cols); },
      "sum_rows (columns)");
}

void CudaKernels::activation_forward(Activation f, const float* x, float* y, index_t rows,
                                     index_t cols) {
  const Stream stream = Stream::for_device(device_);
  if (f == Activation::softmax) {
    for_each_index(
        stream, rows, [=] __device__(index_t r) { bodies::softmax_row(r, x, y, cols); }, "softmax");
    return;
  }
  if (f == Activation::linear && x == y) return;
  for_each_index(
      stream, rows * cols, [=] __device__(index_t i) { bodies::activation_forward(i, f, x, y); },
      "activation_forward");
}

void CudaKernels::bias_activation(float* y, const float* bias, Activation f, index_t rows,
                                  index_t cols) {
  if (bias == nullptr || f == Activation::softmax)
    return Kernels::bias_activation(y, bias, f, rows, cols);
  for_each_index(
      Stream::for_device(device_), rows * cols,
      [=] __device__(index_t i) { bodies::bias_activation(i, f, y, bias, cols); },
      "bias_activation");
}

void CudaKernels::activation_backward(Activation f, const float* y, const float* dy, float* dx,
                                      index_t rows, index_t cols) {
  const Stream stream = Stream::for_device(device_);
  if (f == Activation::softmax) {
    for_each_index(
        stream, rows,
        [=] __device__(index_t r) { bodies::softmax_backward_row(r, y, dy, dx, cols); },
        "softmax backward");
    return;
  }
  if (f == Activation::linear && dy == dx) return;
  for_each_index(
      stream, rows * cols,
      [=] __device__(index_t i) { bodies::activation_backward(i, f, y, dy, dx); },
      "activation_backward");
}

void CudaKernels::transpose(const float* a, index_t rows, index_t cols, float* t) {
  for_each_index(
      Stream::for_device(device_), rows * cols,
      [=] __device__(index_t i) { bodies::transpose(i, a, rows, cols, t); }, "transpose");
}

void CudaKernels::multiply(const float* x, const float* mask, float scale, float* y, index_t n) {
  for_each_index(
      Stream::for_device(device_), n,
      [=] __device__(index_t i) { bodies::multiply(i, x, mask, scale, y); }, "multiply");
}

void CudaKernels::dropout_mask(float* mask, index_t n, float rate, RandomGenerator& rng) {
  // One draw from the session's generator seeds the whole mask (counter-based on the device).
  std::uint32_t block[4];
  rng.next_block(block);
  const std::uint64_t seed = (std::uint64_t{block[0]} << 32) | block[1];
  for_each_index(
      Stream::for_device(device_), n,
      [=] __device__(index_t i) { bodies::dropout_mask(i, mask, rate, seed); }, "dropout_mask");
}

void CudaKernels::im2col(const Window2d& w, const float* x, index_t first, index_t count,
                         float* columns) {
  const Window2d g = w;
  const index_t n = count * g.out_h * g.out_w * g.kernel_h * g.kernel_w * g.channels;
  for_each_index(
      Stream::for_device(device_), n,
      [=] __device__(index_t i) { bodies::im2col(i, g, x, first, columns); }, "im2col");
}

void CudaKernels::col2im(const Window2d& w, const float* columns, index_t first, index_t count,
                         float* dx) {
  const Window2d g = w;
  const index_t n = count * g.in_h * g.in_w * g.channels;
  for_each_index(
      Stream::for_device(device_), n,
      [=] __device__(index_t i) { bodies::col2im(i, g, columns, first, dx); }, "col2im");
}

void CudaKernels::max_pool_forward(const Window2d& w, const float* x, float* y,
                                   std::int32_t* argmax) {
  const Window2d g = w;
  for_each_index(
      Stream::for_device(device_), g.batch * g.out_h * g.out_w * g.channels,
      [=] __device__(index_t i) { bodies::max_pool_forward(i, g, x, y, argmax); },
      "max_pool_forward");
}

void CudaKernels::max_pool_backward(const Window2d& w, const float* dy, const std::int32_t* argmax,
                                    float* dx) {
  const Window2d g = w;
  for_each_index(
      Stream::for_device(device_), g.batch * g.in_h * g.in_w * g.channels,
      [=] __device__(index_t i) { bodies::max_pool_backward(i, g, dy, argmax, dx); },
      "max_pool_backward");
}

void CudaKernels::avg_pool_forward(const Window2d& w, const float* x, float* y) {
  const Window2d g = w;
  for_each_index(
      Stream::for_device(device_), g.batch * g.out_h * g.out_w * g.channels,
      [=] __device__(index_t i) { bodies::avg_pool_forward(i, g, x, y); }, "avg_pool_forward");
}

void CudaKernels::avg_pool_backward(const Window2d& w, const float* dy, float* dx) {
  const Window2d g = w;
  for_each_index(
      Stream::for_device(device_), g.batch * g.in_h * g.in_w * g.channels,
      [=] __device__(index_t i) { bodies::avg_pool_backward(i, g, dy, dx); }, "avg_pool_backward");
}

void CudaKernels::sgd_update(float* w, const float* g, float* velocity, index_t n, float lr,
                             float momentum, bool nesterov) {
  for_each_index(
      Stream::for_device(device_), n,
      [=] __device__(index_t i) { bodies::sgd_update(i, w, g, velocity, lr, momentum, nesterov); },
      "sgd_update");
}

void CudaKernels::adam_update(float* w, const float* g, float* m, float* v, index_t n, float step,
                              float beta_1, float beta_2, float epsilon, float decay) {
  for_each_index(
      Stream::for_device(device_), n,
      [=] __device__(index_t i) {
        bodies::adam_update(i, w, g, m, v, step, beta_1, beta_2, epsilon, decay);
      },
      "adam_update");
}

void CudaKernels::rmsprop_update(float* w, const float* g, float* mean_square, float* momentum_buf,
                                 index_t n, float lr, float rho, float momentum, float epsilon) {
  for_each_index(
      Stream::for_device(device_), n,
      [=] __device__(index_t i) {
        bodies::rmsprop_update(i, w, g, mean_square, momentum_buf, lr, rho, momentum, epsilon);
      },
      "rmsprop_update");
}

void CudaKernels::sgd_update_many(std::span<const UpdateTensor> tensors, float lr, float momentum,
                                  bool nesterov) {
  for_each_tensor_element(
      Stream::for_device(device_), tensors,
      [=] __device__(const UpdateTensor& t, index_t i) {
        bodies::sgd_update(i, t.w, t.g, t.state0, lr, momentum, nesterov);
      },
      "sgd_update_many");
}

void CudaKernels::adam_update_many(std::span<const UpdateTensor> tensors, float step, float beta_1,
                                   float beta_2, float epsilon, float decay) {
  for_each_tensor_element(
      Stream::for_device(device_), tensors,
      [=] __device__(const UpdateTensor& t, index_t i) {
        bodies::adam_update(i, t.w, t.g, t.state0, t.state1, step, beta_1, beta_2, epsilon, decay);
      },
      "adam_update_many");
}

void CudaKernels::rmsprop_update_many(std::span<const UpdateTensor> tensors, float lr, float rho,
                                      float momentum, float epsilon) {
  for_each_tensor_element(
      Stream::for_device(device_), tensors,
      [=] __device__(const UpdateTensor& t, index_t i) {
        bodies::rmsprop_update(i, t.w, t.g, t.state0, t.state1, lr, rho, momentum, epsilon);
      },
      "rmsprop_update_many");
}

}  // namespace tabula::detail
