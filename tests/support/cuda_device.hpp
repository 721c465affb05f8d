#pragma once
// Skips a test, saying why, where no CUDA device can run it.

#include <gtest/gtest.h>

#include "tabula/config.hpp"
#include "tabula/core/device.hpp"

/// GTEST_SKIP()s the calling test unless CUDA device 0 is usable by this build.
#define TABULA_REQUIRE_CUDA_DEVICE()                                                    \
  do {                                                                                  \
    if (!TABULA_WITH_CUDA) GTEST_SKIP() << "skipped: this build of tabula has no CUDA"; \
    if (::tabula::cuda_device_count() == 0)                                             \
      GTEST_SKIP() << "skipped: no CUDA device present (the driver reports none)";      \
  } while (false)
