#pragma once
/// @file
/// Layers: the base every layer implements, and the `Layer` handle users pass around.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tabula/core/shape.hpp"
#include "tabula/core/tensor.hpp"
#include "tabula/nn/activation.hpp"

namespace tabula {

class RandomGenerator;
namespace detail {
class SharedWorkspace;
}

/// @brief A weight of a layer and, once the model is compiled, its gradient.
struct Parameter {
  std::string name;   ///< "kernel", "bias", "gamma", ...
  Tensor value;       ///< category weights
  Tensor gradient;    ///< category gradients; empty until compiled, and for non-trainables
  bool trainable = true;
};

/// @brief The base of every layer: owns its weights and computes its own forward and backward
/// pass on batches held in buffers the model allocates once per batch size.
///
/// Shapes given to `build` and returned by it are per sample (no batch axis); tensors given to
/// `forward`/`backward` carry the batch axis first. Layers are not thread-safe: one model, one
/// thread at a time.
class LayerImpl {
 public:
  /// @param type_prefix the Keras-style name prefix ("dense", "conv2d")
  /// @param name a user-given name; empty: a unique one from the current session
  LayerImpl(std::string_view type_prefix, std::string name);
  virtual ~LayerImpl();
  LayerImpl(const LayerImpl&) = delete;
  LayerImpl& operator=(const LayerImpl&) = delete;

  const std::string& name() const noexcept { return name_; }
  /// The class name Keras shows in a summary: "Dense", "Conv2D", ...
  virtual std::string type_name() const = 0;

  /// Creates the weights for per-sample `input_shape` in the current session and returns the
  /// per-sample output shape. @throws InvalidArgument when the input shape does not fit.
  Shape build(const Shape& input_shape);
  bool built() const noexcept { return built_; }
  const Shape& input_shape() const noexcept { return input_shape_; }
  const Shape& output_shape() const noexcept { return output_shape_; }

  /// Allocates what the layer keeps per batch (masks, indices, workspace) for batches of up
  /// to `batch` samples; called once per batch size, never per step. For training, what
  /// forward and backward need; else (evaluate, predict) only what an inference forward pass
  /// needs: no dropout masks, no pooling positions, no backward workspace. A forward pass on a
  /// layer reserved for less (or not at all: then for training) reserves what it needs itself,
  /// as Dense's GEMMs borrow from the session what their packing lacks; a backward pass that
  /// needs what an inference reserve left out throws InvalidArgument.
  /// With `shared` (an execution plan's), the workspace of the layer's passes comes from that
  /// one buffer, which the plan's layers share, instead of one of the layer's own.
  /// @throws OutOfMemory, InvalidArgument (a batch the layer cannot take); the layer is then
  ///         unreserved.
  void reserve(std::int64_t batch, bool training = true, detail::SharedWorkspace* shared = nullptr);
  /// Drops what `reserve` allocated.
  void release_batch_buffers() noexcept;
  /// The batch size and pass the layer's buffers are reserved for (0: none).
  std::int64_t reserved_batch() const noexcept { return reserved_batch_; }
  bool reserved_for_training() const noexcept { return reserved_for_training_; }
  /// Whether the layer's buffers serve passes of up to `batch` samples (and backward ones, for
  /// `training`).
  bool reserved_for(std::int64_t batch, bool training) const noexcept {
    return reserved_batch_ >= batch && (reserved_for_training_ || !training);
  }
  detail::SharedWorkspace* reserved_workspace() const noexcept { return shared_workspace_; }

  /// y = layer(x). `y` is preallocated with the output shape and x's batch size.
  virtual void forward(const Tensor& x, const Tensor& y, bool training) = 0;
  /// Given dL/dy, writes the parameters' gradients and, when `dx` is non-null, dL/dx.
  virtual void backward(const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor* dx) = 0;

  /// True for layers whose output is their input reinterpreted (Flatten, Reshape, Input).
  virtual bool is_view() const noexcept { return false; }
  /// The activation applied last, for fusing softmax/sigmoid with a cross-entropy loss.
  virtual Activation output_activation() const noexcept { return Activation::linear; }
  /// When set, backward receives dL/d(pre-activation) and skips its activation's derivative
  /// (the loss has already folded it in, which is exact and numerically stable).
  void set_fused_output(bool fused) noexcept { fused_output_ = fused; }

  /// (Re)draws the weights from their initialisers.
  virtual void initialize(RandomGenerator& rng) { (void)rng; }
  /// Resets non-trainable state (e.g. moving statistics) to its initial value.
  virtual void reset_state() {}

  std::vector<Parameter*> parameters();
  /// Creates the gradient tensors of the trainable parameters (at compile time).
  void allocate_gradients();
  std::int64_t count_params(bool trainable_only = false) const;

 protected:
  /// Override: create weights with `add_weight` and return the output shape.
  virtual Shape do_build(const Shape& input_shape) = 0;
  /// Override: allocate the per-batch buffers `reserve` describes (default: none).
  virtual void do_reserve(std::int64_t batch, bool training) {
    (void)batch;
    (void)training;
  }
  /// Override: drop them (they are not needed again until the next `reserve`).
  virtual void do_release_batch_buffers() noexcept {}
  Parameter& add_weight(const std::string& name, const Shape& shape, bool trainable = true);
  /// For a forward pass of `batch` samples on a layer reserved for less (or skipped: then for
  /// training, as a layer used on its own is): reserves what the pass needs, keeping a
  /// training reservation a training one. @throws OutOfMemory
  void reserve_if_needed(std::int64_t batch, bool training);
  bool fused_output() const noexcept { return fused_output_; }

 private:
  std::string name_;
  Shape input_shape_;
  Shape output_shape_;
  bool built_ = false;
  bool fused_output_ = false;
  std::int64_t reserved_batch_ = 0;
  bool reserved_for_training_ = false;
  detail::SharedWorkspace* shared_workspace_ = nullptr;
  std::vector<std::unique_ptr<Parameter>> parameters_;
};

/// @brief A handle to a layer (copies share it), as returned by `tabula::layers::Dense(...)`.
class Layer {
 public:
  Layer() = default;
  explicit Layer(std::shared_ptr<LayerImpl> impl) noexcept : impl_(std::move(impl)) {}

  bool defined() const noexcept { return impl_ != nullptr; }
  const std::string& name() const;
  LayerImpl& impl() const;
  LayerImpl* operator->() const { return &impl(); }

 private:
  std::shared_ptr<LayerImpl> impl_;
};

}  // namespace tabula
