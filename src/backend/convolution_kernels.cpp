// The convolution every device can run: patches unfolded into columns (im2col), one GEMM per
// chunk of samples; backward folds the columns' gradients back (col2im).

#include "backend/detail/convolution_kernels.hpp"

#include <algorithm>

#include "tabula/core/errors.hpp"

namespace tabula::detail {
namespace {

/// The columns workspace holds at most this many bytes, unless one sample alone needs more:
/// large batches are then unfolded and multiplied a chunk of samples at a time.
constexpr std::size_t kColumnsBudget = std::size_t{16} << 20;

// A 1x1 kernel with unit strides reads each pixel's channels as they lie: no unfolding.
bool reads_in_place(const Window2d& w) {
  return w.kernel_h == 1 && w.kernel_w == 1 && w.stride_h == 1 && w.stride_w == 1;
}

}  // namespace

void expect_training_plan(const ConvolutionPlan& plan) {
  TABULA_EXPECT(plan.training, InvalidArgument, "plan of a convolution's backward pass",
                "one made for training", "one made for inference (forward only)");
}

ConvolutionPlan ConvolutionKernels::plan_conv2d(Scratch&, const Convolution2d& c, bool training) {
  const index_t batch = std::max<index_t>(c.window.batch, 1);
  const index_t patch = c.patch(), pixels = c.pixels();
  ConvolutionPlan plan;
  plan.batch = c.window.batch;
  plan.training = training;
  plan.workspace_name = "columns";
  if (!reads_in_place(c.window)) {
    const std::size_t sample_bytes = static_cast<std::size_t>(pixels * patch) * sizeof(float);
    plan.chunk = std::clamp<index_t>(static_cast<index_t>(kColumnsBudget / sample_bytes), 1, batch);
    plan.workspace_bytes = static_cast<std::size_t>(plan.chunk) * sample_bytes;
  }
  // The GEMMs run over the whole batch (in place) or one chunk of unfolded samples at a time.
  const index_t rows = (plan.chunk == 0 ? c.window.batch : plan.chunk) * pixels;
  plan.gemms = {{rows, c.filters, patch}};  // y = columns kernel
  if (training)
    plan.gemms.insert(plan.gemms.end(), {{patch, c.filters, rows}, {rows, patch, c.filters}});
  return plan;
}

void ConvolutionKernels::conv2d_forward(Kernels& k, Scratch& scratch, const ConvolutionPlan& plan,
                                        const Convolution2d& c, const float* x, const float* kernel,
                                        float* y, void* workspace) {
  const index_t n = c.window.batch, patch = c.patch(), pixels = c.pixels(), filters = c.filters;
  if (plan.chunk == 0) {
    k.gemm(scratch, false, false, n * pixels, filters, patch, 1.0f, x, patch, kernel, filters, 0.0f,
           y, filters);
    return;
  }
  auto* columns = static_cast<float*>(workspace);
  for (index_t first = 0; first < n; first += plan.chunk) {
    const index_t count = std::min(plan.chunk, n - first);
    k.im2col(c.window, x, first, count, columns);
    k.gemm(scratch, false, false, count * pixels, filters, patch, 1.0f, columns, patch, kernel,
           filters, 0.0f, y + first * pixels * filters, filters);
  }
}

void ConvolutionKernels::conv2d_backward(Kernels& k, Scratch& scratch, const ConvolutionPlan& plan,
                                         const Convolution2d& c, const float* x, const float* dy,
                                         const float* kernel, float* dkernel, float* dx,
                                         void* workspace) {
  expect_training_plan(plan);
  const index_t n = c.window.batch, patch = c.patch(), pixels = c.pixels(), filters = c.filters;
  if (plan.chunk == 0) {
    k.gemm(scratch, true, false, patch, filters, n * pixels, 1.0f, x, patch, dy, filters, 0.0f,
           dkernel, filters);
    if (dx)
      k.gemm(scratch, false, true, n * pixels, patch, filters, 1.0f, dy, filters, kernel, filters,
             0.0f, dx, patch);
    return;
  }
  auto* columns = static_cast<float*>(workspace);
  for (index_t first = 0; first < n; first += plan.chunk) {
    const index_t count = std::min(plan.chunk, n - first);
    const float* dy_chunk = dy + first * pixels * filters;
    k.im2col(c.window, x, first, count, columns);
    k.gemm(scratch, true, false, patch, filters, count * pixels, 1.0f, columns, patch, dy_chunk,
           filters, first == 0 ? 0.0f : 1.0f, dkernel, filters);
    if (!dx) continue;
    // The chunk's patches are used up: their gradients take their place, then fold back.
    k.gemm(scratch, false, true, count * pixels, patch, filters, 1.0f, dy_chunk, filters, kernel,
           filters, 0.0f, columns, patch);
    k.col2im(c.window, columns, first, count, dx);
  }
}

}  // namespace tabula::detail
