#pragma once
// What the benchmark programs say when `--device cuda` cannot run.

#include <string>

#include "tabula/config.hpp"
#include "tabula/core/device.hpp"

namespace tabula::bench {

/// Why `--device cuda` cannot run here, or "" when it can.
inline std::string cuda_unusable() {
#if TABULA_WITH_CUDA
  return cuda_device_count() > 0 ? "" : "no CUDA device present (the driver reports none)";
#else
  return "this build of tabula has no CUDA (configure with -DTABULA_WITH_CUDA=ON)";
#endif
}

}  // namespace tabula::bench
