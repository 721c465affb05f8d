#pragma once
/// @file
/// The counter-based random generator behind initialisers, dropout and shuffling.

#include <cstddef>
#include <cstdint>

namespace tabula {

/// @brief Philox-4x32-10 (Salmon et al., SC'11): a counter-based generator whose stream is a
/// pure function of (seed, offset), so the same seed gives the same numbers on every platform
/// and, later, on the GPU. A value type; not thread-safe (a session guards its own).
class RandomGenerator {
 public:
  explicit RandomGenerator(std::uint64_t seed = 0) noexcept : seed_(seed) {}

  /// Restarts the stream from `seed`.
  void seed(std::uint64_t seed) noexcept {
    seed_ = seed;
    offset_ = 0;
  }
  std::uint64_t seed() const noexcept { return seed_; }
  /// Number of 128-bit blocks drawn so far.
  std::uint64_t offset() const noexcept { return offset_; }

  /// Uniform floats in [low, high).
  void fill_uniform(float* out, std::size_t n, float low, float high) noexcept;
  /// Normal floats with the given mean and standard deviation (Box-Muller).
  void fill_normal(float* out, std::size_t n, float mean, float stddev) noexcept;
  /// Normal floats redrawn until within two standard deviations (Keras's truncated_normal).
  void fill_truncated_normal(float* out, std::size_t n, float mean, float stddev) noexcept;
  /// A uniform integer in [0, bound) (bound > 0), for shuffling.
  std::uint64_t uniform_index(std::uint64_t bound) noexcept;

  /// The next four 32-bit random words.
  void next_block(std::uint32_t out[4]) noexcept;

 private:
  std::uint64_t seed_;
  std::uint64_t offset_ = 0;
};

}  // namespace tabula
