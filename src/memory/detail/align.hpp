#pragma once
// Rounding helpers shared by the memory resources.

#include <cstddef>
#include <cstdint>

namespace tabula::detail {

/// Smallest multiple of `to` that is >= `n`; `to` must be a power of two.
constexpr std::size_t round_up(std::size_t n, std::size_t to) noexcept {
  return (n + to - 1) & ~(to - 1);
}

/// True for 1, 2, 4, ... (std::has_single_bit becomes a libgcc call without -mpopcnt).
constexpr bool is_power_of_two(std::size_t n) noexcept { return n != 0 && (n & (n - 1)) == 0; }

inline bool is_aligned(const void* p, std::size_t alignment) noexcept {
  return (reinterpret_cast<std::uintptr_t>(p) & (alignment - 1)) == 0;
}

}  // namespace tabula::detail
