#pragma once
// One kernels object per CUDA device present, made on first use.

#include <deque>

#include "tabula/core/device.hpp"
#include "tabula/core/errors.hpp"

namespace tabula::detail {

/// The `K` of CUDA device `device` (K constructible from a Device). Thread-safe.
/// @throws Error naming `what` when no such device is present.
template <typename K>
K& per_device(Device device, const char* what) {
  static std::deque<K> all = [] {
    std::deque<K> made;
    for (int i = 0; i < cuda_device_count(); ++i) made.emplace_back(Device::cuda(i));
    return made;
  }();
  TABULA_EXPECT(device.is_cuda() && device.index() < static_cast<int>(all.size()), Error,
                what << " device", "one of the " << all.size() << " CUDA devices present",
                device.str());
  return all[static_cast<std::size_t>(device.index())];
}

}  // namespace tabula::detail
