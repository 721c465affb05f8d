// At exit, objects made before a watched point (a GPU library's late load) learn that the
// process is exiting, and those made after it, destroyed while the library still stands, do
// not. Each case runs in a fresh process (a death test), whose exit status is the verdict.

#include <gtest/gtest.h>

#include <cstdlib>

#include "tabula/config.hpp"

#if TABULA_WITH_CUDA
#include "backend/cuda/process_exit.hpp"
#endif

namespace tabula {
namespace {

TEST(ProcessExit, IsSeenAtExitByObjectsMadeBeforeAWatchedPointOnly) {
#if !TABULA_WITH_CUDA
  GTEST_SKIP() << "skipped: this build of tabula has no CUDA";
#else
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        static bool after_saw_exiting = true;
        struct MadeBefore {
          ~MadeBefore() { std::_Exit(after_saw_exiting ? 4 : detail::process_exiting() ? 0 : 3); }
        };
        struct MadeAfter {
          ~MadeAfter() { after_saw_exiting = detail::process_exiting(); }
        };
        static MadeBefore made_before;
        detail::watch_exit_after(detail::ExitPoint::cudnn_handle_made);
        detail::watch_exit_after(detail::ExitPoint::cudnn_handle_made);  // once is enough
        static MadeAfter made_after;
        if (detail::process_exiting()) std::_Exit(2);  // too early
        std::exit(1);  // made_before's destructor decides the status
      },
      ::testing::ExitedWithCode(0), "")
      << "3: false for the object made before; 4: true for the one made after; 2: true before "
         "exit; 1: made_before not destroyed";
#endif
}

}  // namespace
}  // namespace tabula
