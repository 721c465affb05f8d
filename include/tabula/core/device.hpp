#pragma once
/// @file
/// Where memory lives and kernels run: the host CPU or one CUDA GPU.

#include <compare>
#include <cstdint>
#include <functional>
#include <string>

namespace tabula {

/// @brief A device: the CPU, or the CUDA GPU with a given ordinal. A small value type.
class Device {
 public:
  enum class Kind : std::uint8_t { cpu, cuda };

  /// The host CPU (the default).
  constexpr Device() = default;
  static constexpr Device cpu() noexcept { return Device(Kind::cpu, 0); }
  /// @throws InvalidArgument when `index` is negative.
  static Device cuda(int index = 0);

  constexpr Kind kind() const noexcept { return kind_; }
  constexpr int index() const noexcept { return index_; }
  constexpr bool is_cpu() const noexcept { return kind_ == Kind::cpu; }
  constexpr bool is_cuda() const noexcept { return kind_ == Kind::cuda; }

  /// "cpu" or "cuda:0".
  std::string str() const;

  friend constexpr auto operator<=>(const Device&, const Device&) = default;

 private:
  constexpr Device(Kind kind, int index) noexcept : kind_(kind), index_(index) {}

  Kind kind_ = Kind::cpu;
  int index_ = 0;
};

/// Number of CUDA devices this process can use: 0 when tabula was built without CUDA or when
/// no driver or GPU is present (never throws).
int cuda_device_count() noexcept;

}  // namespace tabula

template <>
struct std::hash<tabula::Device> {
  std::size_t operator()(const tabula::Device& d) const noexcept {
    return static_cast<std::size_t>(d.kind()) * 1024u + static_cast<std::size_t>(d.index());
  }
};
