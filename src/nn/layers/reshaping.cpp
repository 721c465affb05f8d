#include "tabula/nn/layers/reshaping.hpp"

#include "nn/detail/layer_queries.hpp"
#include "tabula/core/errors.hpp"

namespace tabula::layers {
namespace {

// Output and input share one buffer; the model never calls forward/backward of a view.
class ViewLayer : public LayerImpl {
 public:
  using LayerImpl::LayerImpl;
  bool is_view() const noexcept override { return true; }
  void forward(const Tensor&, const Tensor&, bool) override {}
  void backward(const Tensor&, const Tensor&, const Tensor&, const Tensor*) override {}
};

class InputLayer final : public ViewLayer {
 public:
  InputLayer(Shape shape, std::string name) : ViewLayer("input_layer", std::move(name)),
                                              shape_(std::move(shape)) {}
  std::string type_name() const override { return "InputLayer"; }
  const Shape& declared() const noexcept { return shape_; }
  Shape do_build(const Shape& input) override {
    TABULA_EXPECT(input == shape_, InvalidArgument, "input of model (Input '" << name() << "')",
                  "per-sample shape " << shape_.str(), input.str());
    return shape_;
  }

 private:
  Shape shape_;
};

class FlattenLayer final : public ViewLayer {
 public:
  explicit FlattenLayer(std::string name) : ViewLayer("flatten", std::move(name)) {}
  std::string type_name() const override { return "Flatten"; }
  Shape do_build(const Shape& input) override { return Shape{input.numel()}; }
};

class ReshapeLayer final : public ViewLayer {
 public:
  ReshapeLayer(std::vector<std::int64_t> target, std::string name)
      : ViewLayer("reshape", std::move(name)), target_(std::move(target)) {}
  std::string type_name() const override { return "Reshape"; }
  Shape do_build(const Shape& input) override {
    std::vector<std::int64_t> dims = target_;
    std::int64_t known = 1, inferred = -1;
    for (std::size_t i = 0; i < dims.size(); ++i) {
      if (dims[i] == -1) {
        TABULA_EXPECT(inferred < 0, InvalidArgument, "Reshape target of '" << name() << "'",
                      "at most one -1", "two");
        inferred = static_cast<std::int64_t>(i);
      } else {
        TABULA_EXPECT(dims[i] > 0, InvalidArgument, "Reshape target of '" << name() << "'",
                      "positive extents or -1", dims[i]);
        known *= dims[i];
      }
    }
    if (inferred >= 0) {
      TABULA_EXPECT(known > 0 && input.numel() % known == 0, InvalidArgument,
                    "Reshape of '" << name() << "' from " << input.str(),
                    "a size divisible by " << known, input.numel());
      dims[static_cast<std::size_t>(inferred)] = input.numel() / known;
    }
    Shape out(std::move(dims));
    TABULA_EXPECT(out.numel() == input.numel(), InvalidArgument,
                  "Reshape of '" << name() << "' from " << input.str() << " to " << out.str(),
                  input.numel() << " elements", out.numel() << " elements");
    return out;
  }

 private:
  std::vector<std::int64_t> target_;
};

}  // namespace

Layer Input(const Shape& shape, std::string name) {
  return Layer(std::make_shared<InputLayer>(shape, std::move(name)));
}

Layer Flatten(std::string name) { return Layer(std::make_shared<FlattenLayer>(std::move(name))); }

Layer Reshape(std::vector<std::int64_t> target, std::string name) {
  return Layer(std::make_shared<ReshapeLayer>(std::move(target), std::move(name)));
}

}  // namespace tabula::layers

namespace tabula::detail {

std::optional<Shape> declared_input_shape(const Layer& layer) {
  if (auto* input = dynamic_cast<const layers::InputLayer*>(&layer.impl()))
    return input->declared();
  return std::nullopt;
}

}  // namespace tabula::detail
