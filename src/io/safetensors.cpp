#include "tabula/io/safetensors.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <set>
#include <system_error>
#include <utility>

#include "backend/detail/device_copy.hpp"
#include "tabula/core/errors.hpp"

namespace tabula::io {

// Tensor bytes are written and read as they lie in memory; the format is little-endian.
static_assert(std::endian::native == std::endian::little,
              "safetensors I/O assumes a little-endian host");

namespace {

using Json = nlohmann::json;

constexpr std::size_t kLengthBytes = 8;
// The reference implementation refuses larger headers; real ones are a few MB at most.
constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;
// Real headers nest three deep (header, entry, shape); anything much deeper is hostile.
constexpr int kMaxJsonDepth = 16;
constexpr std::string_view kMetadataKey = "__metadata__";
// Longest piece of file content quoted in a message.
constexpr std::size_t kMaxQuoted = 96;

struct DTypeName {
  std::string_view name;
  DType dtype;
};
constexpr std::array<DTypeName, 5> kDTypeNames = {{{"F32", DType::float32},
                                                   {"F64", DType::float64},
                                                   {"I32", DType::int32},
                                                   {"I64", DType::int64},
                                                   {"U8", DType::uint8}}};
constexpr std::string_view kSupportedDTypes = "one of F32, F64, I32, I64, U8";

std::string_view safetensors_name(DType dtype) {
  for (const auto& d : kDTypeNames) {
    if (d.dtype == dtype) return d.name;
  }
  return "?";
}

std::optional<DType> dtype_from_name(std::string_view name) {
  for (const auto& d : kDTypeNames) {
    if (d.name == name) return d.dtype;
  }
  return std::nullopt;
}

std::string errno_text(int error) { return std::system_category().message(error); }

/// `'text'` with control characters escaped and long text cut: names in a hostile file can be
/// megabytes long or hold terminal escapes.
std::string excerpt(std::string_view text) {
  std::string out = "'";
  std::size_t shown = std::min(text.size(), kMaxQuoted);
  // Cut at a character boundary, not inside a UTF-8 sequence.
  while (shown > 0 && shown < text.size() &&
         (static_cast<unsigned char>(text[shown]) & 0xc0) == 0x80) {
    --shown;
  }
  for (std::size_t i = 0; i < shown; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", static_cast<unsigned>(c));
      out += escaped;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (text.size() > shown) out += "...";
  return out + "'";
}

/// "'['" for a printable ASCII byte, "byte 0xef" for any other.
std::string first_byte(char c) {
  const auto b = static_cast<unsigned char>(c);
  if (b >= 0x20 && b < 0x7f) return std::string("'") + c + "'";
  char hex[16];
  std::snprintf(hex, sizeof hex, "byte 0x%02x", static_cast<unsigned>(b));
  return hex;
}

/// "array [1,2]": the JSON type and a bounded excerpt of a value, for "got ..." in messages.
std::string describe(const Json& value) {
  // ASCII-only output, so that cutting it never splits a UTF-8 sequence.
  std::string text = value.dump(-1, ' ', true, Json::error_handler_t::replace);
  if (text.size() > kMaxQuoted) text = text.substr(0, kMaxQuoted) + "...";
  return std::string(value.type_name()) + " " + text;
}

/// Checks a safetensors header and collects what it describes. Every message starts with the
/// file, then the tensor when there is one, so that a user can find the problem.
class HeaderParser {
 public:
  HeaderParser(const std::string& file, std::uint64_t buffer_size)
      : file_(file), buffer_size_(buffer_size) {}

  std::string in_file() const { return "safetensors file '" + file_ + "'"; }
  std::string in_tensor(std::string_view tensor) const {
    return "tensor " + excerpt(tensor) + " in '" + file_ + "'";
  }

  /// Parses the JSON text, rejecting duplicate keys (which JSON parsers otherwise resolve
  /// silently, letting two readers see different files) and deep nesting. Returns the root
  /// and the top-level keys in the order they appear.
  Json parse_json(const char* begin, const char* end, std::vector<std::string>& top_keys) const {
    if (begin == end || *begin != '{') {
      TABULA_THROW(FormatError,
                   in_file() << ": header: expected a JSON object starting with '{', got "
                             << (begin == end ? std::string("nothing") : first_byte(*begin)));
    }
    // nlohmann's lexer takes a NUL byte for the end of its input and would accept whatever
    // follows; valid JSON never holds one (strings must escape control characters).
    if (const void* nul = std::memchr(begin, '\0', static_cast<std::size_t>(end - begin))) {
      TABULA_THROW(FormatError, in_file() << ": header: expected valid UTF-8 JSON, got a NUL "
                                             "byte at header offset "
                                          << (static_cast<const char*>(nul) - begin));
    }
    std::vector<std::set<std::string>> open_objects;
    auto on_event = [&](int depth, Json::parse_event_t event, Json& parsed) -> bool {
      switch (event) {
        case Json::parse_event_t::object_start:
        case Json::parse_event_t::array_start:
          if (depth >= kMaxJsonDepth) {
            TABULA_THROW(FormatError, in_file() << ": header: expected JSON nested at most "
                                                << kMaxJsonDepth << " levels deep, got deeper");
          }
          if (event == Json::parse_event_t::object_start) open_objects.emplace_back();
          break;
        case Json::parse_event_t::object_end:
          if (!open_objects.empty()) open_objects.pop_back();
          break;
        case Json::parse_event_t::key: {
          const auto& key = parsed.get_ref<const std::string&>();
          if (open_objects.empty()) break;  // the parser never sends a key outside an object
          if (!open_objects.back().insert(key).second) {
            if (depth <= 1) {
              TABULA_THROW(FormatError, in_file() << ": header key " << excerpt(key)
                                                  << ": expected each key once, got it twice");
            }
            if (top_keys.empty() || top_keys.back() == kMetadataKey) {
              TABULA_THROW(FormatError, in_file() << ": field '__metadata__' key " << excerpt(key)
                                                  << ": expected each key once, got it twice");
            }
            TABULA_THROW(FormatError, in_tensor(top_keys.back())
                                          << ": field " << excerpt(key)
                                          << ": expected each key once, got it twice");
          }
          if (depth == 1) top_keys.push_back(key);
          break;
        }
        default:
          break;
      }
      return true;
    };

    Json root;
    try {
      root = Json::parse(begin, end, on_event, /*allow_exceptions=*/true,
                         /*ignore_comments=*/false);
    } catch (const Json::exception& e) {
      // The parser's message quotes the offending input: keep it short and ASCII.
      std::string what = e.what();
      if (what.size() > 4 * kMaxQuoted) what = what.substr(0, 4 * kMaxQuoted) + "...";
      for (char& c : what) {
        if (static_cast<unsigned char>(c) >= 0x80) c = '?';
      }
      TABULA_THROW(FormatError, in_file() << ": header: expected valid UTF-8 JSON, got " << what);
    }
    if (!root.is_object()) {
      TABULA_THROW(FormatError, in_file()
                                    << ": header: expected a JSON object, got " << describe(root));
    }
    return root;
  }

  std::map<std::string, std::string> parse_metadata(const Json& value) const {
    if (!value.is_object()) {
      TABULA_THROW(FormatError, in_file() << ": field '__metadata__': expected an object of "
                                             "string values, got "
                                          << describe(value));
    }
    std::map<std::string, std::string> metadata;
    for (const auto& [key, item] : value.items()) {
      if (!item.is_string()) {
        TABULA_THROW(FormatError, in_file() << ": field '__metadata__' key " << excerpt(key)
                                            << ": expected a string value, got " << describe(item));
      }
      metadata.emplace(key, item.get_ref<const std::string&>());
    }
    return metadata;
  }

  SafetensorsEntry parse_entry(const std::string& name, const Json& value) const {
    const std::string where = in_tensor(name);
    if (!value.is_object()) {
      TABULA_THROW(FormatError, where << ": expected a JSON object with dtype, shape and "
                                         "data_offsets, got "
                                      << describe(value));
    }
    auto field = [&](const char* key) -> const Json& {
      const auto it = value.find(key);
      if (it == value.end()) {
        TABULA_THROW(FormatError, where << ": field '" << key
                                        << "': expected it to be present, got no such field");
      }
      return *it;
    };

    SafetensorsEntry entry;
    entry.name = name;

    const Json& dtype = field("dtype");
    if (!dtype.is_string()) {
      TABULA_THROW(FormatError, where << ": field 'dtype': expected a string (" << kSupportedDTypes
                                      << "), got " << describe(dtype));
    }
    const auto& dtype_name = dtype.get_ref<const std::string&>();
    const auto parsed_dtype = dtype_from_name(dtype_name);
    if (!parsed_dtype) {
      TABULA_THROW(FormatError, where << ": field 'dtype': expected " << kSupportedDTypes
                                      << " (the dtypes tabula supports), got "
                                      << excerpt(dtype_name));
    }
    entry.dtype = *parsed_dtype;

    const Json& shape = field("shape");
    if (!shape.is_array()) {
      TABULA_THROW(FormatError, where << ": field 'shape': expected an array of non-negative "
                                         "integers, got "
                                      << describe(shape));
    }
    std::vector<std::int64_t> dims;
    dims.reserve(shape.size());
    // The running product is checked the way Shape::numel() forms it, so that no later use
    // of the shape overflows either.
    std::int64_t numel = 1;
    for (std::size_t i = 0; i < shape.size(); ++i) {
      const auto dim = non_negative_integer(shape[i]);
      if (!dim || *dim > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        TABULA_THROW(FormatError, where << ": field 'shape' dimension " << i
                                        << ": expected a non-negative integer below 2^63, got "
                                        << describe(shape[i]));
      }
      dims.push_back(static_cast<std::int64_t>(*dim));
      if (__builtin_mul_overflow(numel, dims.back(), &numel)) {
        TABULA_THROW(FormatError, where << ": field 'shape': expected an element count that "
                                           "fits in 64 bits, got "
                                        << describe(shape));
      }
    }
    entry.shape = Shape(std::move(dims));

    const Json& offsets = field("data_offsets");
    std::optional<std::uint64_t> begin, end;
    if (offsets.is_array() && offsets.size() == 2) {
      begin = non_negative_integer(offsets[0]);
      end = non_negative_integer(offsets[1]);
    }
    if (!begin || !end) {
      TABULA_THROW(FormatError, where << ": field 'data_offsets': expected an array of two "
                                         "non-negative integers [begin, end], got "
                                      << describe(offsets));
    }
    if (*begin > *end) {
      TABULA_THROW(FormatError, where << ": field 'data_offsets': expected begin <= end, got ["
                                      << *begin << ", " << *end << "]");
    }
    if (*end > buffer_size_) {
      TABULA_THROW(FormatError, where << ": field 'data_offsets': expected a range inside the "
                                      << buffer_size_ << "-byte buffer, got [" << *begin << ", "
                                      << *end << "]");
    }

    std::uint64_t nbytes = 0;
    const bool overflow =
        __builtin_mul_overflow(static_cast<std::uint64_t>(numel),
                               static_cast<std::uint64_t>(size_of(entry.dtype)), &nbytes);
    if (overflow || nbytes != *end - *begin) {
      TABULA_THROW(FormatError,
                   where << ": field 'data_offsets': expected "
                         << (overflow ? std::string("more than 2^64") : std::to_string(nbytes))
                         << " bytes for shape " << entry.shape.str() << " " << dtype_name
                         << ", got [" << *begin << ", " << *end << "] (" << (*end - *begin)
                         << " bytes)");
    }
    // Both fit in size_t: they are bounded by the buffer, which is in memory.
    entry.offset = static_cast<std::size_t>(*begin);
    entry.nbytes = static_cast<std::size_t>(nbytes);
    return entry;
  }

  /// Sorts `entries` by offset (header order among equal ones) and checks that they tile the
  /// buffer: each starts where the previous ends, and the last ends at the buffer's end.
  void order_and_check_tiling(std::vector<SafetensorsEntry>& entries) const {
    std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
      return a.offset != b.offset ? a.offset < b.offset : a.nbytes < b.nbytes;
    });
    std::uint64_t expected = 0;
    const SafetensorsEntry* previous = nullptr;
    for (const auto& entry : entries) {
      if (entry.offset != expected) {
        const std::string after =
            previous ? "the end of tensor " + excerpt(previous->name) : "the buffer's start";
        TABULA_THROW(FormatError,
                     in_tensor(entry.name)
                         << ": field 'data_offsets': expected it to begin at byte " << expected
                         << " (" << after << "), got [" << entry.offset << ", "
                         << entry.offset + entry.nbytes << "], which "
                         << (entry.offset < expected
                                 ? "overlaps that tensor"
                                 : "leaves a gap of " + std::to_string(entry.offset - expected) +
                                       " bytes"));
      }
      expected = entry.offset + entry.nbytes;  // no overflow: both are within the buffer
      previous = &entry;
    }
    if (expected != buffer_size_) {
      TABULA_THROW(FormatError, in_file()
                                    << ": byte buffer: expected the tensors to cover all "
                                    << buffer_size_ << " bytes, got " << buffer_size_ - expected
                                    << " bytes left over after the last tensor");
    }
  }

 private:
  static std::optional<std::uint64_t> non_negative_integer(const Json& value) {
    if (value.is_number_unsigned()) return value.get<std::uint64_t>();
    if (value.is_number_integer()) {
      const auto v = value.get<std::int64_t>();
      if (v >= 0) return static_cast<std::uint64_t>(v);
    }
    return std::nullopt;
  }

  const std::string& file_;
  std::uint64_t buffer_size_;
};

// ---- writing -----------------------------------------------------------------------------

/// A temporary file next to the target, renamed over it by `commit()`. Until then, and on any
/// error, the destructor closes and removes it, so the target never sees a partial file.
class AtomicFile {
 public:
  explicit AtomicFile(std::string path) : path_(std::move(path)) {
    static std::atomic<unsigned long> counter{0};
    temp_ = path_ + ".tmp-" + std::to_string(::getpid()) + "-" +
            std::to_string(counter.fetch_add(1, std::memory_order_relaxed));
    fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd_ < 0) fail("cannot create temporary file '" + temp_ + "'", errno);
  }
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  ~AtomicFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(temp_.c_str());
  }

  void write(const void* data, std::size_t bytes) {
    const auto* p = static_cast<const char*>(data);
    while (bytes > 0) {
      const ssize_t n = ::write(fd_, p, bytes);
      if (n < 0) {
        if (errno == EINTR) continue;
        fail("write to '" + temp_ + "' failed", errno);
      }
      p += n;
      bytes -= static_cast<std::size_t>(n);
    }
  }

  void commit() {
    if (::fsync(fd_) != 0) fail("fsync of '" + temp_ + "' failed", errno);
    const int fd = std::exchange(fd_, -1);
    if (::close(fd) != 0) fail("close of '" + temp_ + "' failed", errno);
    if (::rename(temp_.c_str(), path_.c_str()) != 0) {
      fail("rename of '" + temp_ + "' to it failed", errno);
    }
    committed_ = true;
    sync_directory();
  }

 private:
  [[noreturn]] void fail(const std::string& what, int error) const {
    TABULA_THROW(Error, "cannot write safetensors file '" << path_ << "': " << what << ": "
                                                          << errno_text(error));
  }

  // Makes the rename itself durable. Best effort: the new file is in place already, and a
  // failure here must not report the save as failed.
  void sync_directory() const noexcept {
    std::string dir;
    try {
      dir = std::filesystem::path(path_).parent_path().string();
    } catch (...) {
      return;
    }
    if (dir.empty()) dir = ".";
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    (void)::fsync(fd);
    ::close(fd);
  }

  std::string path_;
  std::string temp_;
  int fd_ = -1;
  bool committed_ = false;
};

/// A JSON string literal for `text`. @throws InvalidArgument when it is not valid UTF-8.
std::string json_string(const std::string& text, const std::string& path, const char* what) {
  try {
    return Json(text).dump(-1, ' ', false, Json::error_handler_t::strict);
  } catch (const Json::exception&) {
    TABULA_THROW(InvalidArgument, "save_safetensors('" << path << "') " << what << " "
                                                       << excerpt(text)
                                                       << ": expected valid UTF-8, got "
                                                          "invalid byte sequences");
  }
}

}  // namespace

// ---- save --------------------------------------------------------------------------------

void save_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  // Everything is checked and the header built before the file system is touched.
  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [key, value] : metadata) {
      if (!first) header += ',';
      first = false;
      header += json_string(key, path, "metadata key");
      header += ':';
      header += json_string(value, path, "metadata value");
    }
    header += '}';
  }

  std::set<std::string_view> names;
  std::vector<std::size_t> sizes;
  sizes.reserve(tensors.size());
  std::uint64_t offset = 0;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const auto& [name, tensor] = tensors[i];
    TABULA_EXPECT(!name.empty(), InvalidArgument,
                  "save_safetensors('" << path << "') name of tensor " << i, "a non-empty name",
                  "''");
    TABULA_EXPECT(name != kMetadataKey, InvalidArgument,
                  "save_safetensors('" << path << "') name of tensor " << i,
                  "a name other than the reserved '__metadata__'", excerpt(name));
    TABULA_EXPECT(names.insert(name).second, InvalidArgument,
                  "save_safetensors('" << path << "') name of tensor " << i, "unique names",
                  excerpt(name) << " a second time");
    TABULA_EXPECT(tensor.defined(), InvalidArgument,
                  "save_safetensors('" << path << "') tensor " << excerpt(name), "a tensor",
                  "an empty handle");
    const std::size_t nbytes = tensor.nbytes();  // throws SessionCleared when stale
    if (!header.ends_with('{')) header += ',';
    header += json_string(name, path, "tensor name");
    header += ":{\"dtype\":\"";
    header += safetensors_name(tensor.dtype());
    header += "\",\"shape\":[";
    const auto& dims = tensor.shape().dims();
    for (std::size_t d = 0; d < dims.size(); ++d) {
      if (d) header += ',';
      header += std::to_string(dims[d]);
    }
    header += "],\"data_offsets\":[";
    header += std::to_string(offset);
    header += ',';
    offset += nbytes;
    header += std::to_string(offset);
    header += "]}";
    sizes.push_back(nbytes);
  }
  header += '}';
  // The reference writer pads with spaces so that the buffer starts 8-byte aligned.
  header.append((kLengthBytes - header.size() % kLengthBytes) % kLengthBytes, ' ');
  TABULA_EXPECT(header.size() <= kMaxHeaderBytes, InvalidArgument,
                "save_safetensors('" << path << "') header",
                "at most " << kMaxHeaderBytes << " bytes", header.size() << " bytes");

  std::array<unsigned char, kLengthBytes> length{};
  std::uint64_t n = header.size();
  for (auto& byte : length) {
    byte = static_cast<unsigned char>(n & 0xff);
    n >>= 8;
  }

  AtomicFile file(path);
  file.write(length.data(), length.size());
  file.write(header.data(), header.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& tensor = tensors[i].tensor;
    if (sizes[i] == 0) continue;
    if (tensor.device().is_cpu()) {
      file.write(tensor.raw_data(), sizes[i]);
    } else {
      const Tensor host = tensor.to(Device::cpu());
      file.write(host.raw_data(), sizes[i]);
    }
  }
  file.commit();
}

// ---- SafetensorsFile ---------------------------------------------------------------------

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  auto fail = [&path](const std::string& what, int error) {
    TABULA_THROW(Error,
                 "cannot read safetensors file '" << path << "': " << what << errno_text(error));
  };
  // O_NONBLOCK: a FIFO must not block the open; it is refused below like any non-regular file.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) fail("", errno);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};

  struct stat st {};
  if (::fstat(fd, &st) != 0) fail("fstat failed: ", errno);
  if (S_ISDIR(st.st_mode)) fail("", EISDIR);
  if (!S_ISREG(st.st_mode)) {
    TABULA_THROW(Error, "cannot read safetensors file '" << path
                                                         << "': expected a regular file, got "
                                                            "another kind of file");
  }
  const auto size = static_cast<std::size_t>(st.st_size);
  if (size == 0) return parse_bytes(nullptr, 0, path);

  // Read into an anonymous mapping rather than the heap: the pages go back to the OS when the
  // object dies, and nothing depends on the file staying the same after this call.
  void* map = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (map == MAP_FAILED) fail("cannot map " + std::to_string(size) + " bytes: ", errno);
  auto unmap = [size](const std::byte* p) { ::munmap(const_cast<std::byte*>(p), size); };
  std::unique_ptr<const std::byte, decltype(unmap)> owned(static_cast<const std::byte*>(map),
                                                          unmap);
  auto* out = static_cast<char*>(map);
  std::size_t got = 0;
  while (got < size) {
    const ssize_t n = ::pread(fd, out + got, size - got, static_cast<off_t>(got));
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("read failed: ", errno);
    }
    if (n == 0) {
      TABULA_THROW(Error, "cannot read safetensors file '" << path << "': expected " << size
                                                           << " bytes (its size when opened), got "
                                                           << got
                                                           << " (it shrank while being read)");
    }
    got += static_cast<std::size_t>(n);
  }
  (void)::mprotect(map, size, PROT_READ);  // hardening only; the bytes are never written
  return parse_bytes(std::shared_ptr<const std::byte>(std::move(owned)), size, path);
}

SafetensorsFile SafetensorsFile::parse(std::vector<std::byte> bytes, std::string name_for_errors) {
  auto owner = std::make_shared<const std::vector<std::byte>>(std::move(bytes));
  std::shared_ptr<const std::byte> data(owner, owner->data());
  const std::size_t size = owner->size();
  return parse_bytes(std::move(data), size, std::move(name_for_errors));
}

SafetensorsFile SafetensorsFile::parse_bytes(std::shared_ptr<const std::byte> data,
                                             std::size_t size, std::string name) {
  SafetensorsFile file;
  file.name_ = std::move(name);
  HeaderParser checks(file.name_, 0);
  if (size < kLengthBytes) {
    TABULA_THROW(FormatError, checks.in_file()
                                  << ": expected at least " << kLengthBytes
                                  << " bytes (the header length), got " << size << " bytes");
  }
  std::uint64_t header_size = 0;
  for (std::size_t i = kLengthBytes; i-- > 0;) {
    header_size = (header_size << 8) | std::to_integer<std::uint64_t>(data.get()[i]);
  }
  if (header_size > kMaxHeaderBytes) {
    TABULA_THROW(FormatError, checks.in_file() << ": header length: expected at most "
                                               << kMaxHeaderBytes << " bytes, got " << header_size);
  }
  if (header_size > size - kLengthBytes) {
    TABULA_THROW(FormatError, checks.in_file()
                                  << ": header length: expected at most " << size - kLengthBytes
                                  << " bytes (what the file holds after the length), got "
                                  << header_size);
  }
  file.buffer_start_ = kLengthBytes + static_cast<std::size_t>(header_size);
  const std::uint64_t buffer_size = size - file.buffer_start_;

  HeaderParser parser(file.name_, buffer_size);
  const char* text = reinterpret_cast<const char*>(data.get()) + kLengthBytes;
  std::vector<std::string> keys;
  const Json root = parser.parse_json(text, text + header_size, keys);

  std::vector<SafetensorsEntry> entries;
  entries.reserve(keys.size());
  for (const auto& key : keys) {
    const Json& value = root.find(key).value();
    if (key == kMetadataKey) {
      file.metadata_ = parser.parse_metadata(value);
    } else {
      entries.push_back(parser.parse_entry(key, value));
    }
  }
  parser.order_and_check_tiling(entries);

  file.entries_ = std::move(entries);
  for (std::size_t i = 0; i < file.entries_.size(); ++i) {
    file.index_.emplace(file.entries_[i].name, i);
  }
  file.data_ = std::move(data);
  file.size_ = size;
  return file;
}

const SafetensorsEntry* SafetensorsFile::find(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

const std::byte* SafetensorsFile::checked_data(const SafetensorsEntry& entry) const {
  // Only an entry that matches this file's own may be read: anything else could point
  // outside the buffer.
  const SafetensorsEntry* own = find(entry.name);
  TABULA_EXPECT(own != nullptr && own->offset == entry.offset && own->nbytes == entry.nbytes &&
                    own->dtype == entry.dtype && own->shape == entry.shape,
                InvalidArgument, "entry " << excerpt(entry.name) << " for '" << name_ << "'",
                "an entry of this file", "an entry it does not have");
  return data_.get() + buffer_start_ + own->offset;
}

std::span<const std::byte> SafetensorsFile::bytes(const SafetensorsEntry& entry) const {
  return {checked_data(entry), entry.nbytes};
}

void SafetensorsFile::copy_into(const SafetensorsEntry& entry, Tensor& destination) const {
  const std::byte* source = checked_data(entry);
  TABULA_EXPECT(
      destination.defined(), InvalidArgument,
      "copy_into destination for tensor " << excerpt(entry.name) << " in '" << name_ << "'",
      "a tensor", "an empty handle");
  const Shape& shape = destination.shape();  // throws SessionCleared when stale
  const DType dtype = destination.dtype();
  if (shape != entry.shape || dtype != entry.dtype) {
    TABULA_THROW(FormatError, "tensor " << excerpt(entry.name) << " in '" << name_
                                        << "': expected shape " << shape.str() << " "
                                        << name_of(dtype) << ", got " << entry.shape.str() << " "
                                        << name_of(entry.dtype));
  }
  detail::copy_bytes(destination.raw_data(), destination.device(), source, Device::cpu(),
                     entry.nbytes);
}

Tensor SafetensorsFile::load(const SafetensorsEntry& entry, const TensorOptions& options) const {
  const std::byte* source = checked_data(entry);
  return tabula::detail::from_bytes(source, entry.nbytes, entry.shape, entry.dtype, options);
}

}  // namespace tabula::io
