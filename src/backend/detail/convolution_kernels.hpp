#pragma once
// 2-D convolutions over NHWC data, on raw float32 buffers that live on the kernels' device:
// y = conv(x, kernel) forward; the kernel's and the input's gradients backward. Bias and
// activation stay with the layer (Kernels::add_bias, activation_forward).
//
// A layer asks once per batch size how its convolution will run (`plan_conv2d`), reserves the
// workspace the plan names with its other batch buffers, and hands plan and workspace to every
// call, so a training step allocates nothing. By default a convolution unfolds patches into
// the workspace (im2col) and multiplies them with the kernel (Kernels::gemm), a chunk of
// samples at a time; a device may run it in a library instead (CUDA: cuDNN).

#include <cstddef>
#include <vector>

#include "backend/detail/kernels.hpp"
#include "tabula/core/device.hpp"

namespace tabula::detail {

/// A convolution of `window` (its batch the samples of one call) with `filters` filters; the
/// kernel is Keras's (kernel_h, kernel_w, channels, filters), row-major.
struct Convolution2d {
  Window2d window;
  index_t filters = 0;

  index_t patch() const { return window.kernel_h * window.kernel_w * window.channels; }
  index_t pixels() const { return window.out_h * window.out_w; }
};

/// How one layer's convolution runs, at batches up to `batch`.
struct ConvolutionPlan {
  index_t batch = 0;
  bool training = false;            ///< planned for the backward pass too (else forward only)
  std::size_t workspace_bytes = 0;  ///< the workspace every call needs (0: none)
  const char* workspace_name = "";  ///< what the layer calls it ("columns")
  std::vector<GemmExtents> gemms;   ///< the Kernels::gemm calls it runs, for their packing
  /// Unfolding: samples unfolded at once (0: a 1x1 kernel with unit strides, whose input is
  /// its own columns matrix).
  index_t chunk = 0;
  /// A library's algorithms (forward, backward data, backward filter); -1 when unfolding.
  int algorithms[3] = {-1, -1, -1};

  bool unfolds() const { return algorithms[0] < 0; }
};

/// @throws InvalidArgument unless `plan` was made for training (backward passes need that).
void expect_training_plan(const ConvolutionPlan& plan);

class ConvolutionKernels {
 public:
  virtual ~ConvolutionKernels() = default;

  /// How `c` runs at batches up to c.window.batch, forward only or, for `training`, backward
  /// too: by default unfolding, into a columns workspace of at most 16 MiB, or of one sample
  /// when a sample needs more. `scratch` is the layer's (a library handle is made in its
  /// session). @throws OutOfMemory, Error.
  virtual ConvolutionPlan plan_conv2d(Scratch& scratch, const Convolution2d& c, bool training);

  /// y = conv(x, kernel) for the c.window.batch (<= plan.batch) samples of x.
  virtual void conv2d_forward(Kernels& k, Scratch& scratch, const ConvolutionPlan& plan,
                              const Convolution2d& c, const float* x, const float* kernel, float* y,
                              void* workspace);

  /// From dy = dL/d(conv output): dkernel (overwritten) and, unless `dx` is null, dx
  /// (overwritten). @throws InvalidArgument for a plan made for inference.
  virtual void conv2d_backward(Kernels& k, Scratch& scratch, const ConvolutionPlan& plan,
                               const Convolution2d& c, const float* x, const float* dy,
                               const float* kernel, float* dkernel, float* dx, void* workspace);
};

/// The convolution kernels of `device`. @throws Error when the device has none in this build.
ConvolutionKernels& convolution_kernels_for(Device device);

}  // namespace tabula::detail
