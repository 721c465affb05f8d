#include "tabula/data/idx.hpp"

#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <sstream>
#include <system_error>
#include <type_traits>
#include <vector>

#include "backend/detail/device_copy.hpp"

namespace tabula::data {

std::string_view name_of(IdxType type) noexcept {
  switch (type) {
    case IdxType::ubyte:
      return "ubyte";
    case IdxType::sbyte:
      return "sbyte";
    case IdxType::int16:
      return "short";
    case IdxType::int32:
      return "int";
    case IdxType::float32:
      return "float";
    case IdxType::float64:
      return "double";
  }
  return "unknown";
}

DType natural_dtype(IdxType type) noexcept {
  switch (type) {
    case IdxType::ubyte:
      return DType::uint8;
    case IdxType::sbyte:
    case IdxType::int16:
    case IdxType::int32:
      return DType::int32;
    case IdxType::float32:
      return DType::float32;
    case IdxType::float64:
      return DType::float64;
  }
  return DType::uint8;
}

namespace {

/// Bytes converted per step: large enough to amortise the calls, small enough for L2.
constexpr std::size_t kChunkBytes = std::size_t{1} << 18;
/// Compressed bytes handed to inflate per step.
constexpr std::size_t kInflateInputBytes = std::size_t{1} << 16;
/// Deflate cannot expand data by more than this factor (RFC 1951: 258 bytes per 2 bits, plus
/// block overhead), so a gzip stream of C bytes inflates to at most C * 1032 bytes. This bounds
/// what a header may claim before anything is allocated.
constexpr std::uint64_t kMaxDeflateRatio = 1032;
/// How much of an unexpected tail is read to say how long it is.
constexpr std::size_t kTailProbeBytes = 4096;

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

std::string hex_byte(unsigned value) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  return std::string{'0', 'x', kDigits[(value >> 4) & 0xF], kDigits[value & 0xF]};
}

std::uint64_t saturating_mul(std::uint64_t a, std::uint64_t b) {
  std::uint64_t out = 0;
  return __builtin_mul_overflow(a, b, &out) ? std::numeric_limits<std::uint64_t>::max() : out;
}

bool is_known_type(unsigned code) {
  switch (code) {
    case 0x08:
    case 0x09:
    case 0x0B:
    case 0x0C:
    case 0x0D:
    case 0x0E:
      return true;
    default:
      return false;
  }
}

std::size_t element_size(IdxType type) {
  switch (type) {
    case IdxType::ubyte:
    case IdxType::sbyte:
      return 1;
    case IdxType::int16:
      return 2;
    case IdxType::int32:
    case IdxType::float32:
      return 4;
    case IdxType::float64:
      return 8;
  }
  return 1;
}

bool is_floating(DType dtype) { return dtype == DType::float32 || dtype == DType::float64; }

// ---- byte sources ------------------------------------------------------------------------

/// Where the (decompressed) bytes of an IDX file come from. `read` fills up to `n` bytes and
/// returns fewer only at the end of the data. Not thread-safe; one per read.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual std::size_t read(unsigned char* dst, std::size_t n) = 0;
};

class MemorySource final : public ByteSource {
 public:
  MemorySource(const unsigned char* data, std::size_t size) noexcept : data_(data), size_(size) {}

  std::size_t read(unsigned char* dst, std::size_t n) override {
    const std::size_t k = std::min(n, size_ - pos_);
    if (k > 0) std::memcpy(dst, data_ + pos_, k);
    pos_ += k;
    return k;
  }

 private:
  const unsigned char* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

struct FileCloser {
  void operator()(std::FILE* f) const noexcept { std::fclose(f); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

/// Reads a file through stdio; a read error (not the end of the file) is an `Error`.
class FileSource final : public ByteSource {
 public:
  FileSource(std::FILE* file, const std::string& path) noexcept : file_(file), path_(path) {}

  std::size_t read(unsigned char* dst, std::size_t n) override {
    std::size_t got = 0;
    while (got < n) {
      const std::size_t k = std::fread(dst + got, 1, n - got, file_);
      got += k;
      if (k == 0) {
        if (std::ferror(file_)) {
          const int err = errno;
          TABULA_THROW(Error, "cannot read IDX file '" << path_ << "': " << errno_text(err));
        }
        break;
      }
    }
    return got;
  }

 private:
  std::FILE* file_;
  const std::string& path_;
};

/// Inflates a gzip stream (one or more concatenated members, as gzip(1) writes them) from an
/// upstream source. Corrupt or truncated data, and anything after the last member that is not
/// another member, is a `FormatError`. Owns its zlib state.
class GzipSource final : public ByteSource {
 public:
  GzipSource(ByteSource& upstream, const std::string& name)
      : upstream_(upstream), name_(name), input_(kInflateInputBytes) {
    const int rc = inflateInit2(&stream_, 16 + MAX_WBITS);  // 16: gzip wrapper only
    if (rc == Z_MEM_ERROR) throw std::bad_alloc();
    if (rc != Z_OK) {
      TABULA_THROW(Error,
                   "IDX file '" << name_ << "': zlib inflateInit2 failed (code " << rc << ")");
    }
  }
  ~GzipSource() override { inflateEnd(&stream_); }
  GzipSource(const GzipSource&) = delete;
  GzipSource& operator=(const GzipSource&) = delete;

  std::size_t read(unsigned char* dst, std::size_t n) override {
    std::size_t produced = 0;
    while (produced < n && !finished_) {
      if (stream_.avail_in == 0 && !upstream_done_) refill();
      if (member_done_) {
        if (stream_.avail_in == 0) {  // refill found nothing more: a clean end
          finished_ = true;
          break;
        }
        if (stream_.next_in[0] != 0x1F) {
          TABULA_THROW(FormatError,
                       "IDX file '" << name_ << "', gzip stream: expected the end of the file or "
                                    << "another gzip member after the gzip trailer, got byte "
                                    << hex_byte(stream_.next_in[0]) << " (trailing garbage)");
        }
        inflateReset(&stream_);
        member_done_ = false;
      }
      const std::size_t want = std::min<std::size_t>(n - produced, UINT_MAX);
      stream_.next_out = dst + produced;
      stream_.avail_out = static_cast<uInt>(want);
      const int rc = inflate(&stream_, Z_NO_FLUSH);
      produced += want - stream_.avail_out;
      switch (rc) {
        case Z_OK:
          break;
        case Z_STREAM_END:
          member_done_ = true;
          break;
        case Z_BUF_ERROR:  // no progress possible: inflate wants input that is not there
          if (stream_.avail_in == 0 && upstream_done_) {
            TABULA_THROW(FormatError,
                         "IDX file '" << name_ << "', gzip stream: expected more compressed "
                                      << "data, got the end of the file after " << compressed_bytes_
                                      << " compressed bytes (the gzip file is truncated)");
          }
          break;
        case Z_MEM_ERROR:
          throw std::bad_alloc();
        default:  // Z_DATA_ERROR, Z_NEED_DICT, Z_STREAM_ERROR
          TABULA_THROW(FormatError, "IDX file '"
                                        << name_ << "', gzip stream: expected valid gzip data, got "
                                        << "corrupt data near compressed byte "
                                        << compressed_bytes_ - stream_.avail_in << " (zlib: "
                                        << (stream_.msg != nullptr ? stream_.msg : "error") << ")");
      }
    }
    return produced;
  }

 private:
  void refill() {
    const std::size_t got = upstream_.read(input_.data(), input_.size());
    compressed_bytes_ += got;
    stream_.next_in = input_.data();
    stream_.avail_in = static_cast<uInt>(got);
    if (got < input_.size()) upstream_done_ = true;
  }

  ByteSource& upstream_;
  const std::string& name_;
  std::vector<unsigned char> input_;
  z_stream stream_{};
  std::uint64_t compressed_bytes_ = 0;
  bool upstream_done_ = false;
  bool member_done_ = false;
  bool finished_ = false;
};

// ---- element conversion ------------------------------------------------------------------

std::uint32_t load_be32(const unsigned char* p) noexcept {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

std::uint64_t load_be64(const unsigned char* p) noexcept {
  return (std::uint64_t{load_be32(p)} << 32) | load_be32(p + 4);
}

struct DecodeUbyte {
  static constexpr std::size_t size = 1;
  std::uint8_t operator()(const unsigned char* p) const noexcept { return p[0]; }
};
struct DecodeSbyte {
  static constexpr std::size_t size = 1;
  std::int8_t operator()(const unsigned char* p) const noexcept {
    return static_cast<std::int8_t>(p[0]);
  }
};
struct DecodeInt16 {
  static constexpr std::size_t size = 2;
  std::int16_t operator()(const unsigned char* p) const noexcept {
    return static_cast<std::int16_t>(static_cast<std::uint16_t>((p[0] << 8) | p[1]));
  }
};
struct DecodeInt32 {
  static constexpr std::size_t size = 4;
  std::int32_t operator()(const unsigned char* p) const noexcept {
    return static_cast<std::int32_t>(load_be32(p));
  }
};
struct DecodeFloat32 {
  static constexpr std::size_t size = 4;
  float operator()(const unsigned char* p) const noexcept {
    return std::bit_cast<float>(load_be32(p));
  }
};
struct DecodeFloat64 {
  static constexpr std::size_t size = 8;
  double operator()(const unsigned char* p) const noexcept {
    return std::bit_cast<double>(load_be64(p));
  }
};

template <typename Out, typename Decoder>
void convert_wide(const unsigned char* in, std::size_t n, Out* out, double scale) {
  const Decoder decode;
  if (scale == 1.0) {
    for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<Out>(decode(in + i * Decoder::size));
  } else {
    for (std::size_t i = 0; i < n; ++i) {
      out[i] = static_cast<Out>(static_cast<double>(decode(in + i * Decoder::size)) * scale);
    }
  }
}

/// Converts big-endian IDX elements into the tensor's dtype, scaling them on the way. One-byte
/// types go through a 256-entry table, which makes "pixels to floats in [0, 1]" a single load
/// per element.
class ElementConverter {
 public:
  ElementConverter(IdxType type, DType out, double scale) : type_(type), out_(out), scale_(scale) {
    if (element_size(type) == 1) {
      switch (out) {
        case DType::float32:
          fill_table<float>();
          break;
        case DType::float64:
          fill_table<double>();
          break;
        case DType::int32:
          fill_table<std::int32_t>();
          break;
        case DType::int64:
          fill_table<std::int64_t>();
          break;
        case DType::uint8:
          fill_table<std::uint8_t>();
          break;
      }
    }
  }

  void operator()(const unsigned char* in, std::size_t n, void* out) const {
    switch (out_) {
      case DType::float32:
        return run(in, n, static_cast<float*>(out));
      case DType::float64:
        return run(in, n, static_cast<double*>(out));
      case DType::int32:
        return run(in, n, static_cast<std::int32_t*>(out));
      case DType::int64:
        return run(in, n, static_cast<std::int64_t*>(out));
      case DType::uint8:
        return run(in, n, static_cast<std::uint8_t*>(out));
    }
  }

 private:
  template <typename Out>
  void fill_table() {
    Out* table = table_of<Out>(table_);
    for (unsigned v = 0; v < 256; ++v) {
      const unsigned char byte = static_cast<unsigned char>(v);
      const double value = type_ == IdxType::ubyte ? DecodeUbyte{}(&byte) : DecodeSbyte{}(&byte);
      table[v] = static_cast<Out>(scale_ == 1.0 ? value : value * scale_);
    }
  }

  template <typename Out>
  void run(const unsigned char* in, std::size_t n, Out* out) const {
    switch (type_) {
      case IdxType::ubyte:
      case IdxType::sbyte: {
        const Out* table = table_of<Out>(table_);
        for (std::size_t i = 0; i < n; ++i) out[i] = table[in[i]];
        return;
      }
      case IdxType::int16:
        return convert_wide<Out, DecodeInt16>(in, n, out, scale_);
      case IdxType::int32:
        return convert_wide<Out, DecodeInt32>(in, n, out, scale_);
      case IdxType::float32:
        return convert_wide<Out, DecodeFloat32>(in, n, out, scale_);
      case IdxType::float64:
        return convert_wide<Out, DecodeFloat64>(in, n, out, scale_);
    }
  }

  /// The table for `Out` (const or not, as `table` is): the union member `fill_table` wrote.
  template <typename Out, typename Table>
  static auto* table_of(Table& table) noexcept {
    if constexpr (std::is_same_v<Out, float>) return table.f32;
    if constexpr (std::is_same_v<Out, double>) return table.f64;
    if constexpr (std::is_same_v<Out, std::int32_t>) return table.i32;
    if constexpr (std::is_same_v<Out, std::int64_t>) return table.i64;
    if constexpr (std::is_same_v<Out, std::uint8_t>) return table.u8;
  }

  IdxType type_;
  DType out_;
  double scale_;
  union Tables {
    float f32[256];
    double f64[256];
    std::int32_t i32[256];
    std::int64_t i64[256];
    std::uint8_t u8[256];
  } table_{};
};

/// Checks that `options` asks for a conversion of `type` that keeps every value.
void check_conversion(IdxType type, DType out, const IdxOptions& options, const std::string& name) {
  bool ok = false;
  switch (type) {
    case IdxType::ubyte:
      ok = true;
      break;
    case IdxType::sbyte:
    case IdxType::int16:
    case IdxType::int32:
      ok = out != DType::uint8;
      break;
    case IdxType::float32:
    case IdxType::float64:
      ok = is_floating(out);
      break;
  }
  const bool floating_file = type == IdxType::float32 || type == IdxType::float64;
  TABULA_EXPECT(ok, InvalidArgument,
                "read_idx('" << name << "'): dtype for IDX type '" << name_of(type) << "'",
                (floating_file ? "float32 or float64" : "int32, int64, float32 or float64")
                    << " (a dtype that holds every value)",
                name_of(out));
  TABULA_EXPECT(
      options.scale == 1.0 || is_floating(out), InvalidArgument,
      "read_idx('" << name << "'): scale " << options.scale << " with dtype " << name_of(out),
      "scale 1 for integer dtypes", options.scale);
}

// ---- the format --------------------------------------------------------------------------

#define TABULA_IDX_EXPECT(condition, field, expected, got) \
  TABULA_EXPECT(condition, FormatError, "IDX file '" << name << "', " << field, expected, got)

/// Parses an IDX stream. `available` is the number of bytes the source holds when `exact`,
/// else an upper bound on it (a gzip stream's largest possible inflated size).
Tensor parse_idx(ByteSource& source, std::uint64_t available, bool exact, const std::string& name,
                 const IdxOptions& options) {
  std::array<unsigned char, 4> magic{};
  const std::size_t magic_got = source.read(magic.data(), magic.size());
  TABULA_IDX_EXPECT(magic_got == magic.size(), "header",
                    "4 bytes (two zero bytes, type code, dimension count)",
                    magic_got << " bytes (the data ends early)");
  TABULA_IDX_EXPECT(magic[0] == 0 && magic[1] == 0, "magic", "0x00 0x00",
                    hex_byte(magic[0]) << " " << hex_byte(magic[1]) << " (not an IDX file)");
  TABULA_IDX_EXPECT(is_known_type(magic[2]), "type code",
                    "one of 0x08 (ubyte), 0x09 (sbyte), 0x0B (short), 0x0C (int), 0x0D (float), "
                    "0x0E (double)",
                    hex_byte(magic[2]));
  const auto type = static_cast<IdxType>(magic[2]);
  const int rank = magic[3];
  TABULA_IDX_EXPECT(rank >= 1 && rank <= kMaxIdxRank, "dimension count", "1 to " << kMaxIdxRank,
                    rank);

  std::array<unsigned char, 4 * kMaxIdxRank> raw_dims{};
  const std::size_t dims_bytes = 4 * static_cast<std::size_t>(rank);
  const std::size_t dims_got = source.read(raw_dims.data(), dims_bytes);
  TABULA_IDX_EXPECT(dims_got == dims_bytes, "dimensions",
                    dims_bytes << " bytes for " << rank << " extents",
                    dims_got << " bytes (the data ends early)");

  std::vector<std::int64_t> dims(static_cast<std::size_t>(rank));
  // The running product is checked the way Shape::numel() forms it (int64, left to right): a
  // zero extent after two huge ones makes the total 0, but the tensor's shape would still
  // overflow on the way there.
  std::int64_t running = 1;
  bool overflow = false;
  for (int i = 0; i < rank; ++i) {
    dims[static_cast<std::size_t>(i)] = load_be32(raw_dims.data() + 4 * i);
    overflow = overflow ||
               __builtin_mul_overflow(running, dims[static_cast<std::size_t>(i)], &running);
  }
  const auto numel = static_cast<std::uint64_t>(running);
  const Shape shape(dims);
  const std::size_t elem = element_size(type);
  std::uint64_t payload = 0;
  overflow = overflow || __builtin_mul_overflow(numel, std::uint64_t{elem}, &payload) ||
             payload > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  TABULA_IDX_EXPECT(
      !overflow, "dimensions",
      "extents whose product of " << name_of(type) << " elements fits in 63 bits of bytes",
      shape.str() << " (the byte count overflows)");

  const std::uint64_t header_bytes = 4 + dims_bytes;
  const std::uint64_t left = available - header_bytes;  // the source held the header
  if (exact) {
    TABULA_IDX_EXPECT(payload <= left, "payload",
                      payload << " bytes for shape " << shape.str() << " of " << name_of(type),
                      left << " bytes (the data is truncated)");
    TABULA_IDX_EXPECT(payload >= left, "end of data",
                      "the data to end after the " << payload << "-byte payload",
                      left - payload << " more bytes (trailing garbage)");
  } else {
    TABULA_IDX_EXPECT(payload <= left, "payload",
                      payload << " bytes for shape " << shape.str() << " of " << name_of(type),
                      "a gzip stream that can inflate to at most "
                          << left << " bytes after the header (the extents are too large)");
  }

  const DType out_dtype = options.dtype.value_or(natural_dtype(type));
  check_conversion(type, out_dtype, options, name);

  Tensor tensor =
      empty(shape, {.dtype = out_dtype, .category = Category::data, .name = options.name});
  auto* dst = static_cast<unsigned char*>(tensor.raw_data());
  const Device device = tensor.device();
  const std::size_t out_size = size_of(out_dtype);

  const auto truncated = [&](std::uint64_t got) {
    TABULA_THROW(FormatError, "IDX file '" << name << "', payload: expected " << payload
                                           << " bytes for shape " << shape.str() << " of "
                                           << name_of(type) << ", got " << got
                                           << " bytes (the data is truncated)");
  };

  if (device.is_cpu() && type == IdxType::ubyte && out_dtype == DType::uint8) {
    // The bytes are the elements: inflate straight into the tensor.
    const std::size_t got = source.read(dst, static_cast<std::size_t>(payload));
    if (got != payload) truncated(got);
  } else if (numel > 0) {
    const ElementConverter convert(type, out_dtype, options.scale);
    const std::size_t chunk = std::max<std::size_t>(1, kChunkBytes / std::max(elem, out_size));
    std::vector<unsigned char> in(chunk * elem);
    std::vector<unsigned char> staging(device.is_cpu() ? 0 : chunk * out_size);
    for (std::uint64_t done = 0; done < numel;) {
      const std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, numel - done));
      const std::size_t got = source.read(in.data(), k * elem);
      if (got != k * elem) truncated(done * elem + got);
      unsigned char* out = dst + done * out_size;
      if (device.is_cpu()) {
        convert(in.data(), k, out);
      } else {
        convert(in.data(), k, staging.data());
        detail::copy_bytes(out, device, staging.data(), Device::cpu(), k * out_size);
      }
      done += k;
    }
  }

  if (!exact) {
    // Reading on drives a gzip stream through its trailer, which checks the CRC, and finds
    // whatever follows the payload.
    std::array<unsigned char, kTailProbeBytes> tail{};
    const std::size_t extra = source.read(tail.data(), tail.size());
    TABULA_IDX_EXPECT(
        extra == 0, "end of data", "the data to end after the " << payload << "-byte payload",
        (extra == tail.size() ? "at least " : "") << extra << " more bytes (trailing garbage)");
  }
  return tensor;
}

#undef TABULA_IDX_EXPECT

bool has_gzip_magic(const unsigned char* p, std::size_t n) {
  return n >= 2 && p[0] == 0x1F && p[1] == 0x8B;
}

Tensor parse_memory(const unsigned char* data, std::size_t size, const std::string& name,
                    const IdxOptions& options) {
  MemorySource memory(data, size);
  if (has_gzip_magic(data, size)) {
    GzipSource gzip(memory, name);
    return parse_idx(gzip, saturating_mul(size, kMaxDeflateRatio), false, name, options);
  }
  return parse_idx(memory, size, true, name, options);
}

void check_scale(const IdxOptions& options) {
  TABULA_EXPECT(std::isfinite(options.scale), InvalidArgument, "read_idx scale", "a finite number",
                options.scale);
}

}  // namespace

Tensor read_idx(const std::string& path, const IdxOptions& options) {
  check_scale(options);
  FilePtr file(std::fopen(path.c_str(), "rb"));
  if (!file) {
    const int err = errno;
    TABULA_THROW(Error, "cannot open IDX file '" << path << "': " << errno_text(err));
  }
  struct stat info {};
  if (::fstat(::fileno(file.get()), &info) != 0) {
    const int err = errno;
    TABULA_THROW(Error, "cannot stat IDX file '" << path << "': " << errno_text(err));
  }
  if (S_ISDIR(info.st_mode)) {
    TABULA_THROW(Error, "cannot read IDX file '" << path << "': " << errno_text(EISDIR));
  }

  FileSource source(file.get(), path);
  if (!S_ISREG(info.st_mode)) {
    // A pipe or device has no size to check the header against: read it all first.
    std::vector<unsigned char> bytes;
    std::array<unsigned char, kInflateInputBytes> block{};
    for (std::size_t got; (got = source.read(block.data(), block.size())) > 0;) {
      bytes.insert(bytes.end(), block.begin(), block.begin() + static_cast<std::ptrdiff_t>(got));
    }
    return parse_memory(bytes.data(), bytes.size(), path, options);
  }

  const auto size = static_cast<std::uint64_t>(info.st_size);
  std::array<unsigned char, 2> start{};
  const std::size_t start_got = source.read(start.data(), start.size());
  if (std::fseek(file.get(), 0, SEEK_SET) != 0) {
    const int err = errno;
    TABULA_THROW(Error, "cannot seek in IDX file '" << path << "': " << errno_text(err));
  }
  if (has_gzip_magic(start.data(), start_got)) {
    GzipSource gzip(source, path);
    return parse_idx(gzip, saturating_mul(size, kMaxDeflateRatio), false, path, options);
  }
  return parse_idx(source, size, true, path, options);
}

Tensor read_idx_bytes(const void* data, std::size_t size, const std::string& name_for_errors,
                      const IdxOptions& options) {
  check_scale(options);
  TABULA_EXPECT(data != nullptr || size == 0, InvalidArgument,
                "read_idx_bytes('" << name_for_errors << "') data",
                "a pointer to " << size << " bytes", "nullptr");
  return parse_memory(static_cast<const unsigned char*>(data), size, name_for_errors, options);
}

}  // namespace tabula::data
