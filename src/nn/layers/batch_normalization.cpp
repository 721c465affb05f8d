#include "tabula/nn/layers/batch_normalization.hpp"

#include <cmath>

#include "backend/detail/normalization_kernels.hpp"
#include "nn/detail/initializers.hpp"
#include "nn/detail/tensor_views.hpp"
#include "session/detail/session_scratch.hpp"
#include "tabula/core/errors.hpp"

namespace tabula::layers {
namespace {

using detail::f32;

/// Owns gamma/beta (when enabled), the moving statistics, and, between reserve() and
/// release_batch_buffers(), the per-channel statistics its last forward pass normalised with.
/// Not thread-safe (one model, one thread).
class BatchNormalizationLayer final : public LayerImpl {
 public:
  explicit BatchNormalizationLayer(const BatchNormalizationOptions& options)
      : LayerImpl("batch_normalization", options.name),
        momentum_(static_cast<float>(options.momentum)),
        epsilon_(static_cast<float>(options.epsilon)),
        center_(options.center),
        scale_(options.scale) {}

  std::string type_name() const override { return "BatchNormalization"; }

  Shape do_build(const Shape& input) override {
    TABULA_EXPECT(input.rank() >= 1 && input[-1] > 0, InvalidArgument,
                  "input shape of BatchNormalization layer '" << name() << "'",
                  "at least one axis with a positive last extent (the channels)", input.str());
    channels_ = input[-1];
    // Keras 3's order, which get_weights/save_weights follow.
    if (scale_) gamma_ = &add_weight("gamma", {channels_});
    if (center_) beta_ = &add_weight("beta", {channels_});
    moving_mean_ = &add_weight("moving_mean", {channels_}, false);
    moving_variance_ = &add_weight("moving_variance", {channels_}, false);
    // Usable straight after build, before anyone calls initialize().
    reset_affine();
    reset_state();
    return input;
  }

  void initialize(RandomGenerator&) override {
    reset_affine();
    reset_state();
  }

  void reset_state() override {
    detail::constant(moving_mean_->value, 0.0f);
    detail::constant(moving_variance_->value, 1.0f);
  }

  // Inference normalises with the moving statistics: nothing to keep, nothing to sum apart.
  void do_reserve(std::int64_t, bool training) override {
    if (!training) return;
    // Row 0: mean, row 1: 1 / sqrt(variance + epsilon). Per channel, so any batch size fits.
    saved_ = empty({2, channels_},
                   {.category = Category::activations, .name = name() + "/batch_statistics"});
    detail::SessionScratch scratch(moving_mean_->value);
    detail::normalization_kernels_for(moving_mean_->value.device()).prepare(scratch);
  }
  void do_release_batch_buffers() noexcept override {
    saved_ = Tensor();
    last_forward_ = Mode::none;
  }

  void forward(const Tensor& x, const Tensor& y, bool training) override {
    auto& k = detail::normalization_kernels_for(x.device());
    const std::int64_t rows = x.numel() / channels_;
    if (training && !saved_.defined())
      reserve(x.shape()[0], true);  // only when reserve() was skipped, or made for inference
    float* saved = saved_.defined() ? f32(saved_) : nullptr;
    if (training) {
      detail::SessionScratch scratch(moving_mean_->value);  // a device's partial sums
      k.batch_norm_forward_training(scratch, f32(x), weight(gamma_), weight(beta_), f32(y), rows,
                                    channels_, momentum_, epsilon_, f32(moving_mean_->value),
                                    f32(moving_variance_->value), saved, saved + channels_);
      last_forward_ = Mode::training;
    } else {
      k.batch_norm_forward_inference(f32(x), weight(gamma_), weight(beta_),
                                     f32(moving_mean_->value), f32(moving_variance_->value),
                                     epsilon_, f32(y), rows, channels_, saved,
                                     saved ? saved + channels_ : nullptr);
      last_forward_ = saved ? Mode::inference : Mode::none;
    }
  }

  void backward(const Tensor& x, const Tensor&, const Tensor& dy, const Tensor* dx) override {
    TABULA_EXPECT(last_forward_ != Mode::none, InvalidArgument,
                  "backward of BatchNormalization layer '" << name() << "'",
                  "a forward pass after reserve(batch, training = true)",
                  (saved_.defined() ? "none" : "batch buffers reserved for inference"));
    const float* saved = f32(saved_);
    detail::SessionScratch scratch(moving_mean_->value);  // a device's partial sums
    detail::normalization_kernels_for(x.device())
        .batch_norm_backward(scratch, f32(x), f32(dy), weight(gamma_), saved, saved + channels_,
                             x.numel() / channels_, channels_, last_forward_ == Mode::training,
                             dx ? f32(*dx) : nullptr, gamma_ ? f32(gamma_->gradient) : nullptr,
                             beta_ ? f32(beta_->gradient) : nullptr);
  }

 private:
  // Which statistics `saved_` holds: the batch's (backward goes through them) or the
  // moving ones (backward is affine).
  enum class Mode { none, training, inference };

  static const float* weight(const Parameter* p) { return p ? f32(p->value) : nullptr; }

  void reset_affine() {
    if (gamma_) detail::constant(gamma_->value, 1.0f);
    if (beta_) detail::constant(beta_->value, 0.0f);
  }

  float momentum_;
  float epsilon_;
  bool center_;
  bool scale_;
  std::int64_t channels_ = 0;
  Parameter* gamma_ = nullptr;
  Parameter* beta_ = nullptr;
  Parameter* moving_mean_ = nullptr;
  Parameter* moving_variance_ = nullptr;
  Tensor saved_;
  Mode last_forward_ = Mode::none;
};

}  // namespace

Layer BatchNormalization(const BatchNormalizationOptions& options) {
  // Checked before the layer exists, so a refused call takes no name from the session.
  const std::string layer = options.name.empty()
                                ? std::string("BatchNormalization")
                                : "BatchNormalization layer '" + options.name + "'";
  TABULA_EXPECT(options.momentum >= 0.0 && options.momentum < 1.0, InvalidArgument,
                layer << " momentum", "in [0, 1)", options.momentum);
  TABULA_EXPECT(options.epsilon > 0.0 && std::isfinite(options.epsilon), InvalidArgument,
                layer << " epsilon", "a finite value > 0", options.epsilon);
  return Layer(std::make_shared<BatchNormalizationLayer>(options));
}

}  // namespace tabula::layers
