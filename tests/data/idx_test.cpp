#include "tabula/data/idx.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <bit>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "data/fixtures/idx_bytes.hpp"
#include "support/expect_error.hpp"
#include "tabula/tabula.hpp"

namespace tabula::data {
namespace {

namespace fs = std::filesystem;
using testing::append_be32;
using testing::Bytes;
using testing::concat;
using testing::expect_contains;
using testing::gzip;
using testing::idx_header;
using testing::thrown_message;

/// Each test gets a session of its own and a scratch directory.
class IdxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("tabula_idx_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::string write(const std::string& name, const Bytes& bytes) {
    const fs::path path = dir_ / name;
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
    return path.string();
  }

  Session session_{{.name = "idx"}};
  SessionScope use_{session_};
  fs::path dir_;
};

/// Parses `bytes` from memory and expects a FormatError whose message has every part.
void expect_format_error(const Bytes& bytes, std::initializer_list<std::string> parts) {
  const std::string message = thrown_message<FormatError>(
      [&] { (void)read_idx_bytes(bytes.data(), bytes.size(), "bad.idx"); });
  expect_contains(message, {"IDX file 'bad.idx'"});
  expect_contains(message, parts);
}

Bytes pixels_2x3x4() {
  Bytes out = idx_header(0x08, {2, 3, 4});
  for (int i = 0; i < 24; ++i) out.push_back(static_cast<unsigned char>(i * 10));
  return out;
}

std::vector<std::uint8_t> expected_pixels() {
  std::vector<std::uint8_t> out;
  for (int i = 0; i < 24; ++i) out.push_back(static_cast<std::uint8_t>(i * 10));
  return out;
}

// ---- reading -----------------------------------------------------------------------------

TEST_F(IdxTest, ReadsGzippedUbyteImagesWithTheirShape) {
  const Tensor t = read_idx(write("images-idx3-ubyte.gz", gzip(pixels_2x3x4())));
  EXPECT_EQ(t.shape(), Shape({2, 3, 4}));
  EXPECT_EQ(t.dtype(), DType::uint8);
  EXPECT_EQ(t.to_vector<std::uint8_t>(), expected_pixels());
}

TEST_F(IdxTest, ReadsPlainFilesToo) {
  const Tensor t = read_idx(write("images-idx3-ubyte", pixels_2x3x4()));
  EXPECT_EQ(t.shape(), Shape({2, 3, 4}));
  EXPECT_EQ(t.to_vector<std::uint8_t>(), expected_pixels());
}

TEST_F(IdxTest, DecodesEveryBigEndianElementType) {
  {
    Bytes b = idx_header(0x0C, {3});
    for (std::int32_t v : {1, -2, 2147483647}) append_be32(b, static_cast<std::uint32_t>(v));
    const Tensor t = read_idx_bytes(b.data(), b.size(), "int");
    EXPECT_EQ(t.dtype(), DType::int32);
    EXPECT_EQ(t.to_vector<std::int32_t>(), (std::vector<std::int32_t>{1, -2, 2147483647}));
  }
  {
    Bytes b = idx_header(0x0D, {2, 1});
    for (float v : {1.5f, -0.25f}) append_be32(b, std::bit_cast<std::uint32_t>(v));
    const Tensor t = read_idx_bytes(b.data(), b.size(), "float");
    EXPECT_EQ(t.dtype(), DType::float32);
    EXPECT_EQ(t.shape(), Shape({2, 1}));
    EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{1.5f, -0.25f}));
  }
  {
    Bytes b = idx_header(0x0E, {2});
    for (double v : {3.141592653589793, -1e300}) {
      const auto bits = std::bit_cast<std::uint64_t>(v);
      append_be32(b, static_cast<std::uint32_t>(bits >> 32));
      append_be32(b, static_cast<std::uint32_t>(bits));
    }
    const Tensor t = read_idx_bytes(b.data(), b.size(), "double");
    EXPECT_EQ(t.dtype(), DType::float64);
    EXPECT_EQ(t.to_vector<double>(), (std::vector<double>{3.141592653589793, -1e300}));
  }
  {
    Bytes b = concat(idx_header(0x0B, {3}), {0x00, 0x07, 0xFF, 0xFE, 0x80, 0x00});
    const Tensor t = read_idx_bytes(b.data(), b.size(), "short");
    EXPECT_EQ(t.dtype(), DType::int32);
    EXPECT_EQ(t.to_vector<std::int32_t>(), (std::vector<std::int32_t>{7, -2, -32768}));
  }
  {
    Bytes b = concat(idx_header(0x09, {3}), {0x05, 0xFF, 0x80});
    const Tensor t = read_idx_bytes(b.data(), b.size(), "sbyte");
    EXPECT_EQ(t.dtype(), DType::int32);
    EXPECT_EQ(t.to_vector<std::int32_t>(), (std::vector<std::int32_t>{5, -1, -128}));
  }
}

TEST_F(IdxTest, ScalesBytesToFloatsExactlyLikeADivisionWhileReading) {
  Bytes b = idx_header(0x08, {256});
  for (int v = 0; v < 256; ++v) b.push_back(static_cast<unsigned char>(v));
  const Bytes gz = gzip(b);
  const Tensor t =
      read_idx_bytes(gz.data(), gz.size(), "ramp", {.dtype = DType::float32, .scale = 1.0 / 255});
  const auto values = t.to_vector<float>();
  ASSERT_EQ(values.size(), 256u);
  for (int v = 0; v < 256; ++v) ASSERT_EQ(values[v], static_cast<float>(v) / 255.0f) << v;

  const Tensor wide = read_idx_bytes(b.data(), b.size(), "ramp", {.dtype = DType::int64});
  EXPECT_EQ(wide.dtype(), DType::int64);
  EXPECT_EQ(wide.to_vector<std::int64_t>()[200], 200);
}

TEST_F(IdxTest, ConvertsWideTypesAcrossChunks) {
  // More elements than one conversion chunk holds, so chunk boundaries are crossed.
  constexpr std::uint32_t n = 100'003;
  Bytes b = idx_header(0x0C, {n});
  for (std::uint32_t i = 0; i < n; ++i)
    append_be32(b, static_cast<std::uint32_t>(-static_cast<std::int32_t>(i)));
  const Bytes gz = gzip(b);
  const auto v =
      read_idx_bytes(gz.data(), gz.size(), "ramp", {.dtype = DType::float64, .scale = 0.5})
          .to_vector<double>();
  ASSERT_EQ(v.size(), n);
  for (std::uint32_t i = 0; i < n; ++i) ASSERT_EQ(v[i], -0.5 * i) << i;
}

TEST_F(IdxTest, RefusesConversionsThatWouldLoseValues) {
  Bytes floats = idx_header(0x0D, {1});
  append_be32(floats, std::bit_cast<std::uint32_t>(2.5f));
  expect_contains(thrown_message<InvalidArgument>([&] {
                    (void)read_idx_bytes(floats.data(), floats.size(), "f",
                                         {.dtype = DType::int32});
                  }),
                  {"IDX type 'float'", "expected float32 or float64", "got int32"});

  const Bytes sbytes = concat(idx_header(0x09, {1}), {0xFF});
  expect_contains(thrown_message<InvalidArgument>([&] {
                    (void)read_idx_bytes(sbytes.data(), sbytes.size(), "s",
                                         {.dtype = DType::uint8});
                  }),
                  {"IDX type 'sbyte'", "got uint8"});

  const Bytes ubytes = concat(idx_header(0x08, {1}), {0x01});
  expect_contains(thrown_message<InvalidArgument>([&] {
                    (void)read_idx_bytes(ubytes.data(), ubytes.size(), "u",
                                         {.dtype = DType::int32, .scale = 0.5});
                  }),
                  {"scale", "int32"});
}

TEST_F(IdxTest, ReadsFromMemoryPlainOrGzipped) {
  const Bytes plain = pixels_2x3x4();
  const Bytes gz = gzip(plain);
  EXPECT_EQ(read_idx_bytes(plain.data(), plain.size(), "plain").to_vector<std::uint8_t>(),
            expected_pixels());
  EXPECT_EQ(read_idx_bytes(gz.data(), gz.size(), "gz").to_vector<std::uint8_t>(),
            expected_pixels());
}

TEST_F(IdxTest, InflatesHuffmanCodedBlocksAsGzipWritesThem) {
  const Tensor t = read_idx(write("ramp-idx2-ubyte.gz", testing::kHuffmanCodedIdx));
  EXPECT_EQ(t.shape(), Shape({4, 16}));
  const auto v = t.to_vector<std::uint8_t>();
  for (int i = 0; i < 64; ++i) ASSERT_EQ(v[i], (i % 4) * 60 + i / 16) << i;
}

TEST_F(IdxTest, ReadsConcatenatedGzipMembersAsOneStream) {
  const Bytes plain = pixels_2x3x4();
  const Bytes first(plain.begin(), plain.begin() + 10);
  const Bytes rest(plain.begin() + 10, plain.end());
  const Bytes two_members = concat(gzip(first), gzip(rest));
  EXPECT_EQ(read_idx(write("two.gz", two_members)).to_vector<std::uint8_t>(), expected_pixels());
}

TEST_F(IdxTest, ZeroExtentsGiveAnEmptyTensor) {
  const Bytes b = idx_header(0x08, {0, 28, 28});
  const Tensor t = read_idx_bytes(b.data(), b.size(), "empty");
  EXPECT_EQ(t.shape(), Shape({0, 28, 28}));
  EXPECT_EQ(t.numel(), 0);
}

TEST_F(IdxTest, TensorsBelongToTheCurrentSessionAsData) {
  const Tensor t = read_idx(write("x.gz", gzip(pixels_2x3x4())), {.name = "pixels"});
  EXPECT_EQ(t.category(), Category::data);
  EXPECT_EQ(t.name(), "pixels");
  EXPECT_GE(session_.memory_info().by_category[Category::data], t.nbytes());
  session_.clear();
  EXPECT_THROW((void)t.to_vector<std::uint8_t>(), SessionCleared);
}

// ---- files that cannot be read -----------------------------------------------------------

TEST_F(IdxTest, AMissingFileIsAnErrorNamingThePathAndTheReason) {
  const std::string path = (dir_ / "absent-idx1-ubyte.gz").string();
  expect_contains(thrown_message<Error>([&] { (void)read_idx(path); }),
                  {"'" + path + "'", "No such file or directory"});
}

TEST_F(IdxTest, ADirectoryIsAnErrorNamingThePath) {
  expect_contains(thrown_message<Error>([&] { (void)read_idx(dir_.string()); }),
                  {dir_.string(), "Is a directory"});
}

// ---- malformed data: every case is a FormatError naming file, field, expected and got ----

TEST_F(IdxTest, EmptyDataIsAFormatError) {
  expect_format_error({}, {"header", "expected 4 bytes", "got 0 bytes"});
}

TEST_F(IdxTest, ABadMagicIsAFormatError) {
  expect_format_error(concat({0x01, 0x00, 0x08, 0x01}, {0, 0, 0, 1, 7}),
                      {"magic", "expected 0x00 0x00", "got 0x01 0x00"});
}

TEST_F(IdxTest, AnUnknownTypeCodeIsAFormatError) {
  expect_format_error(concat(idx_header(0x0A, {1}), {7}),
                      {"type code", "0x08 (ubyte)", "0x0E (double)", "got 0x0A"});
}

TEST_F(IdxTest, ZeroDimensionsIsAFormatError) {
  expect_format_error({0, 0, 0x08, 0}, {"dimension count", "expected 1 to 16", "got 0"});
}

TEST_F(IdxTest, TooManyDimensionsIsAFormatError) {
  Bytes b = {0, 0, 0x08, 17};
  for (int i = 0; i < 17; ++i) append_be32(b, 1);
  b.push_back(0);
  expect_format_error(b, {"dimension count", "expected 1 to 16", "got 17"});
}

TEST_F(IdxTest, TruncatedDimensionsAreAFormatError) {
  expect_format_error({0, 0, 0x08, 3, 0, 0, 0, 2, 0},
                      {"dimensions", "expected 12 bytes for 3 extents", "got 5 bytes"});
}

TEST_F(IdxTest, ATruncatedPayloadIsAFormatError) {
  const Bytes b = concat(idx_header(0x08, {2, 3}), {1, 2, 3, 4, 5});
  expect_format_error(
      b, {"payload", "expected 6 bytes for shape (2, 3) of ubyte", "got 5 bytes", "truncated"});
  // Through a valid gzip stream, the short payload is found while inflating.
  expect_format_error(gzip(b), {"payload", "expected 6 bytes", "got 5 bytes", "truncated"});
  // A wide type counts bytes, not elements.
  expect_format_error(concat(idx_header(0x0C, {2}), {0, 0, 0, 1, 0, 0}),
                      {"expected 8 bytes for shape (2,) of int", "got 6 bytes"});
}

TEST_F(IdxTest, TrailingGarbageIsAFormatError) {
  const Bytes b = concat(pixels_2x3x4(), {0xAB, 0xCD});
  expect_format_error(b, {"end of data", "expected the data to end after the 24-byte payload",
                          "got 2 more bytes", "trailing garbage"});
  expect_format_error(gzip(b), {"end of data", "got 2 more bytes"});
}

TEST_F(IdxTest, ExtentsWhoseProductOverflowsAreAFormatError) {
  Bytes b = {0, 0, 0x0E, 3};
  for (int i = 0; i < 3; ++i) append_be32(b, 0xFFFFFFFFu);
  expect_format_error(b, {"dimensions", "(4294967295, 4294967295, 4294967295)", "overflows"});
}

TEST_F(IdxTest, ExtentsWhoseRunningProductOverflowsBeforeAZeroAreAFormatError) {
  // 0 elements in all, but the tensor's shape would overflow int64 on the way to that 0.
  Bytes b = {0, 0, 0x0E, 3};
  append_be32(b, 0xFFFFFFFFu);
  append_be32(b, 0xFFFFFFFFu);
  append_be32(b, 0);
  expect_format_error(b, {"dimensions", "(4294967295, 4294967295, 0)", "overflows"});
}

TEST_F(IdxTest, ExtentsLargerThanThePayloadFailBeforeAllocating) {
  // 64 GiB claimed, 3 bytes present: refused by the size check, not by an allocation.
  const Bytes b = concat(idx_header(0x08, {65536, 65536, 16}), {1, 2, 3});
  expect_format_error(b, {"payload", "expected 68719476736 bytes", "got 3 bytes"});
  // A gzip stream of a few dozen bytes cannot inflate to 64 GiB either.
  expect_format_error(gzip(b), {"payload", "expected 68719476736 bytes", "gzip stream", "at most"});
  EXPECT_EQ(session_.memory_info().peak, 0u);
}

TEST_F(IdxTest, CorruptGzipDataIsAFormatError) {
  Bytes gz = gzip(pixels_2x3x4());
  gz[gz.size() - 6] ^= 0xFF;  // inside the CRC-32 of the trailer
  const std::string path = write("crc.gz", gz);
  expect_contains(thrown_message<FormatError>([&] { (void)read_idx(path); }),
                  {"IDX file '" + path + "'", "gzip stream", "corrupt", "incorrect data check"});

  Bytes bad_method = gzip(pixels_2x3x4());
  bad_method[2] = 7;  // compression method other than deflate
  expect_format_error(bad_method, {"gzip stream", "corrupt", "zlib: unknown compression method"});

  Bytes bad_block = gzip(pixels_2x3x4());
  bad_block[testing::kFirstBlockOffset + 3] ^= 0x01;  // NLEN no longer the complement of LEN
  expect_format_error(bad_block, {"gzip stream", "corrupt", "zlib: invalid stored block lengths"});
}

TEST_F(IdxTest, ATruncatedGzipFileIsAFormatError) {
  Bytes b = idx_header(0x08, {1000});
  for (int i = 0; i < 1000; ++i) b.push_back(static_cast<unsigned char>(i * 7919 % 251));
  Bytes gz = gzip(b);
  gz.resize(gz.size() / 2);
  const std::string path = write("cut.gz", gz);
  expect_contains(
      thrown_message<FormatError>([&] { (void)read_idx(path); }),
      {"IDX file '" + path + "'", "gzip stream", "expected more compressed data", "truncated"});
}

TEST_F(IdxTest, GarbageAfterTheGzipStreamIsAFormatError) {
  const Bytes gz = concat(gzip(pixels_2x3x4()), {'j', 'u', 'n', 'k'});
  expect_format_error(
      gz, {"gzip stream", "after the gzip trailer", "got byte 0x6A", "trailing garbage"});
}

TEST_F(IdxTest, FormatErrorsFromFilesNameThePath) {
  const std::string path = write("bad-magic", {0x12, 0x34, 0x08, 0x01});
  expect_contains(thrown_message<FormatError>([&] { (void)read_idx(path); }),
                  {"IDX file '" + path + "', magic", "got 0x12 0x34"});
}

TEST_F(IdxTest, EveryPrefixOfAValidFileFailsCleanly) {
  // A cheap stand-in for fuzzing: every truncation point, plain and gzipped, must throw a
  // FormatError and never read out of bounds (the ASan build checks the latter).
  const Bytes plain = pixels_2x3x4();
  const Bytes gz = gzip(plain);
  for (const Bytes* full : {&plain, &gz}) {
    for (std::size_t n = 0; n < full->size(); ++n) {
      const Bytes prefix(full->begin(), full->begin() + static_cast<std::ptrdiff_t>(n));
      EXPECT_THROW((void)read_idx_bytes(prefix.data(), prefix.size(), "prefix"), FormatError)
          << "prefix of " << n << " bytes";
    }
  }
}

}  // namespace
}  // namespace tabula::data
