#include "nn/detail/loss.hpp"

#include <algorithm>
#include <cmath>

#include "backend/detail/device_copy.hpp"
#include "tabula/core/errors.hpp"

namespace tabula::detail {

namespace {

// Keras clips probabilities to [epsilon, 1 - epsilon] before taking logarithms.
constexpr float kEpsilon = 1e-7f;

float clip(float p) { return std::min(std::max(p, kEpsilon), 1.0f - kEpsilon); }

}  // namespace

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
    case DType::float32: return static_cast<std::int64_t>(y.data<float>()[i]);
    case DType::float64: return static_cast<std::int64_t>(y.data<double>()[i]);
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
  if (!y_pred.device().is_cpu() || !y_true.device().is_cpu()) {
    // A batch's outputs are small (batch x classes): computed on host copies, in the session's
    // host pool, and the gradient copied back. The host reads the loss every step anyway.
    const Tensor p = y_pred.to(Device::cpu()), t = y_true.to(Device::cpu());
    if (grad == nullptr) return compute(p, t, nullptr, fused);
    const Tensor g = grad->to(Device::cpu());
    const double loss = compute(p, t, &g, fused);
    copy_bytes(grad->raw_data(), grad->device(), g.raw_data(), g.device(), g.nbytes());
    return loss;
  }
  const float* p = y_pred.data<float>();
  float* g = grad ? grad->data<float>() : nullptr;
  const std::int64_t n = y_pred.numel();
  const std::int64_t classes = y_pred.shape()[-1];
  const std::int64_t rows = classes ? n / classes : 0;
  double total = 0.0;
  switch (kind_) {
    case Kind::categorical_crossentropy: {
      const float* t = y_true.data<float>();
      const float inv_rows = 1.0f / static_cast<float>(rows);
      for (std::int64_t r = 0; r < rows; ++r) {
        const float* pr = p + r * classes;
        const float* tr = t + r * classes;
        float target_sum = 0.0f;
        for (std::int64_t c = 0; c < classes; ++c) {
          total -= static_cast<double>(tr[c]) * std::log(clip(pr[c]));
          target_sum += tr[c];
        }
        if (!g) continue;
        float* gr = g + r * classes;
        for (std::int64_t c = 0; c < classes; ++c)
          gr[c] = fused ? (pr[c] * target_sum - tr[c]) * inv_rows : -tr[c] / clip(pr[c]) * inv_rows;
      }
      return total / static_cast<double>(rows);
    }
    case Kind::sparse_categorical_crossentropy: {
      const float inv_rows = 1.0f / static_cast<float>(rows);
      for (std::int64_t r = 0; r < rows; ++r) {
        const std::int64_t label = label_at(y_true, r);
        TABULA_EXPECT(label >= 0 && label < classes, InvalidArgument,
                      "sparse_categorical_crossentropy label of sample " << r,
                      "a class index in [0, " << classes << ")", label);
        const float* pr = p + r * classes;
        total -= std::log(clip(pr[label]));
        if (!g) continue;
        float* gr = g + r * classes;
        if (fused) {
          for (std::int64_t c = 0; c < classes; ++c) gr[c] = pr[c] * inv_rows;
          gr[label] -= inv_rows;
        } else {
          std::fill(gr, gr + classes, 0.0f);
          gr[label] = -inv_rows / clip(pr[label]);
        }
      }
      return total / static_cast<double>(rows);
    }
    case Kind::binary_crossentropy: {
      const float* t = y_true.data<float>();
      const float inv_n = 1.0f / static_cast<float>(n);
      for (std::int64_t i = 0; i < n; ++i) {
        const float q = clip(p[i]);
        total -= static_cast<double>(t[i]) * std::log(q) + (1.0 - t[i]) * std::log(1.0f - q);
        if (g) g[i] = fused ? (p[i] - t[i]) * inv_n : (q - t[i]) / (q * (1.0f - q)) * inv_n;
      }
      return total / static_cast<double>(n);
    }
    case Kind::mean_squared_error:
    case Kind::mean_absolute_error: {
      const float* t = y_true.data<float>();
      const float inv_n = 1.0f / static_cast<float>(n);
      const bool squared = kind_ == Kind::mean_squared_error;
      for (std::int64_t i = 0; i < n; ++i) {
        const float d = p[i] - t[i];
        total += squared ? static_cast<double>(d) * d : std::fabs(d);
        if (g) g[i] = (squared ? 2.0f * d : static_cast<float>((d > 0) - (d < 0))) * inv_n;
      }
      return total / static_cast<double>(n);
    }
  }
  return 0.0;
}

}  // namespace tabula::detail
