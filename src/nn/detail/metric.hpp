#pragma once
// Metrics by their Keras names; "accuracy" resolves to the variant the loss implies.

#include <cstdint>
#include <string>
#include <string_view>

#include "nn/detail/loss.hpp"
#include "tabula/core/tensor.hpp"

namespace tabula::detail {

class Metric {
 public:
  using Kind = MetricKind;

  /// "accuracy"/"acc" resolve like Keras: binary for binary cross-entropy or one output,
  /// sparse for sparse cross-entropy, categorical otherwise. Explicit names work too.
  /// @throws InvalidArgument for unknown names.
  static Metric resolve(std::string_view name, const Loss& loss, const Shape& output);

  /// The name reported in logs ("accuracy" when asked for as "accuracy").
  const std::string& name() const noexcept { return name_; }
  Kind kind() const noexcept { return kind_; }

  /// Adds this batch's (correct, counted) to the totals. A batch scored with its loss too is
  /// better scored at once (score_batch).
  void accumulate(const Tensor& y_pred, const Tensor& y_true, double& correct,
                  double& counted) const;

 private:
  Metric(Kind kind, std::string name) : kind_(kind), name_(std::move(name)) {}
  Kind kind_;
  std::string name_;
};

}  // namespace tabula::detail
