#pragma once
/// @file
/// Reading and writing the safetensors format (https://github.com/huggingface/safetensors).
///
/// A file is an 8-byte little-endian header length N, N bytes of UTF-8 JSON mapping each tensor
/// name to `{"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}` (plus an optional
/// `"__metadata__"` object of strings), then the byte buffer that the offsets index. Tensors
/// are row-major and little-endian. tabula reads and writes the dtypes F32, F64, I32, I64 and
/// U8 (float32, float64, int32, int64, uint8).

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tabula/core/dtype.hpp"
#include "tabula/core/shape.hpp"
#include "tabula/core/tensor.hpp"

namespace tabula::io {

/// @brief A tensor with the name it has in a file.
struct NamedTensor {
  std::string name;
  Tensor tensor;
};

/// @brief Writes `tensors` (in the given order) and `metadata` to a safetensors file.
///
/// The file is written next to `path` under a temporary name (`path` + ".tmp-<pid>-<n>"),
/// flushed with fsync and renamed over `path`, so `path` holds either its old content or the
/// complete new file, never a partial one. The same inputs always give byte-identical files.
/// CPU tensors are written from their memory; tensors on other devices are copied to the host
/// one at a time (in their own session) first.
///
/// @param path      the file to create or replace
/// @param tensors   names must be non-empty, unique, valid UTF-8 and not "__metadata__"
/// @param metadata  string pairs stored under "__metadata__" (omitted when empty)
/// @throws InvalidArgument for an empty, duplicate, reserved or non-UTF-8 name or metadata
///         string, or an empty tensor handle; nothing is written then
/// @throws SessionCleared when a tensor's session was cleared
/// @throws Error naming `path` and the system's error text when the file cannot be written;
///         the temporary file is removed and an existing file at `path` is left as it was
void save_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

/// @brief One tensor of a safetensors file, as its header describes it.
struct SafetensorsEntry {
  std::string name;
  DType dtype = DType::float32;
  Shape shape;
  /// First byte of the tensor, relative to the start of the byte buffer (the file's
  /// `data_offsets[0]`).
  std::size_t offset = 0;
  /// Bytes the tensor occupies: shape's element count × the dtype's size.
  std::size_t nbytes = 0;
};

/// @brief A whole safetensors file, read into memory and checked.
///
/// `open` and `parse` validate everything before they return: the header length, the JSON
/// (no duplicate keys), each entry's fields and types, that each entry's byte range matches
/// its shape and dtype, and that the ranges tile the buffer exactly (no overlap, no gap, no
/// byte left over). A file that passes can be read without any further check; one that fails
/// throws `FormatError` naming the file, the tensor, the field, what was expected and what
/// was got. No input makes the parser read out of bounds or overflow.
///
/// The bytes are host memory outside any session (an anonymous mapping for `open`, so they go
/// back to the OS when the last copy of the object is destroyed). Copies share the bytes.
///
/// Thread safety: a `SafetensorsFile` is immutable; any number of threads may use it at once.
class SafetensorsFile {
 public:
  /// @brief Reads and validates the file at `path`.
  /// @throws Error naming `path` and the system's error text when it cannot be read (missing,
  ///         a directory, no permission)
  /// @throws FormatError when it is not a valid safetensors file
  static SafetensorsFile open(const std::string& path);

  /// @brief Validates `bytes` as the content of a safetensors file; `name_for_errors` stands
  /// for the file in messages. Meant for in-memory data and fuzzing.
  /// @throws FormatError when the bytes are not a valid safetensors file
  static SafetensorsFile parse(std::vector<std::byte> bytes, std::string name_for_errors);

  /// The name messages use for the file (the path given to `open`).
  const std::string& name() const noexcept { return name_; }

  /// The tensors, in the order of their data offsets.
  const std::vector<SafetensorsEntry>& entries() const noexcept { return entries_; }

  /// The `__metadata__` pairs (empty when the file has none).
  const std::map<std::string, std::string>& metadata() const noexcept { return metadata_; }

  /// The entry called `name`, or null.
  const SafetensorsEntry* find(std::string_view name) const;

  /// @brief The raw little-endian bytes of `entry`.
  /// @throws InvalidArgument when `entry` does not describe a tensor of this file
  std::span<const std::byte> bytes(const SafetensorsEntry& entry) const;

  /// @brief Copies the tensor of `entry` into `destination` (on any device).
  /// @throws FormatError when the destination's shape or dtype differs from the entry's; the
  ///         destination is left unchanged then
  /// @throws InvalidArgument when `destination` is an empty handle or `entry` does not describe
  ///         a tensor of this file
  /// @throws SessionCleared when the destination's session was cleared
  void copy_into(const SafetensorsEntry& entry, Tensor& destination) const;

  /// @brief A new tensor holding the data of `entry`, in the current session on its device.
  /// The dtype is the file's (`options.dtype` is ignored); `options.category` and
  /// `options.name` are used.
  /// @throws InvalidArgument when `entry` does not describe a tensor of this file
  Tensor load(const SafetensorsEntry& entry, const TensorOptions& options = {}) const;

 private:
  SafetensorsFile() = default;
  static SafetensorsFile parse_bytes(std::shared_ptr<const std::byte> data, std::size_t size,
                                     std::string name);
  const std::byte* checked_data(const SafetensorsEntry& entry) const;

  std::string name_;
  std::shared_ptr<const std::byte> data_;  // the whole file
  std::size_t size_ = 0;                   // bytes at data_
  std::size_t buffer_start_ = 0;           // 8 + header length
  std::vector<SafetensorsEntry> entries_;
  std::map<std::string, std::size_t, std::less<>> index_;  // name -> position in entries_
  std::map<std::string, std::string> metadata_;
};

}  // namespace tabula::io
