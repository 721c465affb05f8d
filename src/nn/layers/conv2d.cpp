#include "tabula/nn/layers/conv2d.hpp"

#include <algorithm>
#include <cctype>

#include "backend/detail/kernels.hpp"
#include "nn/detail/gemm_packing.hpp"
#include "nn/detail/initializers.hpp"
#include "nn/detail/tensor_views.hpp"
#include "nn/detail/window_geometry.hpp"
#include "session/detail/session_scratch.hpp"
#include "tabula/core/errors.hpp"

namespace tabula::layers {
namespace {

using detail::f32;
using detail::index_t;
using detail::Window2d;

/// The columns workspace holds at most this many bytes, unless one sample alone needs more:
/// large batches are then unfolded and multiplied a chunk of samples at a time.
constexpr std::size_t kWorkspaceBudget = std::size_t{16} << 20;

using detail::lowercase;

/// Owns the kernel and bias, and per batch size a columns workspace that holds the unfolded
/// patches of one chunk of samples (forward, and dW in backward) and then their gradients
/// (dX in backward). Not thread-safe, like every layer.
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
    const auto [sh, sw] = strides_;
    patch_ = kh * kw * input[2];
    pixels_ = window_.out_h * window_.out_w;
    // A 1x1 kernel with unit strides reads each pixel's channels as they lie: no unfolding.
    direct_ = kh == 1 && kw == 1 && sh == 1 && sw == 1;
    kernel_ = &add_weight("kernel", {kh, kw, input[2], filters_});
    if (use_bias_) bias_ = &add_weight("bias", {filters_});
    return Shape{window_.out_h, window_.out_w, filters_};
  }

  void initialize(RandomGenerator& rng) override {
    const auto [kh, kw] = kernel_size_;
    detail::glorot_uniform(kernel_->value, patch_, kh * kw * filters_, rng);
    if (bias_) detail::constant(bias_->value, 0.0f);
  }

  void reserve(std::int64_t batch) override {
    TABULA_EXPECT(built(), InvalidArgument, "reserve of Conv2D layer '" << name() << "'",
                  "a built layer", "one not built yet");
    columns_ = packing_ = Tensor();  // give the old workspace back before asking for the new
    chunk_ = 0;
    if (!direct_) {
      const std::size_t sample_bytes = static_cast<std::size_t>(pixels_ * patch_) * sizeof(float);
      chunk_ = std::clamp<std::int64_t>(static_cast<std::int64_t>(kWorkspaceBudget / sample_bytes),
                                        1, std::max<std::int64_t>(batch, 1));
      columns_ = empty({chunk_ * pixels_, patch_},
                       {.category = Category::workspace, .name = name() + "/columns"});
    }
    // The GEMMs run over the whole batch (direct) or one chunk of unfolded samples at a time.
    const index_t rows = (direct_ ? batch : chunk_) * pixels_;
    packing_ = detail::reserve_gemm_packing(
        name(), kernel_->value,
        {{rows, filters_, patch_}, {patch_, filters_, rows}, {rows, patch_, filters_}});
  }
  void release_batch_buffers() override {
    columns_ = packing_ = Tensor();
    chunk_ = 0;
  }

  void forward(const Tensor& x, const Tensor& y, bool) override {
    auto& k = detail::kernels_for(x.device());
    detail::SessionScratch scratch(kernel_->value, packing_);  // the GEMMs' packing buffers
    const index_t n = detail::rows_of(x);
    const float* kernel = f32(kernel_->value);
    float* out = f32(y);
    if (direct_) {
      k.gemm(scratch, false, false, n * pixels_, filters_, patch_, 1.0f, f32(x), patch_, kernel,
             filters_, 0.0f, out, filters_);
    } else {
      const Window2d w = window(n);
      float* columns = workspace(n);
      for (index_t first = 0; first < n; first += chunk_) {
        const index_t count = std::min(chunk_, n - first);
        k.im2col(w, f32(x), first, count, columns);
        k.gemm(scratch, false, false, count * pixels_, filters_, patch_, 1.0f, columns, patch_,
               kernel, filters_, 0.0f, out + first * pixels_ * filters_, filters_);
      }
    }
    if (bias_) k.add_bias(out, f32(bias_->value), n * pixels_, filters_);
    k.activation_forward(activation_, out, out, n * pixels_, filters_);
  }

  void backward(const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor* dx) override {
    auto& k = detail::kernels_for(x.device());
    detail::SessionScratch scratch(kernel_->value, packing_);  // the GEMMs' packing buffers
    const index_t n = detail::rows_of(x);
    const index_t rows = n * pixels_;
    float* g = f32(dy);  // becomes dL/d(pre-activation), in place
    if (!fused_output()) k.activation_backward(activation_, f32(y), g, g, rows, filters_);
    if (bias_) k.sum_rows(g, f32(bias_->gradient), rows, filters_);
    const float* kernel = f32(kernel_->value);
    float* dkernel = f32(kernel_->gradient);
    if (direct_) {
      k.gemm(scratch, true, false, patch_, filters_, rows, 1.0f, f32(x), patch_, g, filters_, 0.0f,
             dkernel, filters_);
      if (dx)
        k.gemm(scratch, false, true, rows, patch_, filters_, 1.0f, g, filters_, kernel, filters_,
               0.0f, f32(*dx), patch_);
      return;
    }
    const Window2d w = window(n);
    float* columns = workspace(n);
    for (index_t first = 0; first < n; first += chunk_) {
      const index_t count = std::min(chunk_, n - first);
      const float* g_chunk = g + first * pixels_ * filters_;
      k.im2col(w, f32(x), first, count, columns);
      k.gemm(scratch, true, false, patch_, filters_, count * pixels_, 1.0f, columns, patch_,
             g_chunk, filters_, first == 0 ? 0.0f : 1.0f, dkernel, filters_);
      if (!dx) continue;
      // The chunk's patches are used up: their gradients take their place, then fold back.
      k.gemm(scratch, false, true, count * pixels_, patch_, filters_, 1.0f, g_chunk, filters_,
             kernel, filters_, 0.0f, columns, patch_);
      k.col2im(w, columns, first, count, f32(*dx));
    }
  }

 private:
  Window2d window(index_t batch) const {
    Window2d w = window_;
    w.batch = batch;
    return w;
  }

  /// The columns buffer; reserved here only when a caller skipped reserve().
  float* workspace(index_t batch) {
    if (!columns_.defined()) reserve(batch);
    return f32(columns_);
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
  bool direct_ = false;
  index_t chunk_ = 0;  // samples unfolded at once
  Tensor columns_;
  Tensor packing_;  // the GEMMs' packing buffer, per batch size (reserve)
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
