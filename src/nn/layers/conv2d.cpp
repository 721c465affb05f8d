#include "tabula/nn/layers/conv2d.hpp"

#include <algorithm>
#include <cctype>

#include "backend/detail/convolution_kernels.hpp"
#include "backend/detail/kernels.hpp"
#include "nn/detail/gemm_packing.hpp"
#include "nn/detail/initializers.hpp"
#include "nn/detail/shared_workspace.hpp"
#include "nn/detail/tensor_views.hpp"
#include "nn/detail/window_geometry.hpp"
#include "session/detail/session_scratch.hpp"
#include "tabula/core/errors.hpp"

namespace tabula::layers {
namespace {

using detail::f32;
using detail::index_t;
using detail::Window2d;

using detail::lowercase;

/// Owns the kernel and bias, and per batch size the plan of its convolution on the weights'
/// device and the workspace that plan runs in (ConvolutionKernels: unfolded patches, or a
/// library's workspace). Not thread-safe, like every layer.
class Conv2DLayer final : public LayerImpl {
 public:
  Conv2DLayer(std::int64_t filters, std::pair<std::int64_t, std::int64_t> kernel_size,
              Activation activation, const Conv2DOptions& options, bool same)
      : LayerImpl("conv2d", options.name),
        filters_(filters),
        kernel_size_(kernel_size),
        strides_(options.strides),
        activation_(activation),
        same_(same),
        use_bias_(options.use_bias) {}

  std::string type_name() const override { return "Conv2D"; }
  Activation output_activation() const noexcept override { return activation_; }

  Shape do_build(const Shape& input) override {
    window_ = detail::make_window(type_name(), name(), input, "kernel_size", kernel_size_,
                                  strides_, same_);
    const auto [kh, kw] = kernel_size_;
    patch_ = kh * kw * input[2];
    pixels_ = window_.out_h * window_.out_w;
    kernel_ = &add_weight("kernel", {kh, kw, input[2], filters_});
    if (use_bias_) bias_ = &add_weight("bias", {filters_});
    return Shape{window_.out_h, window_.out_w, filters_};
  }

  void initialize(RandomGenerator& rng) override {
    const auto [kh, kw] = kernel_size_;
    detail::glorot_uniform(kernel_->value, patch_, kh * kw * filters_, rng);
    if (bias_) detail::constant(bias_->value, 0.0f);
  }

  void do_reserve(std::int64_t batch, bool training) override {
    TABULA_EXPECT(built(), InvalidArgument, "reserve of Conv2D layer '" << name() << "'",
                  "a built layer", "one not built yet");
    auto& convolutions = detail::convolution_kernels_for(kernel_->value.device());
    detail::ConvolutionPlan plan;
    {
      detail::SessionScratch scratch(kernel_->value);
      plan = convolutions.plan_conv2d(scratch, convolution(batch), training);
    }
    // The columns (or cuDNN's workspace): a plan's layers share one buffer, lent by the plan,
    // unless it cannot hold them.
    detail::SharedWorkspace* shared = reserved_workspace();
    lent_workspace_ = shared != nullptr && shared->need(plan.workspace_bytes);
    if (!lent_workspace_ && plan.workspace_bytes > 0)
      workspace_ = empty(
          {static_cast<std::int64_t>((plan.workspace_bytes + sizeof(float) - 1) / sizeof(float))},
          {.category = Category::workspace, .name = name() + "/" + plan.workspace_name});
    packing_ = detail::reserve_gemm_packing(name(), kernel_->value, plan.gemms);
    plan_ = std::move(plan);  // only now: a refused buffer leaves the layer unreserved
  }
  void do_release_batch_buffers() noexcept override {
    workspace_ = packing_ = Tensor();
    lent_workspace_ = false;
    plan_ = {};
  }

  void forward(const Tensor& x, const Tensor& y, bool training) override {
    const index_t n = detail::rows_of(x);
    void* workspace = workspace_for(n, training);
    auto& k = detail::kernels_for(x.device());
    detail::SessionScratch scratch(kernel_->value, packing_);  // the GEMMs' packing buffers
    float* out = f32(y);
    detail::convolution_kernels_for(x.device())
        .conv2d_forward(k, scratch, plan_, convolution(n), f32(x), f32(kernel_->value), out,
                        workspace);
    k.bias_activation(out, bias_ ? f32(bias_->value) : nullptr, activation_, n * pixels_, filters_);
  }

  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor* dx) override {
    const index_t n = detail::rows_of(x);
    TABULA_EXPECT(plan_.batch == 0 || plan_.training, InvalidArgument,
                  "backward of Conv2D layer '" << name() << "'",
                  "a forward pass after reserve(batch, training = true)",
                  "batch buffers reserved for inference (no gradient workspace)");
    void* workspace = workspace_for(n, true);
    auto& k = detail::kernels_for(x.device());
    detail::SessionScratch scratch(kernel_->value, packing_);  // the GEMMs' packing buffers
    const index_t rows = n * pixels_;
    float* g = f32(dy);  // becomes dL/d(pre-activation), in place
    if (!fused_output()) k.activation_backward(activation_, f32(y), g, g, rows, filters_);
    if (bias_) k.sum_rows(scratch, g, f32(bias_->gradient), rows, filters_);
    detail::convolution_kernels_for(x.device())
        .conv2d_backward(k, scratch, plan_, convolution(n), f32(x), g, f32(kernel_->value),
                         f32(kernel_->gradient), dx ? f32(*dx) : nullptr, workspace);
  }

 private:
  detail::Convolution2d convolution(index_t batch) const {
    detail::Convolution2d c{.window = window_, .filters = filters_};
    c.window.batch = batch;
    return c;
  }

  /// The workspace of a plan for at least `batch` samples, and for training when `training`;
  /// planned here only when a caller skipped reserve() or reserved for less.
  void* workspace_for(index_t batch, bool training) {
    reserve_if_needed(batch, training);
    if (workspace_.defined()) return workspace_.raw_data();
    return lent_workspace_ && plan_.workspace_bytes > 0 ? reserved_workspace()->data() : nullptr;
  }

  std::int64_t filters_;
  std::pair<std::int64_t, std::int64_t> kernel_size_;
  std::pair<std::int64_t, std::int64_t> strides_;
  Activation activation_;
  bool same_;
  bool use_bias_;
  Window2d window_{};
  index_t patch_ = 0;   // kh * kw * in_channels: one row of the columns matrix
  index_t pixels_ = 0;  // out_h * out_w: rows of the columns matrix per sample
  detail::ConvolutionPlan plan_;  // per batch size (reserve)
  Tensor workspace_;              // the plan's, unless an execution plan lends a shared one
  bool lent_workspace_ = false;   // reserved_workspace() holds the plan's
  Tensor packing_;                // the GEMMs' packing buffer, per batch size (reserve)
  Parameter* kernel_ = nullptr;
  Parameter* bias_ = nullptr;
};

}  // namespace

Layer Conv2D(std::int64_t filters, std::pair<std::int64_t, std::int64_t> kernel_size,
             std::string_view activation, const Conv2DOptions& options) {
  TABULA_EXPECT(filters > 0, InvalidArgument, "Conv2D filters", "> 0", filters);
  TABULA_EXPECT(kernel_size.first > 0 && kernel_size.second > 0, InvalidArgument,
                "Conv2D kernel_size", "two positive sizes",
                "(" << kernel_size.first << ", " << kernel_size.second << ")");
  TABULA_EXPECT(options.strides.first > 0 && options.strides.second > 0, InvalidArgument,
                "Conv2D strides", "two positive steps",
                "(" << options.strides.first << ", " << options.strides.second << ")");
  const std::string padding = lowercase(options.padding);
  TABULA_EXPECT(padding == "valid" || padding == "same", InvalidArgument, "Conv2D padding",
                "'valid' or 'same'", "'" << options.padding << "'");
  return Layer(std::make_shared<Conv2DLayer>(filters, kernel_size, activation_from_name(activation),
                                             options, padding == "same"));
}

}  // namespace tabula::layers
