// cuBLAS is loaded when a GPU first multiplies, not when a program of a CUDA build starts:
// libcublasLt alone makes a process ~150 MiB resident as it loads, which every CPU-only
// process and every isolated trial would pay.

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "tabula/config.hpp"
#include "tabula/tabula.hpp"

#if TABULA_WITH_CUDA
#include "backend/cuda/cublas_library.hpp"
#include "backend/cuda/process_exit.hpp"
#endif

namespace tabula {
namespace {

// Whether the calling process has a library whose file name starts with `name` mapped.
bool maps_library(const std::string& name) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line))
    if (line.find("/" + name) != std::string::npos) return true;
  return false;
}

TEST(CublasLibrary, IsNotLoadedByAProgramThatHasNotMultipliedOnAGpu) {
  // A fresh process (the test program run again for this test alone), so that no test before
  // this one can have loaded cuBLAS; it starts, trains a small model on the CPU, and looks.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        Session session({.name = "cpu-only"});
        SessionScope scope(session);
        Sequential model({layers::Input({8}), layers::Dense(4, "relu"), layers::Dense(2)});
        model.compile(optimizers::SGD(0.1), "mse");
        (void)model.fit(ones({16, 8}), ones({16, 2}), {.epochs = 1, .batch_size = 8, .verbose = 0});
        std::exit(maps_library("libcublas") ? 1 : 0);
      },
      ::testing::ExitedWithCode(0), "")
      << "libcublas is mapped into a process that never used a GPU";
}

// No GPU needed: opening the library and finding its functions is the loader's work.
TEST(CublasLibrary, OpensTheCublasThisBuildWasCompiledAgainstOnFirstUse) {
#if !TABULA_WITH_CUDA
  GTEST_SKIP() << "skipped: this build of tabula has no CUDA";
#else
  const detail::CublasLibrary& cublas = detail::CublasLibrary::get();
  EXPECT_NE(cublas.create, nullptr);
  EXPECT_NE(cublas.sgemm, nullptr);
  EXPECT_NE(cublas.status_name, nullptr);
  EXPECT_STREQ(cublas.status_name(CUBLAS_STATUS_NOT_INITIALIZED), "CUBLAS_STATUS_NOT_INITIALIZED");
  EXPECT_EQ(&detail::CublasLibrary::get(), &cublas) << "opened twice";
  EXPECT_TRUE(maps_library("libcublas"));
#endif
}

// An object made before cuBLAS was opened (the default session, one at namespace scope) is
// destroyed at exit after cuBLAS's own teardown; by then process_exiting() must say so, for its
// handles not to be handed back to a library that is gone.
TEST(CublasLibrary, SaysItIsExitingToObjectsMadeBeforeItWasOpened) {
#if !TABULA_WITH_CUDA
  GTEST_SKIP() << "skipped: this build of tabula has no CUDA";
#else
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        struct MadeBefore {
          ~MadeBefore() { std::_Exit(detail::process_exiting() ? 0 : 3); }
        };
        static MadeBefore made_before;
        if (detail::process_exiting()) std::_Exit(2);  // too early
        (void)detail::CublasLibrary::get();
        std::exit(1);  // made_before's destructor decides the status
      },
      ::testing::ExitedWithCode(0), "")
      << "status 3: process_exiting() was false at exit; 2: true before; 1: made_before not "
         "destroyed";
#endif
}

}  // namespace
}  // namespace tabula
