#pragma once
/// @file
/// Memory figures of a session or of a whole device.

#include <cstddef>
#include <string>

#include "tabula/core/device.hpp"
#include "tabula/memory/category.hpp"

namespace tabula {

/// @brief A snapshot of memory figures, for one session or summed over a device.
///
/// `current` counts bytes in live allocations (rounded to the pool's 64-byte granule);
/// `reserved` counts bytes held from the OS or driver, which includes cached free blocks.
/// `reserved - current` is what `release_cached_memory` could hand back at most.
struct MemoryInfo {
  Device device;
  std::size_t current = 0;   ///< bytes in live allocations
  std::size_t peak = 0;      ///< highest `current` since creation or `reset_peak_memory`
  std::size_t reserved = 0;  ///< bytes held from the OS/driver
  std::size_t limit = 0;     ///< the session's limit; 0 means none (summed over sessions)
  CategoryBytes by_category;       ///< `current`, split by category
  CategoryBytes peak_by_category;  ///< highest value of each category
  std::size_t allocations = 0;           ///< live allocations
  std::size_t upstream_allocations = 0;  ///< segments ever taken from the OS/driver
  std::size_t live_objects = 0;          ///< objects in the live-object registry

  /// A one-line human-readable summary: "current 12.0 MiB (weights 8.0 MiB, ...), peak ...".
  std::string str() const;
};

/// "0 B", "512 B", "1.5 KiB", "12.0 MiB", "3.25 GiB".
std::string format_bytes(std::size_t bytes);

}  // namespace tabula
