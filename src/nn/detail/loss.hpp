#pragma once
// Loss functions, chosen by their Keras names; computed per batch by the scoring kernels of
// the batch's device (batch_score.hpp).

#include <cstdint>
#include <string>
#include <string_view>

#include "backend/detail/scoring.hpp"
#include "tabula/core/tensor.hpp"
#include "tabula/nn/activation.hpp"

namespace tabula::detail {

/// A loss function. Values are means over samples (and over the last axis for the
/// regression losses), as Keras reports them.
class Loss {
 public:
  using Kind = LossKind;

  /// @throws InvalidArgument naming the unknown loss and the known ones.
  static Loss from_name(std::string_view name);

  Kind kind() const noexcept { return kind_; }
  const std::string& name() const noexcept { return name_; }

  /// True when the loss can take the gradient with respect to the pre-activation of a final
  /// `last` activation directly (softmax with cross-entropy, sigmoid with binary CE).
  bool fuses_with(Activation last) const noexcept;

  /// Checks that targets `y` (with batch axis) fit model outputs of per-sample shape `out`.
  /// @throws InvalidArgument naming the expected and actual shape/dtype.
  void check_targets(const Shape& out, const Tensor& y, std::string_view what) const;

  /// The mean loss of a batch. When `grad` is given, writes dL/d(y_pred), or dL/d(logits)
  /// when `fused` (see fuses_with). y_pred and grad may not alias. A batch scored with
  /// metrics too is better scored at once (score_batch).
  /// Outputs, targets and gradient are on one device, whose kernels compute the loss.
  /// @throws InvalidArgument naming the first sample whose class index is out of range, or
  /// the tensor of the wrong device, dtype or size.
  double compute(const Tensor& y_pred, const Tensor& y_true, const Tensor* grad,
                 bool fused) const;

 private:
  Loss(Kind kind, std::string name) : kind_(kind), name_(std::move(name)) {}
  Kind kind_;
  std::string name_;
};

/// Reads target `i` of a label tensor as a class index (int64/int32/uint8/float labels).
std::int64_t label_at(const Tensor& y, std::int64_t i);

}  // namespace tabula::detail
