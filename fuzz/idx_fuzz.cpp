// libFuzzer target: read_idx_bytes on any bytes, plain or gzip'd (its magic bytes choose), either
// throws a tabula::Error naming the data, or returns a tensor; a file that reads is then read
// again into int64 / float64 / scaled float32, and those must agree with the first reading.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz_contract.hpp"
#include "tabula/data/idx.hpp"

namespace {

constexpr const char* kName = "fuzz.idx";

using tabula::DType;
using tabula::Tensor;
using tabula::data::IdxOptions;
using tabula::data::read_idx_bytes;

/// The elements of a tensor of any dtype, as doubles (every IDX value is exact in a double).
std::vector<double> as_doubles(const Tensor& t) {
  std::vector<double> out;
  auto append = [&out](const auto& values) { out.assign(values.begin(), values.end()); };
  switch (t.dtype()) {
    case DType::float32: append(t.to_vector<float>()); break;
    case DType::float64: append(t.to_vector<double>()); break;
    case DType::int32: append(t.to_vector<std::int32_t>()); break;
    case DType::int64: append(t.to_vector<std::int64_t>()); break;
    case DType::uint8: append(t.to_vector<std::uint8_t>()); break;
  }
  return out;
}

bool same(double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); }

void expect_same_values(const Tensor& natural, const Tensor& converted, double scale) {
  if (converted.shape() != natural.shape()) tabula::fuzz::broken_promise("a conversion's shape");
  const auto a = as_doubles(natural), b = as_doubles(converted);
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double want = converted.dtype() == DType::float32
                            ? static_cast<double>(static_cast<float>(a[i] * scale))
                            : a[i] * scale;
    if (!same(want, b[i])) tabula::fuzz::broken_promise("a conversion's values");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  tabula::fuzz::last_input_accepted = tabula::fuzz::read_or_refuse(kName, [&] {
    const Tensor natural = read_idx_bytes(data, size, kName);
    // Tensors of other dtypes than the file's: each either refuses (a lossy conversion) or
    // holds the same values.
    for (const IdxOptions& options : {IdxOptions{.dtype = DType::int64},
                                      IdxOptions{.dtype = DType::float64},
                                      IdxOptions{.dtype = DType::float32, .scale = 1.0 / 255}}) {
      try {
        expect_same_values(natural, read_idx_bytes(data, size, kName, options), options.scale);
      } catch (const tabula::InvalidArgument&) {
        // int64 from a floating file: refused, as documented.
      }
    }
  });
  return 0;
}
