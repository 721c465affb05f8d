#include "tabula/session/random_generator.hpp"

#include <cmath>
#include <numbers>

namespace tabula {

void RandomGenerator::next_block(std::uint32_t out[4]) noexcept {
  std::uint32_t c0 = static_cast<std::uint32_t>(offset_);
  std::uint32_t c1 = static_cast<std::uint32_t>(offset_ >> 32);
  std::uint32_t c2 = 0, c3 = 0;
  std::uint32_t k0 = static_cast<std::uint32_t>(seed_);
  std::uint32_t k1 = static_cast<std::uint32_t>(seed_ >> 32);
  for (int round = 0; round < 10; ++round) {
    const std::uint64_t p0 = std::uint64_t{0xD2511F53u} * c0;
    const std::uint64_t p1 = std::uint64_t{0xCD9E8D57u} * c2;
    const std::uint32_t n0 = static_cast<std::uint32_t>(p1 >> 32) ^ c1 ^ k0;
    const std::uint32_t n1 = static_cast<std::uint32_t>(p1);
    const std::uint32_t n2 = static_cast<std::uint32_t>(p0 >> 32) ^ c3 ^ k1;
    const std::uint32_t n3 = static_cast<std::uint32_t>(p0);
    c0 = n0, c1 = n1, c2 = n2, c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
  ++offset_;
}

namespace {

// 24 random bits give every float in [0, 1) on a 2^-24 grid.
constexpr float kUnit = 1.0f / 16777216.0f;

inline float unit_open_closed(std::uint32_t bits) noexcept {  // (0, 1]
  return static_cast<float>((bits >> 8) + 1) * kUnit;
}

}  // namespace

void RandomGenerator::fill_uniform(float* out, std::size_t n, float low, float high) noexcept {
  std::uint32_t block[4];
  const float span = high - low;
  for (std::size_t i = 0; i < n; i += 4) {
    next_block(block);
    for (std::size_t j = 0; j < 4 && i + j < n; ++j)
      out[i + j] = low + span * static_cast<float>(block[j] >> 8) * kUnit;
  }
}

void RandomGenerator::fill_normal(float* out, std::size_t n, float mean, float stddev) noexcept {
  std::uint32_t block[4];
  constexpr float two_pi = 2.0f * std::numbers::pi_v<float>;
  for (std::size_t i = 0; i < n; i += 4) {
    next_block(block);
    for (std::size_t j = 0; j < 4; j += 2) {
      const float radius = std::sqrt(-2.0f * std::log(unit_open_closed(block[j])));
      const float angle = two_pi * static_cast<float>(block[j + 1] >> 8) * kUnit;
      if (i + j < n) out[i + j] = mean + stddev * radius * std::cos(angle);
      if (i + j + 1 < n) out[i + j + 1] = mean + stddev * radius * std::sin(angle);
    }
  }
}

void RandomGenerator::fill_truncated_normal(float* out, std::size_t n, float mean,
                                            float stddev) noexcept {
  float pair[2];
  for (std::size_t i = 0; i < n;) {
    fill_normal(pair, 2, 0.0f, 1.0f);
    for (float z : pair)
      if (i < n && std::fabs(z) <= 2.0f) out[i++] = mean + stddev * z;
  }
}

std::uint64_t RandomGenerator::uniform_index(std::uint64_t bound) noexcept {
  // Rejection sampling keeps every index equally likely.
  const std::uint64_t limit = ~std::uint64_t{0} - (~std::uint64_t{0} % bound);
  std::uint32_t block[4];
  for (;;) {
    next_block(block);
    const std::uint64_t value = (std::uint64_t{block[0]} << 32) | block[1];
    if (value < limit) return value % bound;
  }
}

}  // namespace tabula
