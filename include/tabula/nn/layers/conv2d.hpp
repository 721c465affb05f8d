#pragma once
/// @file
/// Conv2D: a 2-D convolution over channels_last (NHWC) images, as Keras's.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "tabula/nn/layer.hpp"

namespace tabula::layers {

/// @brief Keyword arguments of `Conv2D`.
struct Conv2DOptions {
  std::pair<std::int64_t, std::int64_t> strides = {1, 1};  ///< (rows, columns)
  /// "valid" (no padding) or "same" (output = ceil(input / stride); TensorFlow's rule: the
  /// odd padding row/column goes at the bottom/right). Case-insensitive, as in Keras.
  std::string padding = "valid";
  bool use_bias = true;
  std::string name = {};  ///< empty: "conv2d", "conv2d_1", ...
};

/// @brief A 2-D convolution with `filters` outputs over inputs of per-sample shape
/// (height, width, channels): y = activation(conv(x, kernel) + bias).
///
/// The kernel has Keras's shape (kernel_h, kernel_w, in_channels, filters) and is drawn from
/// glorot_uniform (fan_in = kh*kw*in_channels, fan_out = kh*kw*filters); the bias (filters)
/// starts at zeros. On the CPU the forward pass unfolds patches into a session workspace
/// ("<name>/columns", category workspace) and multiplies them with the kernel in one GEMM per
/// chunk of samples; the workspace is sized once per batch size and bounded (16 MiB, or one
/// sample's patches when a sample needs more). On a GPU the convolution runs in cuDNN where the
/// build has it and the padding is symmetric ("valid", or "same" where the total padding is
/// even, as with an odd kernel at stride 1), in a
/// workspace "<name>/cudnn_workspace" (the kernel in cuDNN's layout, its gradient and cuDNN's
/// own, at most 64 MiB of it); otherwise as on the CPU, with cuBLAS. In a model (fit,
/// evaluate, predict), the layers share one such workspace, "batch/workspace", as large as the
/// largest layer's, instead of one each.
///
/// @param filters      number of output channels, > 0
/// @param kernel_size  (kernel_h, kernel_w), both > 0
/// @param activation   a name `activation_from_name` knows ("relu", "linear", ...)
/// @throws InvalidArgument for non-positive filters, kernel sizes or strides, an unknown
///         padding or activation; at build, for an input that is not (height, width, channels)
///         or whose output would be empty.
Layer Conv2D(std::int64_t filters, std::pair<std::int64_t, std::int64_t> kernel_size,
             std::string_view activation = "linear", const Conv2DOptions& options = {});

}  // namespace tabula::layers
