#pragma once
/// @file
/// Tensor handles.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tabula/core/device.hpp"
#include "tabula/core/dtype.hpp"
#include "tabula/core/errors.hpp"
#include "tabula/core/shape.hpp"
#include "tabula/memory/category.hpp"

namespace tabula {

namespace detail {
class Storage;
struct TensorImpl;
}  // namespace detail

/// @brief A refcounted handle to an n-dimensional array in a session's memory.
///
/// Copying a handle is cheap and shares the data. The memory belongs to the session that was
/// current when the tensor was created; when that session is cleared the memory goes back at
/// once, whatever handles remain, and any later use of them throws `SessionCleared` naming
/// the tensor. A default-constructed handle is empty; using it throws `InvalidArgument`.
///
/// Thread safety: handles may be copied and destroyed from any thread; concurrent writes to
/// the same data need the caller's own synchronisation.
class Tensor {
 public:
  Tensor() noexcept = default;
  Tensor(const Tensor& other) noexcept;
  Tensor(Tensor&& other) noexcept;
  Tensor& operator=(const Tensor& other) noexcept;
  Tensor& operator=(Tensor&& other) noexcept;
  ~Tensor();

  /// True when the handle refers to a tensor (stale or not).
  bool defined() const noexcept { return impl_ != nullptr; }
  /// True when the tensor's session was cleared after it was created.
  bool is_stale() const noexcept;

  const Shape& shape() const;
  DType dtype() const;
  Device device() const;
  Category category() const;
  std::int64_t numel() const;
  std::size_t nbytes() const;
  /// The unique name the session gave the tensor's buffer, e.g. "tensor_3" (never throws;
  /// empty for an empty handle).
  std::string name() const;

  /// Typed pointer to the first element (CPU tensors). Like a `shared_ptr`, a const handle
  /// still gives write access to the shared data.
  /// @throws InvalidArgument if `T` does not match `dtype()` or the tensor is not on the CPU.
  template <typename T>
  T* data() const {
    return static_cast<T*>(checked_data(dtype_of_v<T>));
  }
  /// Untyped pointer to the first element, on the tensor's device.
  void* raw_data() const;

  /// A copy of the elements on the host. @throws InvalidArgument if `T` is not `dtype()`.
  template <typename T>
  std::vector<T> to_vector() const {
    std::vector<T> out(static_cast<std::size_t>(checked_numel(dtype_of_v<T>)));
    copy_to_host(out.data(), out.size() * sizeof(T));
    return out;
  }

  /// A new tensor with the elements converted to `dtype` (a copy even if it is the same).
  Tensor astype(DType dtype) const;
  /// The tensor on `device`: this handle if it is there already, else a copy in the same
  /// session.
  Tensor to(Device device) const;
  /// A new tensor with the same elements and its own memory.
  Tensor clone() const;
  /// A handle with another shape over the same data. @throws InvalidArgument when the
  /// element counts differ.
  Tensor reshape(Shape shape) const;

  /// For tabula's own modules: wraps a storage. The tensor views `shape` elements of `dtype`.
  Tensor(std::shared_ptr<detail::Storage> storage, Shape shape, DType dtype);
  /// For tabula's own modules: the storage (null for an empty handle).
  const std::shared_ptr<detail::Storage>& storage() const;

 private:
  const detail::TensorImpl& checked() const;
  void* checked_data(DType expected) const;
  std::int64_t checked_numel(DType expected) const;
  void copy_to_host(void* out, std::size_t bytes) const;

  std::shared_ptr<detail::TensorImpl> impl_;
};

/// @brief Keyword arguments of the creation functions.
struct TensorOptions {
  DType dtype = DType::float32;
  Category category = Category::data;
  /// Name prefix in the session's registry ("tensor" → "tensor", "tensor_1", ...).
  std::string name = "tensor";
};

/// Uninitialised memory of `shape` in the current session, on its device.
Tensor empty(const Shape& shape, const TensorOptions& options = {});
Tensor zeros(const Shape& shape, const TensorOptions& options = {});
Tensor ones(const Shape& shape, const TensorOptions& options = {});
/// Every element `value`, converted to `options.dtype`.
Tensor full(const Shape& shape, double value, const TensorOptions& options = {});
/// Normal samples from the current session's generator (floating dtypes only).
Tensor random_normal(const Shape& shape, double mean = 0.0, double stddev = 1.0,
                     const TensorOptions& options = {});
/// Uniform samples in [minval, maxval) from the current session's generator (floating dtypes).
Tensor random_uniform(const Shape& shape, double minval = 0.0, double maxval = 1.0,
                      const TensorOptions& options = {});

namespace detail {
Tensor from_bytes(const void* data, std::size_t bytes, const Shape& shape, DType dtype,
                  const TensorOptions& options);
}

/// A tensor holding a copy of `values`; the dtype is `T`'s (options.dtype is ignored).
/// @throws InvalidArgument when `values.size()` is not `shape.numel()`.
template <typename T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape,
                   const TensorOptions& options = {}) {
  TABULA_EXPECT(static_cast<std::int64_t>(values.size()) == shape.numel(), InvalidArgument,
                "from_vector for shape " << shape.str(), shape.numel() << " values",
                values.size());
  return detail::from_bytes(values.data(), values.size() * sizeof(T), shape, dtype_of_v<T>,
                            options);
}

/// A 1-D tensor holding a copy of `values`.
template <typename T>
Tensor from_vector(const std::vector<T>& values, const TensorOptions& options = {}) {
  return from_vector(values, Shape{static_cast<std::int64_t>(values.size())}, options);
}

}  // namespace tabula
