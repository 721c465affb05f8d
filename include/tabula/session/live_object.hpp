#pragma once
/// @file
/// A row of a session's live-object registry.

#include <cstddef>
#include <string>

#include "tabula/core/device.hpp"
#include "tabula/memory/category.hpp"

namespace tabula {

/// @brief One object a session holds memory for: what `Session::live_objects()` lists and what
/// an `OutOfMemory` message names as the largest holders.
struct LiveObject {
  std::string name;   ///< unique within the session: "tensor_3", "dense_1/kernel"
  std::string kind;   ///< "tensor", ...
  Category category = Category::other;
  std::size_t bytes = 0;  ///< bytes the object holds in the pool
  long handles = 0;       ///< handles that still refer to it (user code and models)
  Device device;
};

}  // namespace tabula
