#pragma once
// The convolutions of one CUDA device: cuDNN's where this build has cuDNN, the environment does
// not turn it off (TABULA_CUDNN=off) and cuDNN runs the layer's geometry; else unfolding into
// cuBLAS GEMMs (ConvolutionKernels' default).

#include <string>

#include "backend/detail/convolution_kernels.hpp"

namespace tabula::detail {

class CudaConvolutionKernels final : public ConvolutionKernels {
 public:
  explicit CudaConvolutionKernels(Device device) : device_(device) {}

  /// cuDNN's plan when cuDNN runs `c`: symmetric padding (TensorFlow's "same" pads the odd row
  /// or column after, which cuDNN cannot), and a deterministic algorithm for each direction in
  /// fp32 arithmetic (no TF32) whose workspace is at most kMaxWorkspaceBytes. The plan's
  /// workspace then holds the kernel in cuDNN's layout, its gradient, and cuDNN's workspace. A
  /// smaller batch whose algorithm asks for more workspace than the plan's batch did borrows
  /// the difference from the session's pool for the call.
  ConvolutionPlan plan_conv2d(Scratch& scratch, const Convolution2d& c, bool training) override;
  void conv2d_forward(Kernels& k, Scratch& scratch, const ConvolutionPlan& plan,
                      const Convolution2d& c, const float* x, const float* kernel, float* y,
                      void* workspace) override;
  void conv2d_backward(Kernels& k, Scratch& scratch, const ConvolutionPlan& plan,
                       const Convolution2d& c, const float* x, const float* dy, const float* kernel,
                       float* dkernel, float* dx, void* workspace) override;

  static constexpr std::size_t kMaxWorkspaceBytes = std::size_t{64} << 20;
  /// Whether this build has cuDNN (found when it was configured).
  static bool has_cudnn();
  /// Whether plans made now use cuDNN: this build has it and the environment variable
  /// TABULA_CUDNN is unset, "on" or "1" ("off" or "0": unfold, as without cuDNN; for a cuDNN
  /// that misbehaves, without rebuilding). Read at every plan, so a plan made after a change
  /// follows it. @throws InvalidArgument naming the variable for any other value.
  static bool cudnn_enabled();
  /// "cuDNN 9.x.y (built with 9.19.0)": the version loaded, and the one built against; and
  /// whether TABULA_CUDNN turns it off (or has a value it refuses: this does not throw).
  static std::string library();

 private:
  Device device_;
};

/// The convolution kernels of CUDA device `device`. @throws Error when it is not present.
ConvolutionKernels& cuda_convolution_kernels_for(Device device);

}  // namespace tabula::detail
