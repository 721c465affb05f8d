#include "tabula/nn/layers/dropout.hpp"

#include "backend/detail/device_copy.hpp"
#include "backend/detail/kernels.hpp"
#include "nn/detail/tensor_views.hpp"
#include "tabula/core/errors.hpp"

namespace tabula::layers {
namespace {

using detail::f32;

class DropoutLayer final : public LayerImpl {
 public:
  DropoutLayer(double rate, std::string name)
      : LayerImpl("dropout", std::move(name)), rate_(static_cast<float>(rate)) {}

  std::string type_name() const override { return "Dropout"; }
  Shape do_build(const Shape& input) override { return input; }

  // Inference copies its input through: the mask is for training only.
  void do_reserve(std::int64_t batch, bool training) override {
    if (training)
      mask_ = empty(detail::batched(batch, input_shape()),
                    {.category = Category::activations, .name = name() + "/mask"});
  }
  void do_release_batch_buffers() noexcept override {
    mask_ = Tensor();
    trained_ = false;
  }

  void forward(const Tensor& x, const Tensor& y, bool training) override {
    if (!training || rate_ == 0.0f) {
      if (x.raw_data() != y.raw_data())
        detail::copy_bytes(f32(y), y.device(), f32(x), x.device(), x.nbytes());
      trained_ = false;
      return;
    }
    const std::int64_t n = x.numel();
    reserve_if_needed(detail::rows_of(x), true);
    auto& k = detail::kernels_for(x.device());
    detail::with_rng_of(mask_,
                        [&](RandomGenerator& rng) { k.dropout_mask(f32(mask_), n, rate_, rng); });
    k.multiply(f32(x), f32(mask_), 1.0f / (1.0f - rate_), f32(y), n);
    trained_ = true;
  }

  void backward(const Tensor&, const Tensor&, const Tensor& dy, const Tensor* dx) override {
    if (!dx) return;
    if (!trained_) {
      detail::copy_bytes(f32(*dx), dx->device(), f32(dy), dy.device(), dy.nbytes());
      return;
    }
    detail::kernels_for(dy.device())
        .multiply(f32(dy), f32(mask_), 1.0f / (1.0f - rate_), f32(*dx), dy.numel());
  }

 private:
  float rate_;
  bool trained_ = false;
  Tensor mask_;
};

}  // namespace

Layer Dropout(double rate, std::string name) {
  TABULA_EXPECT(rate >= 0.0 && rate < 1.0, InvalidArgument, "Dropout rate", "in [0, 1)", rate);
  return Layer(std::make_shared<DropoutLayer>(rate, std::move(name)));
}

}  // namespace tabula::layers
