#pragma once
/// @file
/// 2-D pooling over channels_last (NHWC) images: MaxPooling2D and AveragePooling2D, as Keras's.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "tabula/nn/layer.hpp"

namespace tabula::layers {

/// @brief Keyword arguments of `MaxPooling2D` and `AveragePooling2D`.
struct Pool2DOptions {
  /// (rows, columns); unset: the pool size (Keras's default).
  std::optional<std::pair<std::int64_t, std::int64_t>> strides = std::nullopt;
  /// "valid" or "same" (output = ceil(input / stride), TensorFlow's padding rule; padded
  /// positions never take part in a window). Case-insensitive, as in Keras.
  std::string padding = "valid";
  std::string name = {};  ///< empty: "max_pooling2d", "average_pooling2d", ... (+ "_1", ...)
};

/// @brief The maximum of each (pool_h, pool_w) window, per channel, over inputs of per-sample
/// shape (height, width, channels).
///
/// For training the layer keeps the position of each maximum for its backward pass in an int32
/// buffer ("<name>/argmax", category activations) sized once per batch size (evaluate and
/// predict keep none); a batch's input must therefore have fewer than 2^31 elements.
/// @throws InvalidArgument for non-positive pool sizes or strides or an unknown padding; at
///         build, for an input that is not (height, width, channels) or an empty output; at
///         reserve, for a batch too large for int32 positions.
Layer MaxPooling2D(std::pair<std::int64_t, std::int64_t> pool_size = {2, 2},
                   const Pool2DOptions& options = {});

/// @brief The mean of each (pool_h, pool_w) window, per channel, counting only the window's
/// elements inside the input (TensorFlow's "same" behaviour).
/// @throws InvalidArgument as `MaxPooling2D` does (without the batch limit).
Layer AveragePooling2D(std::pair<std::int64_t, std::int64_t> pool_size = {2, 2},
                       const Pool2DOptions& options = {});

}  // namespace tabula::layers
