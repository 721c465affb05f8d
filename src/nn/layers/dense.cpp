#include "tabula/nn/layers/dense.hpp"

#include "backend/detail/kernels.hpp"
#include "nn/detail/gemm_packing.hpp"
#include "nn/detail/initializers.hpp"
#include "nn/detail/tensor_views.hpp"
#include "session/detail/session_scratch.hpp"
#include "tabula/core/errors.hpp"

namespace tabula::layers {
namespace {

using detail::f32;

class DenseLayer final : public LayerImpl {
 public:
  DenseLayer(std::int64_t units, Activation activation, const DenseOptions& options)
      : LayerImpl("dense", options.name),
        units_(units),
        activation_(activation),
        use_bias_(options.use_bias) {}

  std::string type_name() const override { return "Dense"; }
  Activation output_activation() const noexcept override { return activation_; }

  Shape do_build(const Shape& input) override {
    TABULA_EXPECT(input.rank() >= 1 && input[-1] > 0, InvalidArgument,
                  "input shape of Dense layer '" << name() << "'",
                  "at least one axis with a positive last extent", input.str());
    in_ = input[-1];
    kernel_ = &add_weight("kernel", {in_, units_});
    if (use_bias_) bias_ = &add_weight("bias", {units_});
    std::vector<std::int64_t> out = input.dims();
    out.back() = units_;
    return Shape(std::move(out));
  }

  void initialize(RandomGenerator& rng) override {
    detail::glorot_uniform(kernel_->value, in_, units_, rng);
    if (bias_) detail::constant(bias_->value, 0.0f);
  }

  void do_reserve(std::int64_t batch, bool training) override {
    const std::int64_t rows = batch * (input_shape().numel() / in_);
    // y = x W; for training also dW = x^T dy and dx = dy W^T.
    const detail::GemmExtents gemms[] = {
        {rows, units_, in_}, {in_, units_, rows}, {rows, in_, units_}};
    packing_ =
        detail::reserve_gemm_packing(name(), kernel_->value, std::span(gemms, training ? 3 : 1));
  }
  void do_release_batch_buffers() noexcept override { packing_ = Tensor(); }

  void forward(const Tensor& x, const Tensor& y, bool) override {
    auto& k = detail::kernels_for(x.device());
    detail::SessionScratch scratch(kernel_->value, packing_);  // the GEMMs' packing buffers
    const std::int64_t rows = x.numel() / in_;
    k.gemm(scratch, false, false, rows, units_, in_, 1.0f, f32(x), in_, f32(kernel_->value), units_,
           0.0f, f32(y), units_);
    k.bias_activation(f32(y), bias_ ? f32(bias_->value) : nullptr, activation_, rows, units_);
  }

  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor* dx) override {
    auto& k = detail::kernels_for(x.device());
    detail::SessionScratch scratch(kernel_->value, packing_);  // the GEMMs' packing buffers
    const std::int64_t rows = x.numel() / in_;
    float* g = f32(dy);  // becomes dL/d(pre-activation), in place
    if (!fused_output()) k.activation_backward(activation_, f32(y), g, g, rows, units_);
    k.gemm(scratch, true, false, in_, units_, rows, 1.0f, f32(x), in_, g, units_, 0.0f,
           f32(kernel_->gradient), units_);
    if (bias_) k.sum_rows(scratch, g, f32(bias_->gradient), rows, units_);
    if (dx)
      k.gemm(scratch, false, true, rows, in_, units_, 1.0f, g, units_, f32(kernel_->value), units_,
             0.0f, f32(*dx), in_);
  }

 private:
  std::int64_t units_;
  Activation activation_;
  bool use_bias_;
  std::int64_t in_ = 0;
  Parameter* kernel_ = nullptr;
  Parameter* bias_ = nullptr;
  Tensor packing_;  // the GEMMs' packing buffer, per batch size (reserve)
};

}  // namespace

Layer Dense(std::int64_t units, std::string_view activation, const DenseOptions& options) {
  TABULA_EXPECT(units > 0, InvalidArgument, "Dense units", "> 0", units);
  return Layer(std::make_shared<DenseLayer>(units, activation_from_name(activation), options));
}

}  // namespace tabula::layers
