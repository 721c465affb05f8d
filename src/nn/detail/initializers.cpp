#include "nn/detail/initializers.hpp"

#include <cmath>
#include <vector>

#include "nn/detail/tensor_views.hpp"

namespace tabula::detail {

void glorot_uniform(const Tensor& t, std::int64_t fan_in, std::int64_t fan_out,
                    RandomGenerator& rng) {
  const float limit = std::sqrt(6.0f / static_cast<float>(fan_in + fan_out));
  std::vector<float> values(static_cast<std::size_t>(t.numel()));
  rng.fill_uniform(values.data(), values.size(), -limit, limit);
  copy_from_host(t, values);
}

void constant(const Tensor& t, float value) {
  copy_from_host(t, std::vector<float>(static_cast<std::size_t>(t.numel()), value));
}

void orthogonal(const Tensor& t, RandomGenerator& rng) {
  // Orthonormalise the columns of a tall random normal matrix (modified Gram-Schmidt), as
  // Keras does with a QR decomposition, then lay it out as (rows, cols).
  const auto rows = static_cast<std::size_t>(t.shape()[0]);
  const auto cols = static_cast<std::size_t>(t.numel()) / rows;
  const std::size_t tall = std::max(rows, cols), narrow = std::min(rows, cols);
  std::vector<float> a(tall * narrow);  // column-major: column j at a[j * tall]
  rng.fill_normal(a.data(), a.size(), 0.0f, 1.0f);
  for (std::size_t j = 0; j < narrow; ++j) {
    float* q = &a[j * tall];
    for (std::size_t i = 0; i < j; ++i) {
      const float* p = &a[i * tall];
      double dot = 0;
      for (std::size_t k = 0; k < tall; ++k) dot += static_cast<double>(p[k]) * q[k];
      for (std::size_t k = 0; k < tall; ++k) q[k] -= static_cast<float>(dot) * p[k];
    }
    double norm = 0;
    for (std::size_t k = 0; k < tall; ++k) norm += static_cast<double>(q[k]) * q[k];
    const float inv = 1.0f / static_cast<float>(std::sqrt(norm));
    for (std::size_t k = 0; k < tall; ++k) q[k] *= inv;
  }
  std::vector<float> out(rows * cols);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < cols; ++c)
      out[r * cols + c] = rows >= cols ? a[c * tall + r] : a[r * tall + c];
  copy_from_host(t, out);
}

}  // namespace tabula::detail
