#include "tabula/nn/layer.hpp"

#include "tabula/core/errors.hpp"
#include "tabula/session/session.hpp"

namespace tabula {

LayerImpl::LayerImpl(std::string_view type_prefix, std::string name)
    : name_(name.empty() ? current_session().unique_name(type_prefix) : std::move(name)) {}

LayerImpl::~LayerImpl() = default;

Shape LayerImpl::build(const Shape& input_shape) {
  TABULA_EXPECT(!built_ || input_shape == input_shape_, InvalidArgument,
                "input shape of layer '" << name_ << "' (already built)",
                input_shape_.str(), input_shape.str());
  if (built_) return output_shape_;
  output_shape_ = do_build(input_shape);
  input_shape_ = input_shape;
  built_ = true;
  return output_shape_;
}

void LayerImpl::reserve(std::int64_t batch, bool training, detail::SharedWorkspace* shared) {
  TABULA_EXPECT(batch >= 0, InvalidArgument, "reserve of layer '" << name_ << "'",
                "a batch size >= 0", batch);
  release_batch_buffers();  // the old buffers go back before the new are asked for
  shared_workspace_ = shared;  // do_reserve states its need to it
  try {
    do_reserve(batch, training);
  } catch (...) {
    release_batch_buffers();  // a refused buffer leaves none of the others behind
    throw;
  }
  reserved_batch_ = batch;
  reserved_for_training_ = training;
}

void LayerImpl::reserve_if_needed(std::int64_t batch, bool training) {
  if (reserved_for(batch, training)) return;
  reserve(batch, training || reserved_for_training_ || reserved_batch_ == 0);
}

void LayerImpl::release_batch_buffers() noexcept {
  do_release_batch_buffers();
  reserved_batch_ = 0;
  reserved_for_training_ = false;
  shared_workspace_ = nullptr;
}

Parameter& LayerImpl::add_weight(const std::string& name, const Shape& shape, bool trainable) {
  auto p = std::make_unique<Parameter>();
  p->name = name;
  p->value = zeros(shape, {.category = Category::weights, .name = name_ + "/" + name});
  p->trainable = trainable;
  parameters_.push_back(std::move(p));
  return *parameters_.back();
}

std::vector<Parameter*> LayerImpl::parameters() {
  std::vector<Parameter*> out;
  for (auto& p : parameters_) out.push_back(p.get());
  return out;
}

void LayerImpl::allocate_gradients() {
  for (auto& p : parameters_) {
    if (p->trainable && !p->gradient.defined()) {
      p->gradient = zeros(p->value.shape(),
                          {.category = Category::gradients, .name = name_ + "/" + p->name + "/grad"});
    }
  }
}

std::int64_t LayerImpl::count_params(bool trainable_only) const {
  std::int64_t n = 0;
  for (const auto& p : parameters_)
    if (!trainable_only || p->trainable) n += p->value.numel();
  return n;
}

const std::string& Layer::name() const { return impl().name(); }

LayerImpl& Layer::impl() const {
  if (!impl_) TABULA_THROW(InvalidArgument, "use of an empty Layer handle");
  return *impl_;
}

}  // namespace tabula
