#pragma once
/// @file
/// Element types of tensors.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tabula {

/// @brief The element type of a tensor.
enum class DType : std::uint8_t { float32, float64, int32, int64, uint8 };

/// Bytes per element.
constexpr std::size_t size_of(DType dtype) noexcept {
  switch (dtype) {
    case DType::float32: return 4;
    case DType::float64: return 8;
    case DType::int32: return 4;
    case DType::int64: return 8;
    case DType::uint8: return 1;
  }
  return 0;
}

/// "float32", "int64", ... (the names safetensors and NumPy use, lower case).
constexpr std::string_view name_of(DType dtype) noexcept {
  switch (dtype) {
    case DType::float32: return "float32";
    case DType::float64: return "float64";
    case DType::int32: return "int32";
    case DType::int64: return "int64";
    case DType::uint8: return "uint8";
  }
  return "unknown";
}

/// The DType of a C++ element type, for typed access such as `Tensor::data<float>()`.
template <typename T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::float32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::float64; };
template <> struct dtype_of<std::int32_t> { static constexpr DType value = DType::int32; };
template <> struct dtype_of<std::int64_t> { static constexpr DType value = DType::int64; };
template <> struct dtype_of<std::uint8_t> { static constexpr DType value = DType::uint8; };
template <typename T> inline constexpr DType dtype_of_v = dtype_of<T>::value;

}  // namespace tabula
