#include "nn/detail/loss.hpp"

#include "backend/detail/scoring_bodies.hpp"
#include "nn/detail/batch_score.hpp"
#include "tabula/core/errors.hpp"

namespace tabula::detail {

Loss Loss::from_name(std::string_view name) {
  if (name == "categorical_crossentropy") return {Kind::categorical_crossentropy, "categorical_crossentropy"};
  if (name == "sparse_categorical_crossentropy")
    return {Kind::sparse_categorical_crossentropy, "sparse_categorical_crossentropy"};
  if (name == "binary_crossentropy") return {Kind::binary_crossentropy, "binary_crossentropy"};
  if (name == "mean_squared_error" || name == "mse")
    return {Kind::mean_squared_error, "mean_squared_error"};
  if (name == "mean_absolute_error" || name == "mae")
    return {Kind::mean_absolute_error, "mean_absolute_error"};
  TABULA_THROW(InvalidArgument,
               "loss: expected one of categorical_crossentropy, sparse_categorical_crossentropy, "
               "binary_crossentropy, mean_squared_error (mse), mean_absolute_error (mae), got '"
                   << name << "'");
}

bool Loss::fuses_with(Activation last) const noexcept {
  switch (kind_) {
    case Kind::categorical_crossentropy:
    case Kind::sparse_categorical_crossentropy: return last == Activation::softmax;
    case Kind::binary_crossentropy: return last == Activation::sigmoid;
    default: return false;
  }
}

std::int64_t label_at(const Tensor& y, std::int64_t i) {
  switch (y.dtype()) {
    case DType::int64: return y.data<std::int64_t>()[i];
    case DType::int32: return y.data<std::int32_t>()[i];
    case DType::uint8: return y.data<std::uint8_t>()[i];
    case DType::float32:
      return bodies::label_from(y.data<float>()[i]);
    case DType::float64:
      return bodies::label_from(y.data<double>()[i]);
  }
  return -1;
}

void Loss::check_targets(const Shape& out, const Tensor& y, std::string_view what) const {
  const Shape& ys = y.shape();
  TABULA_EXPECT(ys.rank() >= 1, InvalidArgument, what << " targets", "a batch axis", ys.str());
  std::vector<std::int64_t> per_sample(ys.dims().begin() + 1, ys.dims().end());
  if (kind_ == Kind::sparse_categorical_crossentropy) {
    // Integer class indices: the output's shape without its class axis (a trailing 1 is
    // accepted too, as Keras does).
    std::vector<std::int64_t> expected(out.dims().begin(), out.dims().end() - 1);
    if (per_sample.size() == expected.size() + 1 && per_sample.back() == 1) per_sample.pop_back();
    TABULA_EXPECT(per_sample == expected, InvalidArgument,
                  what << " targets for sparse_categorical_crossentropy",
                  "per-sample shape " << Shape(expected).str() << " (class indices)",
                  Shape(per_sample).str());
    return;
  }
  TABULA_EXPECT(y.dtype() == DType::float32, InvalidArgument, what << " targets for " << name_,
                "float32 (use to_categorical for class labels)", name_of(y.dtype()));
  TABULA_EXPECT(Shape(per_sample) == out, InvalidArgument, what << " targets for " << name_,
                "per-sample shape " << out.str(), Shape(per_sample).str());
}

double Loss::compute(const Tensor& y_pred, const Tensor& y_true, const Tensor* grad,
                     bool fused) const {
  return score_batch(this, {}, y_pred, y_true, grad, fused).loss;
}

}  // namespace tabula::detail
