#pragma once
// Output sizes and padding of 2-D windows (convolution, pooling), by TensorFlow's rules.

#include <algorithm>
#include <cctype>
#include <string>
#include <utility>

#include "backend/detail/kernels.hpp"
#include "tabula/core/errors.hpp"
#include "tabula/core/shape.hpp"

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

/// The window of a `layer_type` layer `layer` ("Conv2D", "MaxPooling2D", ...) over a
/// per-sample NHWC `input`, with `size_label` naming the window ("kernel_size", "pool_size")
/// in messages. @throws InvalidArgument when the input is not (H, W, C) or the output would
/// be empty.
inline Window2d make_window(const std::string& layer_type, const std::string& layer,
                            const Shape& input, const char* size_label,
                            std::pair<index_t, index_t> size, std::pair<index_t, index_t> strides,
                            bool same) {
  TABULA_EXPECT(input.rank() == 3 && input.numel() > 0, InvalidArgument,
                "input shape of " << layer_type << " layer '" << layer << "'",
                "rank 3 (height, width, channels) with positive extents", input.str());
  const auto [kh, kw] = size;
  const auto [sh, sw] = strides;
  const auto [out_h, pad_top] = output_and_padding(input[0], kh, sh, same);
  const auto [out_w, pad_left] = output_and_padding(input[1], kw, sw, same);
  TABULA_EXPECT(out_h > 0 && out_w > 0, InvalidArgument,
                "output size of " << layer_type << " layer '" << layer << "' for input "
                                  << input.str() << ", " << size_label << " (" << kh << ", " << kw
                                  << "), strides (" << sh << ", " << sw << "), padding '"
                                  << (same ? "same" : "valid") << "'",
                "positive (height, width)", "(" << out_h << ", " << out_w << ")");
  return Window2d{.batch = 0,
                  .in_h = input[0],
                  .in_w = input[1],
                  .channels = input[2],
                  .kernel_h = kh,
                  .kernel_w = kw,
                  .stride_h = sh,
                  .stride_w = sw,
                  .pad_top = pad_top,
                  .pad_left = pad_left,
                  .out_h = out_h,
                  .out_w = out_w};
}

/// "SAME" -> "same": Keras accepts padding names in any case.
inline std::string lowercase(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

}  // namespace tabula::detail
