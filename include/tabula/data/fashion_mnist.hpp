#pragma once
/// @file
/// The Fashion-MNIST dataset (Zalando), as Debian's `dataset-fashion-mnist` package installs it.

#include <array>
#include <string>
#include <string_view>
#include <utility>

#include "tabula/core/tensor.hpp"

namespace tabula::datasets::fashion_mnist {

/// @brief One split of the dataset: images and their labels, in the same order.
struct Split {
  Tensor x;  ///< float32 pixels in [0, 1] (pixel / 255), shape (N, 28, 28)
  Tensor y;  ///< int64 class indices 0..9, shape (N)
};

/// Where Debian's package puts the files.
inline constexpr std::string_view kDebianDirectory = "/usr/share/datasets/fashion-mnist";

/// The environment variable that overrides `kDebianDirectory`.
inline constexpr std::string_view kDirectoryVariable = "TABULA_FASHION_MNIST_DIR";

/// @brief The directory `load_data()` reads: `$TABULA_FASHION_MNIST_DIR` when it is set and
/// not empty, else `kDebianDirectory`.
std::string default_directory();

/// @brief Loads the training split (60000 images) and the test split (10000 images) into the
/// current session (category `data`), like Keras's `fashion_mnist.load_data()`.
///
/// Reads `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte` and
/// `t10k-labels-idx1-ubyte` from `directory`, each gzip-compressed (`.gz`, as Debian ships
/// them) or plain. Pixels are inflated and scaled to floats in one pass.
///
/// @param directory where the four files are
/// @return {train, test}
/// @throws Error when a file is missing; the message names the missing paths and says to
///   install Debian's `dataset-fashion-mnist` package or to set TABULA_FASHION_MNIST_DIR
/// @throws FormatError when a file is not valid IDX, images are not rank 3 or labels not
///   rank 1, image and label counts differ, or a label is outside 0..9
std::pair<Split, Split> load_data(const std::string& directory = default_directory());

/// The ten class names, indexed by label: "T-shirt/top", "Trouser", ..., "Ankle boot".
const std::array<std::string_view, 10>& class_names() noexcept;

}  // namespace tabula::datasets::fashion_mnist
