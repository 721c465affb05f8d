#pragma once
/// @file
/// One-hot encoding of class labels (Keras's `keras.utils.to_categorical`).

#include <cstdint>

#include "tabula/core/tensor.hpp"

namespace tabula::utils {

/// @brief One-hot encodes integer class labels, like `keras.utils.to_categorical`.
///
/// The result is a float32 tensor of category `data` in the current session whose shape is
/// the labels' shape plus a trailing axis of `num_classes`; as in Keras, a trailing axis of
/// extent 1 on labels of rank 2 or more is replaced rather than kept, so labels of shape
/// (N, 1) give (N, num_classes).
///
/// @param labels int32, int64 or uint8 class indices, any shape
/// @param num_classes the length of each one-hot vector
/// @throws InvalidArgument when `num_classes` is not positive, a label is outside
///   [0, num_classes) (the message names its index and value), or the dtype is not an integer
///   one
Tensor to_categorical(const Tensor& labels, std::int64_t num_classes);

/// @brief Like `to_categorical(labels, num_classes)` with `num_classes` = the largest label + 1.
/// @throws InvalidArgument when `labels` is empty or holds a negative label
Tensor to_categorical(const Tensor& labels);

}  // namespace tabula::utils
