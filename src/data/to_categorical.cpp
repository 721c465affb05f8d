#include "tabula/data/to_categorical.hpp"

#include <algorithm>
#include <limits>
#include <sstream>
#include <vector>

#include "tabula/session/session.hpp"

namespace tabula::utils {

namespace {

/// "(1, 2)" for the flat index 5 of shape (2, 3); "5" for rank 1.
std::string index_string(std::int64_t flat, const Shape& shape) {
  if (shape.rank() <= 1) return std::to_string(flat);
  std::vector<std::int64_t> index(shape.rank());
  for (std::size_t axis = shape.rank(); axis-- > 0;) {
    const std::int64_t extent = shape.dims()[axis];
    index[axis] = extent > 0 ? flat % extent : 0;
    flat = extent > 0 ? flat / extent : 0;
  }
  std::ostringstream out;
  out << "(";
  for (std::size_t i = 0; i < index.size(); ++i) out << (i ? ", " : "") << index[i];
  out << ")";
  return out.str();
}

/// Calls `f(const T* labels, n)` with the labels on the host as their own element type.
template <typename F>
void visit_labels(const Tensor& labels, F&& f) {
  const DType dtype = labels.dtype();
  TABULA_EXPECT(dtype == DType::int32 || dtype == DType::int64 || dtype == DType::uint8,
                InvalidArgument, "to_categorical labels dtype", "int32, int64 or uint8",
                name_of(dtype));
  const Tensor host = labels.to(Device::cpu());  // the same handle when already there
  const std::int64_t n = host.numel();
  switch (dtype) {
    case DType::int32:
      return f(host.data<std::int32_t>(), n);
    case DType::int64:
      return f(host.data<std::int64_t>(), n);
    case DType::uint8:
      return f(host.data<std::uint8_t>(), n);
    default:
      return;
  }
}

Tensor one_hot(const Tensor& labels, std::int64_t num_classes) {
  TABULA_EXPECT(num_classes > 0, InvalidArgument, "to_categorical num_classes", "> 0", num_classes);
  const Shape& shape = labels.shape();
  std::vector<std::int64_t> dims = shape.dims();
  if (dims.size() >= 2 && dims.back() == 1) dims.pop_back();  // Keras: (N, 1) -> (N, C)
  const std::int64_t n = shape.numel();
  TABULA_EXPECT(n == 0 || num_classes <= std::numeric_limits<std::int64_t>::max() / n,
                InvalidArgument, "to_categorical of " << n << " labels: num_classes",
                "a count whose product with the label count fits in 64 bits", num_classes);
  dims.push_back(num_classes);
  const Shape out_shape(dims);

  // Check every label before allocating the result.
  visit_labels(labels, [&](const auto* values, std::int64_t count) {
    for (std::int64_t i = 0; i < count; ++i) {
      const auto value = static_cast<std::int64_t>(values[i]);
      TABULA_EXPECT(value >= 0 && value < num_classes, InvalidArgument,
                    "to_categorical label at index " << index_string(i, shape),
                    "a class index in [0, " << num_classes << ")", value);
    }
  });

  const TensorOptions options{
      .dtype = DType::float32, .category = Category::data, .name = "to_categorical"};
  const bool on_cpu = current_session().device().is_cpu();
  std::vector<float> staging;
  Tensor out;
  float* dst = nullptr;
  if (on_cpu) {
    out = zeros(out_shape, options);
    dst = out.data<float>();
  } else {
    staging.assign(static_cast<std::size_t>(out_shape.numel()), 0.0f);
    dst = staging.data();
  }
  visit_labels(labels, [&](const auto* values, std::int64_t count) {
    for (std::int64_t i = 0; i < count; ++i) {
      dst[i * num_classes + static_cast<std::int64_t>(values[i])] = 1.0f;
    }
  });
  return on_cpu ? out : from_vector(staging, out_shape, options);
}

}  // namespace

Tensor to_categorical(const Tensor& labels, std::int64_t num_classes) {
  return one_hot(labels, num_classes);
}

Tensor to_categorical(const Tensor& labels) {
  std::int64_t max_label = -1;
  visit_labels(labels, [&](const auto* values, std::int64_t count) {
    TABULA_EXPECT(count > 0, InvalidArgument, "to_categorical without num_classes",
                  "at least one label to infer it from",
                  "an empty tensor of shape " << labels.shape().str());
    for (std::int64_t i = 0; i < count; ++i) {
      const auto value = static_cast<std::int64_t>(values[i]);
      TABULA_EXPECT(value >= 0, InvalidArgument,
                    "to_categorical label at index " << index_string(i, labels.shape()),
                    "a class index >= 0", value);
      max_label = std::max(max_label, value);
    }
  });
  return one_hot(labels, max_label + 1);
}

}  // namespace tabula::utils
