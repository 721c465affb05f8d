#include "support/blobs.hpp"

#include <vector>

#include "tabula/session/random_generator.hpp"

namespace tabula::testing {

std::pair<Tensor, Tensor> gaussian_blobs(std::int64_t n, std::uint64_t seed) {
  RandomGenerator rng(seed);
  std::vector<float> x(static_cast<std::size_t>(n * 4));
  std::vector<std::int64_t> y(static_cast<std::size_t>(n));
  rng.fill_normal(x.data(), x.size(), 0.0f, 0.5f);
  for (std::int64_t i = 0; i < n; ++i) {
    y[static_cast<std::size_t>(i)] = i % 3;
    x[static_cast<std::size_t>(i * 4 + y[static_cast<std::size_t>(i)])] += 2.0f;
  }
  return {from_vector(x, Shape{n, 4}), from_vector(y)};
}

}  // namespace tabula::testing
