#pragma once
// Small helpers the nn module uses on its own buffers.

#include <cstdint>
#include <vector>

#include "session/detail/session_core.hpp"
#include "session/detail/storage.hpp"
#include "tabula/core/tensor.hpp"

namespace tabula::detail {

/// Shape `per_sample` with a leading batch axis of `rows`.
inline Shape batched(std::int64_t rows, const Shape& per_sample) {
  std::vector<std::int64_t> dims{rows};
  dims.insert(dims.end(), per_sample.dims().begin(), per_sample.dims().end());
  return Shape(std::move(dims));
}

/// The first `rows` samples of a buffer allocated for more, viewed with `per_sample` shape.
inline Tensor first_rows(const Tensor& buffer, std::int64_t rows, const Shape& per_sample) {
  return Tensor(buffer.storage(), batched(rows, per_sample), buffer.dtype());
}

/// The float32 data of `t` on its own device (kernels receive device pointers).
inline float* f32(const Tensor& t) { return static_cast<float*>(t.raw_data()); }

/// Number of rows (the batch axis) of a batched tensor.
inline std::int64_t rows_of(const Tensor& t) { return t.shape()[0]; }

/// Runs f(RandomGenerator&) with the random generator of the session owning `t`.
template <typename F>
auto with_rng_of(const Tensor& t, F&& f) {
  return t.storage()->owner().with_rng(std::forward<F>(f));
}

/// Copies host floats into `t` (any device).
void copy_from_host(const Tensor& t, const std::vector<float>& values);

}  // namespace tabula::detail
