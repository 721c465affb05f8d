#pragma once
/// @file
/// What an allocation is for. Every byte tabula holds carries one of these tags.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tabula {

/// @brief The purpose of an allocation; figures are kept per category.
enum class Category : std::uint8_t {
  weights,      ///< trainable and non-trainable layer parameters
  gradients,    ///< gradients of the parameters
  optimizer,    ///< optimizer state (moments, velocities)
  activations,  ///< forward outputs and backward deltas kept for a batch
  data,         ///< inputs, labels, user tensors
  workspace,    ///< scratch memory kernels ask for
  other,        ///< anything else
};

inline constexpr std::size_t kCategoryCount = 7;

inline constexpr std::array<Category, kCategoryCount> kAllCategories = {
    Category::weights, Category::gradients, Category::optimizer, Category::activations,
    Category::data,    Category::workspace, Category::other};

/// "weights", "gradients", ...
constexpr std::string_view name_of(Category category) noexcept {
  switch (category) {
    case Category::weights: return "weights";
    case Category::gradients: return "gradients";
    case Category::optimizer: return "optimizer";
    case Category::activations: return "activations";
    case Category::data: return "data";
    case Category::workspace: return "workspace";
    case Category::other: return "other";
  }
  return "unknown";
}

/// @brief A byte count per category, indexed by `Category`: `bytes[Category::weights]`.
struct CategoryBytes {
  std::array<std::size_t, kCategoryCount> values{};

  std::size_t& operator[](Category c) noexcept { return values[static_cast<std::size_t>(c)]; }
  std::size_t operator[](Category c) const noexcept {
    return values[static_cast<std::size_t>(c)];
  }
  std::size_t total() const noexcept {
    std::size_t sum = 0;
    for (auto v : values) sum += v;
    return sum;
  }
  CategoryBytes& operator+=(const CategoryBytes& other) noexcept {
    for (std::size_t i = 0; i < kCategoryCount; ++i) values[i] += other.values[i];
    return *this;
  }
  friend bool operator==(const CategoryBytes&, const CategoryBytes&) = default;
};

}  // namespace tabula
