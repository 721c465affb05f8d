#pragma once
/// @file
/// BatchNormalization: normalises each channel (the last axis) with batch statistics while
/// training and with moving statistics at inference, as Keras 3 does.

#include <string>

#include "tabula/nn/layer.hpp"

namespace tabula::layers {

/// @brief Keyword arguments of `BatchNormalization` (Keras 3's names and defaults).
struct BatchNormalizationOptions {
  /// Weight of the old value in the moving statistics: moving = moving * momentum +
  /// batch * (1 - momentum).
  double momentum = 0.99;
  /// Added to the variance before its square root.
  double epsilon = 1e-3;
  bool center = true;     ///< learn an offset `beta` (zeros); false: no offset
  bool scale = true;      ///< learn a factor `gamma` (ones); false: no factor
  std::string name = {};  ///< empty: "batch_normalization", "batch_normalization_1", ...
};

/// @brief Batch normalisation over the last axis (channels last), as Keras 3 defines it.
///
/// Weights, each of shape (C,) for C the last axis: `gamma` (ones, trainable, when `scale`),
/// `beta` (zeros, trainable, when `center`), `moving_mean` (zeros) and `moving_variance`
/// (ones), both non-trainable. While training, each channel is normalised with the mean and
/// biased variance over every other axis (batch and spatial):
/// y = gamma * (x - mean) / sqrt(var + epsilon) + beta, and the moving statistics move
/// towards the batch's: moving = moving * momentum + batch * (1 - momentum) (the biased batch
/// variance, as Keras 3 uses). At inference the moving statistics take the batch's place.
/// Backward after a training forward goes through the batch statistics; after an inference
/// forward the layer is affine in x. `reset_state()` puts the moving statistics back to 0/1.
///
/// @throws InvalidArgument unless 0 <= momentum < 1 and epsilon > 0; building throws it for an
///         input without axes or with a last axis of extent 0.
Layer BatchNormalization(const BatchNormalizationOptions& options = {});

}  // namespace tabula::layers
