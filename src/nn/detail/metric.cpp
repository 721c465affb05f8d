#include "nn/detail/metric.hpp"

#include "nn/detail/batch_score.hpp"
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
  const BatchScore score = score_batch(nullptr, {this, 1}, y_pred, y_true, nullptr, false);
  correct += score.correct[0];
  counted += score.counted[0];
}

}  // namespace tabula::detail
