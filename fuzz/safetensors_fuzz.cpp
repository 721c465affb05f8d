// libFuzzer target: SafetensorsFile::parse on any bytes either throws a tabula::Error naming the
// file, or returns a file whose every entry reads back in bounds and loads into a tensor that
// holds exactly those bytes.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "fuzz_contract.hpp"
#include "tabula/io/safetensors.hpp"

namespace {

constexpr const char* kName = "fuzz.safetensors";

void read_every_entry(const std::uint8_t* data, std::size_t size) {
  std::vector<std::byte> bytes(size);
  if (size > 0) std::memcpy(bytes.data(), data, size);
  const auto file = tabula::io::SafetensorsFile::parse(std::move(bytes), kName);
  for (const auto& entry : file.entries()) {
    if (file.find(entry.name) != &entry) tabula::fuzz::broken_promise("find(name) != its entry");
    const auto raw = file.bytes(entry);
    if (raw.size() != entry.nbytes) tabula::fuzz::broken_promise("bytes() size != nbytes");
    const tabula::Tensor tensor = file.load(entry);
    if (tensor.shape() != entry.shape || tensor.dtype() != entry.dtype ||
        tensor.nbytes() != entry.nbytes) {
      tabula::fuzz::broken_promise("a loaded tensor differs from its entry");
    }
    if (entry.nbytes > 0 && std::memcmp(tensor.raw_data(), raw.data(), entry.nbytes) != 0) {
      tabula::fuzz::broken_promise("a loaded tensor holds other bytes than the file");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  tabula::fuzz::last_input_accepted =
      tabula::fuzz::read_or_refuse(kName, [&] { read_every_entry(data, size); });
  return 0;
}
