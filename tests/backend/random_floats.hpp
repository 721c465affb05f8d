#pragma once
// Reproducible operands for the backend tests.

#include <random>
#include <vector>

namespace tabula::detail::testing {

/// `n` floats uniform in [-1, 1) from `seed`.
inline std::vector<float> random_floats(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

}  // namespace tabula::detail::testing
