#include "tabula/core/shape.hpp"

#include "tabula/core/errors.hpp"

namespace tabula {

Shape::Shape(std::initializer_list<std::int64_t> dims) : dims_(dims) { validate(); }

Shape::Shape(std::vector<std::int64_t> dims) : dims_(std::move(dims)) { validate(); }

void Shape::validate() const {
  for (std::size_t i = 0; i < dims_.size(); ++i) {
    TABULA_EXPECT(dims_[i] >= 0, InvalidArgument, "shape " << str() << " axis " << i,
                  "a non-negative extent", dims_[i]);
  }
}

std::int64_t Shape::operator[](int axis) const {
  const int rank_i = static_cast<int>(dims_.size());
  const int resolved = axis < 0 ? axis + rank_i : axis;
  TABULA_EXPECT(resolved >= 0 && resolved < rank_i, InvalidArgument,
                "axis of shape " << str(), "in [" << -rank_i << ", " << rank_i << ")", axis);
  return dims_[static_cast<std::size_t>(resolved)];
}

std::int64_t Shape::numel() const noexcept {
  std::int64_t n = 1;
  for (auto d : dims_) n *= d;
  return n;
}

std::string Shape::str() const {
  std::string s = "(";
  for (std::size_t i = 0; i < dims_.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(dims_[i]);
  }
  if (dims_.size() == 1) s += ",";
  return s + ")";
}

}  // namespace tabula
