#pragma once
/// @file
/// Reading IDX files: the array format of MNIST and Fashion-MNIST, plain or gzip-compressed.
///
/// An IDX file is two zero bytes, a type code, a dimension count n, n big-endian 32-bit
/// extents, then the elements in row-major order, big-endian.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "tabula/core/dtype.hpp"
#include "tabula/core/tensor.hpp"

namespace tabula::data {

/// @brief The element type an IDX file declares (its third byte).
enum class IdxType : std::uint8_t {
  ubyte = 0x08,    ///< unsigned 8-bit → DType::uint8
  sbyte = 0x09,    ///< signed 8-bit → DType::int32
  int16 = 0x0B,    ///< big-endian signed 16-bit → DType::int32
  int32 = 0x0C,    ///< big-endian signed 32-bit → DType::int32
  float32 = 0x0D,  ///< big-endian IEEE single → DType::float32
  float64 = 0x0E,  ///< big-endian IEEE double → DType::float64
};

/// "ubyte", "sbyte", "short", "int", "float", "double" (the names of the IDX format page).
std::string_view name_of(IdxType type) noexcept;

/// The dtype `read_idx` gives an IDX type when `IdxOptions::dtype` is not set.
DType natural_dtype(IdxType type) noexcept;

/// The largest dimension count `read_idx` accepts.
inline constexpr int kMaxIdxRank = 16;

/// @brief Keyword arguments of `read_idx`.
struct IdxOptions {
  /// The tensor's dtype; unset: `natural_dtype` of the file's type. Integer files convert to
  /// any integer dtype that holds all their values (ubyte to uint8 too) or to a floating one;
  /// floating files convert to floating dtypes only.
  std::optional<DType> dtype = std::nullopt;
  /// Every value is multiplied by this while it is converted (floating dtypes only), so that
  /// `{.dtype = DType::float32, .scale = 1.0 / 255}` gives pixels in [0, 1] in one pass.
  double scale = 1.0;
  /// Name prefix of the tensor in the session's registry.
  std::string name = "idx";
};

/// @brief Reads an IDX file, gzip-compressed (detected by its magic bytes) or plain, into a
/// tensor of category `data` in the current session.
///
/// The file is streamed: gzip data is inflated chunk by chunk straight into the tensor, which
/// is allocated only once the header has been checked against the size of the data.
///
/// @param path the file, e.g. "train-images-idx3-ubyte.gz"
/// @param options target dtype, scale and registry name
/// @throws Error when the file cannot be opened or read (the message names the path and the
///   system's reason)
/// @throws FormatError when the data is not a well-formed IDX file: bad magic, unknown type
///   code, zero or more than `kMaxIdxRank` dimensions, extents whose product overflows or
///   exceeds the data, a truncated payload, bytes after the payload, or corrupt gzip data. The
///   message names the file, the field, what was expected and what was got.
/// @throws InvalidArgument when `options` asks for a conversion that would lose values
Tensor read_idx(const std::string& path, const IdxOptions& options = {});

/// @brief Like `read_idx`, from `size` bytes in memory (plain or gzip-compressed IDX).
/// @param name_for_errors what error messages call the data, in place of a path
Tensor read_idx_bytes(const void* data, std::size_t size, const std::string& name_for_errors,
                      const IdxOptions& options = {});

}  // namespace tabula::data
