#include "tabula/nn/layers/activation_layer.hpp"

#include <cstring>

#include "backend/detail/device_copy.hpp"
#include "backend/detail/kernels.hpp"
#include "nn/detail/tensor_views.hpp"

namespace tabula::layers {
namespace {

using detail::f32;

class ActivationLayer final : public LayerImpl {
 public:
  ActivationLayer(tabula::Activation f, std::string name)
      : LayerImpl("activation", std::move(name)), f_(f) {}

  std::string type_name() const override { return "Activation"; }
  tabula::Activation output_activation() const noexcept override { return f_; }

  Shape do_build(const Shape& input) override {
    cols_ = input.rank() == 0 ? 1 : input[-1];
    return input;
  }

  void forward(const Tensor& x, const Tensor& y, bool) override {
    detail::kernels_for(x.device())
        .activation_forward(f_, f32(x), f32(y), cols_ ? x.numel() / cols_ : 0, cols_);
  }

  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor* dx) override {
    if (!dx) return;
    const std::int64_t rows = cols_ ? x.numel() / cols_ : 0;
    if (fused_output()) {
      detail::copy_bytes(f32(*dx), dx->device(), f32(dy), dy.device(), dy.nbytes());
    } else {
      detail::kernels_for(x.device()).activation_backward(f_, f32(y), f32(dy), f32(*dx), rows,
                                                          cols_);
    }
  }

 private:
  tabula::Activation f_;
  std::int64_t cols_ = 0;
};

}  // namespace

Layer Activation(std::string_view activation, std::string name) {
  return Layer(std::make_shared<ActivationLayer>(activation_from_name(activation),
                                                 std::move(name)));
}

}  // namespace tabula::layers
