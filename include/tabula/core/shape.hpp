#pragma once
/// @file
/// The extents of a tensor.

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace tabula {

/// @brief The extents of a tensor, outermost first. A value type; rank 0 is a scalar.
class Shape {
 public:
  Shape() = default;
  /// @throws InvalidArgument when an extent is negative.
  Shape(std::initializer_list<std::int64_t> dims);
  /// @throws InvalidArgument when an extent is negative.
  explicit Shape(std::vector<std::int64_t> dims);

  std::size_t rank() const noexcept { return dims_.size(); }
  /// Extent of axis `axis`; negative axes count from the end like NumPy.
  /// @throws InvalidArgument when the axis is out of range.
  std::int64_t operator[](int axis) const;
  /// Product of the extents (1 for a scalar).
  std::int64_t numel() const noexcept;
  const std::vector<std::int64_t>& dims() const noexcept { return dims_; }

  /// "(60000, 28, 28)", the notation Keras's summary uses.
  std::string str() const;

  friend bool operator==(const Shape&, const Shape&) = default;

 private:
  void validate() const;

  std::vector<std::int64_t> dims_;
};

}  // namespace tabula
