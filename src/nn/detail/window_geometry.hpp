#pragma once
// Output sizes and padding of 2-D windows (convolution, pooling), by TensorFlow's rules.

#include <algorithm>
#include <cctype>
#include <string>
#include <utility>

#include "backend/detail/kernels.hpp"

namespace tabula::detail {

/// ceil(a / b) for b > 0 and any sign of a.
inline index_t ceil_div(index_t a, index_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

/// TensorFlow's output size of one spatial axis: valid ceil((in - k + 1) / s), same
/// ceil(in / s); and the padding before the first element (same: half the total, rounded
/// down, so the odd one goes after the last element).
inline std::pair<index_t, index_t> output_and_padding(index_t in, index_t k, index_t s,
                                                      bool same) {
  if (!same) return {ceil_div(in - k + 1, s), 0};
  const index_t out = ceil_div(in, s);
  const index_t total = std::max<index_t>((out - 1) * s + k - in, 0);
  return {out, total / 2};
}

/// "SAME" -> "same": Keras accepts padding names in any case.
inline std::string lowercase(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

}  // namespace tabula::detail
