#include "nn/detail/metric.hpp"

#include <algorithm>

#include "tabula/core/errors.hpp"

namespace tabula::detail {

Metric Metric::resolve(std::string_view name, const Loss& loss, const Shape& output) {
  const std::string reported(name == "acc" ? "accuracy" : name);
  if (name == "accuracy" || name == "acc") {
    if (loss.kind() == Loss::Kind::binary_crossentropy || output[-1] == 1)
      return {Kind::binary_accuracy, reported};
    if (loss.kind() == Loss::Kind::sparse_categorical_crossentropy)
      return {Kind::sparse_categorical_accuracy, reported};
    return {Kind::categorical_accuracy, reported};
  }
  if (name == "categorical_accuracy") return {Kind::categorical_accuracy, reported};
  if (name == "sparse_categorical_accuracy") return {Kind::sparse_categorical_accuracy, reported};
  if (name == "binary_accuracy") return {Kind::binary_accuracy, reported};
  TABULA_THROW(InvalidArgument, "metric: expected one of accuracy, categorical_accuracy, "
                                "sparse_categorical_accuracy, binary_accuracy, got '"
                                    << name << "'");
}

void Metric::accumulate(const Tensor& y_pred, const Tensor& y_true, double& correct,
                        double& counted) const {
  if (!y_pred.device().is_cpu() || !y_true.device().is_cpu())
    return accumulate(y_pred.to(Device::cpu()), y_true.to(Device::cpu()), correct, counted);
  const float* p = y_pred.data<float>();
  const std::int64_t n = y_pred.numel();
  if (kind_ == Kind::binary_accuracy) {
    const bool float_targets = y_true.dtype() == DType::float32;
    for (std::int64_t i = 0; i < n; ++i) {
      const bool target = float_targets ? y_true.data<float>()[i] > 0.5f : label_at(y_true, i) != 0;
      correct += (p[i] > 0.5f) == target;
    }
    counted += static_cast<double>(n);
    return;
  }
  const std::int64_t classes = y_pred.shape()[-1];
  const std::int64_t rows = n / classes;
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* pr = p + r * classes;
    const std::int64_t predicted = std::max_element(pr, pr + classes) - pr;
    std::int64_t target;
    if (kind_ == Kind::sparse_categorical_accuracy) {
      target = label_at(y_true, r);
    } else {
      const float* tr = y_true.data<float>() + r * classes;
      target = std::max_element(tr, tr + classes) - tr;
    }
    correct += predicted == target;
  }
  counted += static_cast<double>(rows);
}

}  // namespace tabula::detail
