#include "tabula/nn/layers/pooling.hpp"

#include <algorithm>
#include <cctype>
#include <limits>

#include "backend/detail/kernels.hpp"
#include "nn/detail/tensor_views.hpp"
#include "nn/detail/window_geometry.hpp"
#include "tabula/core/errors.hpp"

namespace tabula::layers {
namespace {

using detail::f32;
using detail::index_t;
using detail::Window2d;

using detail::lowercase;

/// What both poolings share: options, geometry, and the shape rules. No weights; not
/// thread-safe, like every layer.
class Pool2DLayer : public LayerImpl {
 public:
  Pool2DLayer(std::string_view prefix, std::pair<std::int64_t, std::int64_t> pool_size,
              std::pair<std::int64_t, std::int64_t> strides, bool same, std::string name)
      : LayerImpl(prefix, std::move(name)), pool_size_(pool_size), strides_(strides), same_(same) {}

  Shape do_build(const Shape& input) override {
    window_ = detail::make_window(type_name(), name(), input, "pool_size", pool_size_, strides_,
                                  same_);
    return Shape{window_.out_h, window_.out_w, input[2]};
  }

 protected:
  Window2d window(index_t batch) const {
    Window2d w = window_;
    w.batch = batch;
    return w;
  }

 private:
  std::pair<std::int64_t, std::int64_t> pool_size_;
  std::pair<std::int64_t, std::int64_t> strides_;
  bool same_;
  Window2d window_{};
};

/// Keeps, per batch reserved for training, the flat input position of each output's maximum
/// (int32, category activations) so that backward routes each gradient to the element that
/// won; reserved for inference it keeps nothing.
class MaxPooling2DLayer final : public Pool2DLayer {
 public:
  using Pool2DLayer::Pool2DLayer;
  std::string type_name() const override { return "MaxPooling2D"; }

  void do_reserve(std::int64_t batch, bool training) override {
    TABULA_EXPECT(built(), InvalidArgument, "reserve of MaxPooling2D layer '" << name() << "'",
                  "a built layer", "one not built yet");
    const std::int64_t elements = batch * input_shape().numel();
    TABULA_EXPECT(elements <= std::numeric_limits<std::int32_t>::max(), InvalidArgument,
                  "batch of " << batch << " for MaxPooling2D layer '" << name() << "' (input "
                              << input_shape().str() << ")",
                  "at most " << std::numeric_limits<std::int32_t>::max()
                             << " input elements per batch (int32 positions)",
                  elements);
    if (training)
      argmax_ = empty(
          detail::batched(batch, output_shape()),
          {.dtype = DType::int32, .category = Category::activations, .name = name() + "/argmax"});
  }
  void do_release_batch_buffers() noexcept override { argmax_ = Tensor(); }

  // Positions are kept whenever there is room for them, so that a backward pass may follow an
  // inference forward pass too (as the layer tests do).
  void forward(const Tensor& x, const Tensor& y, bool training) override {
    const index_t n = detail::rows_of(x);
    reserve_if_needed(n, training);
    detail::kernels_for(x.device())
        .max_pool_forward(
            window(n), f32(x), f32(y),
            argmax_.defined() ? static_cast<std::int32_t*>(argmax_.raw_data()) : nullptr);
  }

  void backward(const Tensor& x, const Tensor&, const Tensor& dy, const Tensor* dx) override {
    if (!dx) return;
    TABULA_EXPECT(argmax_.defined(), InvalidArgument,
                  "backward of MaxPooling2D layer '" << name() << "'",
                  "a forward pass after reserve(batch, training = true)",
                  "batch buffers reserved for inference (no maxima's positions)");
    detail::kernels_for(x.device())
        .max_pool_backward(window(detail::rows_of(x)), f32(dy),
                           static_cast<const std::int32_t*>(argmax_.raw_data()), f32(*dx));
  }

 private:
  Tensor argmax_;
};

/// Owns nothing per batch: the gradient of a mean spreads evenly over its window.
class AveragePooling2DLayer final : public Pool2DLayer {
 public:
  using Pool2DLayer::Pool2DLayer;
  std::string type_name() const override { return "AveragePooling2D"; }

  void forward(const Tensor& x, const Tensor& y, bool) override {
    detail::kernels_for(x.device()).avg_pool_forward(window(detail::rows_of(x)), f32(x), f32(y));
  }

  void backward(const Tensor& x, const Tensor&, const Tensor& dy, const Tensor* dx) override {
    if (!dx) return;
    detail::kernels_for(x.device())
        .avg_pool_backward(window(detail::rows_of(x)), f32(dy), f32(*dx));
  }
};

template <typename L>
Layer make_pool(const char* type, const char* prefix, std::pair<std::int64_t, std::int64_t> pool,
                const Pool2DOptions& options) {
  TABULA_EXPECT(pool.first > 0 && pool.second > 0, InvalidArgument, type << " pool_size",
                "two positive sizes", "(" << pool.first << ", " << pool.second << ")");
  const auto strides = options.strides.value_or(pool);
  TABULA_EXPECT(strides.first > 0 && strides.second > 0, InvalidArgument, type << " strides",
                "two positive steps", "(" << strides.first << ", " << strides.second << ")");
  const std::string padding = lowercase(options.padding);
  TABULA_EXPECT(padding == "valid" || padding == "same", InvalidArgument, type << " padding",
                "'valid' or 'same'", "'" << options.padding << "'");
  return Layer(std::make_shared<L>(prefix, pool, strides, padding == "same", options.name));
}

}  // namespace

Layer MaxPooling2D(std::pair<std::int64_t, std::int64_t> pool_size, const Pool2DOptions& options) {
  return make_pool<MaxPooling2DLayer>("MaxPooling2D", "max_pooling2d", pool_size, options);
}

Layer AveragePooling2D(std::pair<std::int64_t, std::int64_t> pool_size,
                       const Pool2DOptions& options) {
  return make_pool<AveragePooling2DLayer>("AveragePooling2D", "average_pooling2d", pool_size,
                                          options);
}

}  // namespace tabula::layers
