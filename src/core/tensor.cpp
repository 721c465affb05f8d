#include "tabula/core/tensor.hpp"

#include <algorithm>
#include <cstring>
#include <optional>
#include <utility>
#include <vector>

#include "backend/detail/device_copy.hpp"
#include "session/detail/session_core.hpp"
#include "session/detail/session_use.hpp"
#include "session/detail/storage.hpp"
#include "tabula/session/session.hpp"

namespace tabula {

namespace {

// The tensor's session, held against clearing while its buffer is read (see SessionUse);
// nothing for an empty handle. One session, so no container: tensor copies are frequent.
std::optional<detail::SessionUse> use_of(const Tensor& tensor) {
  if (!tensor.storage()) return std::nullopt;
  return std::optional<detail::SessionUse>(std::in_place, tensor.storage()->owner());
}

}  // namespace


namespace detail {

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  DType dtype;
};

namespace {

std::shared_ptr<Storage> allocate_storage(Session& session, Device device, std::size_t bytes,
                                          const TensorOptions& options) {
  return session.core().allocate(bytes, device, options.category, options.name);
}

template <typename Src, typename Dst>
void convert_elements(const void* src, void* dst, std::size_t n) {
  const Src* s = static_cast<const Src*>(src);
  Dst* d = static_cast<Dst*>(dst);
  for (std::size_t i = 0; i < n; ++i) d[i] = static_cast<Dst>(s[i]);
}

template <typename Src>
void convert_from(const void* src, void* dst, DType to, std::size_t n) {
  switch (to) {
    case DType::float32: return convert_elements<Src, float>(src, dst, n);
    case DType::float64: return convert_elements<Src, double>(src, dst, n);
    case DType::int32: return convert_elements<Src, std::int32_t>(src, dst, n);
    case DType::int64: return convert_elements<Src, std::int64_t>(src, dst, n);
    case DType::uint8: return convert_elements<Src, std::uint8_t>(src, dst, n);
  }
}

void convert(const void* src, DType from, void* dst, DType to, std::size_t n) {
  switch (from) {
    case DType::float32: return convert_from<float>(src, dst, to, n);
    case DType::float64: return convert_from<double>(src, dst, to, n);
    case DType::int32: return convert_from<std::int32_t>(src, dst, to, n);
    case DType::int64: return convert_from<std::int64_t>(src, dst, to, n);
    case DType::uint8: return convert_from<std::uint8_t>(src, dst, to, n);
  }
}

/// Host staging: creation functions fill on the host, then copy when the device is a GPU.
Tensor fill_on_host(const Shape& shape, const TensorOptions& options,
                    void (*fill)(void* host, std::size_t n, const void* arg), const void* arg) {
  Session& session = current_session();
  const Device device = session.device();
  const std::size_t n = static_cast<std::size_t>(shape.numel());
  const std::size_t bytes = n * size_of(options.dtype);
  Tensor t(allocate_storage(session, device, bytes, options), shape, options.dtype);
  if (device.is_cpu()) {
    fill(t.raw_data(), n, arg);
  } else {
    std::vector<std::byte> staging(bytes);
    fill(staging.data(), n, arg);
    copy_bytes(t.raw_data(), device, staging.data(), Device::cpu(), bytes);
  }
  return t;
}

}  // namespace

Tensor from_bytes(const void* data, std::size_t bytes, const Shape& shape, DType dtype,
                  const TensorOptions& options) {
  Session& session = current_session();
  TensorOptions typed = options;
  typed.dtype = dtype;
  Tensor t(allocate_storage(session, session.device(), bytes, typed), shape, dtype);
  copy_bytes(t.raw_data(), session.device(), data, Device::cpu(), bytes);
  return t;
}

}  // namespace detail

// ---- handle -----------------------------------------------------------------------------

Tensor::Tensor(std::shared_ptr<detail::Storage> storage, Shape shape, DType dtype) {
  const std::size_t needed = static_cast<std::size_t>(shape.numel()) * size_of(dtype);
  TABULA_EXPECT(storage != nullptr && storage->nbytes() >= needed, InvalidArgument,
                "tensor of shape " << shape.str() << " " << name_of(dtype),
                "a buffer of at least " << needed << " bytes",
                (storage ? storage->nbytes() : 0) << " bytes");
  storage->handles.fetch_add(1, std::memory_order_relaxed);
  impl_ = std::make_shared<detail::TensorImpl>(
      detail::TensorImpl{std::move(storage), std::move(shape), dtype});
}

Tensor::Tensor(const Tensor& other) noexcept : impl_(other.impl_) {
  if (impl_) impl_->storage->handles.fetch_add(1, std::memory_order_relaxed);
}

Tensor::Tensor(Tensor&& other) noexcept : impl_(std::move(other.impl_)) {}

Tensor& Tensor::operator=(const Tensor& other) noexcept {
  if (this != &other) {
    Tensor copy(other);
    *this = std::move(copy);
  }
  return *this;
}

Tensor& Tensor::operator=(Tensor&& other) noexcept {
  if (this != &other) {
    if (impl_) impl_->storage->handles.fetch_sub(1, std::memory_order_relaxed);
    impl_ = std::move(other.impl_);
  }
  return *this;
}

Tensor::~Tensor() {
  if (impl_) impl_->storage->handles.fetch_sub(1, std::memory_order_relaxed);
}

const detail::TensorImpl& Tensor::checked() const {
  if (!impl_) TABULA_THROW(InvalidArgument, "use of an empty Tensor handle");
  impl_->storage->check_live();
  return *impl_;
}

bool Tensor::is_stale() const noexcept { return impl_ && impl_->storage->stale(); }
const Shape& Tensor::shape() const { return checked().shape; }
DType Tensor::dtype() const { return checked().dtype; }
Device Tensor::device() const { return checked().storage->device(); }
Category Tensor::category() const { return checked().storage->category(); }
std::int64_t Tensor::numel() const { return checked().shape.numel(); }
std::size_t Tensor::nbytes() const {
  const auto& impl = checked();
  return static_cast<std::size_t>(impl.shape.numel()) * size_of(impl.dtype);
}
std::string Tensor::name() const { return impl_ ? impl_->storage->name() : std::string(); }
void* Tensor::raw_data() const { return checked().storage->data(); }

const std::shared_ptr<detail::Storage>& Tensor::storage() const {
  static const std::shared_ptr<detail::Storage> none;
  return impl_ ? impl_->storage : none;
}

void* Tensor::checked_data(DType expected) const {
  const auto& impl = checked();
  TABULA_EXPECT(impl.dtype == expected, InvalidArgument,
                "element type of tensor '" << name() << "'", name_of(impl.dtype),
                name_of(expected));
  TABULA_EXPECT(impl.storage->device().is_cpu(), InvalidArgument,
                "host pointer to tensor '" << name() << "'", "a CPU tensor (use to_vector)",
                impl.storage->device().str());
  return impl.storage->data();
}

std::int64_t Tensor::checked_numel(DType expected) const {
  const auto& impl = checked();
  TABULA_EXPECT(impl.dtype == expected, InvalidArgument,
                "to_vector element type of tensor '" << name() << "'", name_of(impl.dtype),
                name_of(expected));
  return impl.shape.numel();
}

void Tensor::copy_to_host(void* out, std::size_t bytes) const {
  const auto in_use = use_of(*this);
  const auto& impl = checked();
  detail::copy_bytes(out, Device::cpu(), impl.storage->data(), impl.storage->device(), bytes);
}

Tensor Tensor::astype(DType dtype) const {
  const auto in_use = use_of(*this);
  const auto& impl = checked();
  const std::size_t n = static_cast<std::size_t>(impl.shape.numel());
  const Device device = impl.storage->device();
  TensorOptions options{dtype, impl.storage->category(), "tensor"};
  Tensor out(impl.storage->owner().allocate(n * size_of(dtype), device, options.category,
                                            options.name),
             impl.shape, dtype);
  if (device.is_cpu()) {
    detail::convert(impl.storage->data(), impl.dtype, out.raw_data(), dtype, n);
  } else {
    std::vector<std::byte> in(n * size_of(impl.dtype)), converted(n * size_of(dtype));
    copy_to_host(in.data(), in.size());
    detail::convert(in.data(), impl.dtype, converted.data(), dtype, n);
    detail::copy_bytes(out.raw_data(), device, converted.data(), Device::cpu(), converted.size());
  }
  return out;
}

Tensor Tensor::to(Device device) const {
  const auto in_use = use_of(*this);
  const auto& impl = checked();
  if (impl.storage->device() == device) return *this;
  const std::size_t bytes = static_cast<std::size_t>(impl.shape.numel()) * size_of(impl.dtype);
  Tensor out(impl.storage->owner().allocate(bytes, device, impl.storage->category(), "tensor"),
             impl.shape, impl.dtype);
  detail::copy_bytes(out.raw_data(), device, impl.storage->data(), impl.storage->device(),
                     bytes);
  return out;
}

Tensor Tensor::clone() const {
  const auto in_use = use_of(*this);
  const auto& impl = checked();
  const std::size_t bytes = static_cast<std::size_t>(impl.shape.numel()) * size_of(impl.dtype);
  const Device device = impl.storage->device();
  Tensor out(impl.storage->owner().allocate(bytes, device, impl.storage->category(), "tensor"),
             impl.shape, impl.dtype);
  detail::copy_bytes(out.raw_data(), device, impl.storage->data(), device, bytes);
  return out;
}

Tensor Tensor::reshape(Shape shape) const {
  const auto& impl = checked();
  TABULA_EXPECT(shape.numel() == impl.shape.numel(), InvalidArgument,
                "reshape of tensor '" << name() << "' " << impl.shape.str() << " to "
                                      << shape.str(),
                impl.shape.numel() << " elements", shape.numel() << " elements");
  return Tensor(impl.storage, std::move(shape), impl.dtype);
}

// ---- creation ---------------------------------------------------------------------------

namespace {

void require_floating(DType dtype, const char* what) {
  TABULA_EXPECT(dtype == DType::float32 || dtype == DType::float64, InvalidArgument,
                what << " dtype", "float32 or float64", name_of(dtype));
}

struct FillValue {
  double value;
  DType dtype;
};

void fill_value(void* host, std::size_t n, const void* arg) {
  const auto& f = *static_cast<const FillValue*>(arg);
  const double one = f.value;
  detail::convert(&one, DType::float64, host, f.dtype, 1);
  const std::size_t width = size_of(f.dtype);
  auto* bytes = static_cast<std::byte*>(host);
  for (std::size_t i = 1; i < n; ++i) std::memcpy(bytes + i * width, bytes, width);
}

struct RandomFill {
  enum Kind { normal, uniform } kind;
  double a, b;
  DType dtype;
  Session* session;
};

void fill_random(void* host, std::size_t n, const void* arg) {
  const auto& r = *static_cast<const RandomFill*>(arg);
  std::vector<float> samples;
  float* out = static_cast<float*>(host);
  if (r.dtype == DType::float64) {
    samples.resize(n);
    out = samples.data();
  }
  r.session->core().with_rng([&](RandomGenerator& rng) {
    if (r.kind == RandomFill::normal)
      rng.fill_normal(out, n, static_cast<float>(r.a), static_cast<float>(r.b));
    else
      rng.fill_uniform(out, n, static_cast<float>(r.a), static_cast<float>(r.b));
  });
  if (r.dtype == DType::float64) detail::convert(out, DType::float32, host, DType::float64, n);
}

}  // namespace

Tensor empty(const Shape& shape, const TensorOptions& options) {
  Session& session = current_session();
  return Tensor(detail::allocate_storage(session, session.device(),
                                         static_cast<std::size_t>(shape.numel()) *
                                             size_of(options.dtype),
                                         options),
                shape, options.dtype);
}

Tensor zeros(const Shape& shape, const TensorOptions& options) {
  Tensor t = empty(shape, options);
  detail::zero_bytes(t.raw_data(), t.device(), t.nbytes());
  return t;
}

Tensor ones(const Shape& shape, const TensorOptions& options) {
  return full(shape, 1.0, options);
}

Tensor full(const Shape& shape, double value, const TensorOptions& options) {
  const FillValue f{value, options.dtype};
  return detail::fill_on_host(shape, options, fill_value, &f);
}

Tensor random_normal(const Shape& shape, double mean, double stddev,
                     const TensorOptions& options) {
  require_floating(options.dtype, "random_normal");
  TABULA_EXPECT(stddev >= 0.0, InvalidArgument, "random_normal stddev", ">= 0", stddev);
  const RandomFill r{RandomFill::normal, mean, stddev, options.dtype, &current_session()};
  return detail::fill_on_host(shape, options, fill_random, &r);
}

Tensor random_uniform(const Shape& shape, double minval, double maxval,
                      const TensorOptions& options) {
  require_floating(options.dtype, "random_uniform");
  TABULA_EXPECT(minval < maxval, InvalidArgument, "random_uniform range",
                "minval < maxval", "[" << minval << ", " << maxval << ")");
  const RandomFill r{RandomFill::uniform, minval, maxval, options.dtype, &current_session()};
  return detail::fill_on_host(shape, options, fill_random, &r);
}

}  // namespace tabula
