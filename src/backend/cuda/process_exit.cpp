#include "backend/cuda/process_exit.hpp"

#include <atomic>
#include <cstdlib>

namespace tabula::detail {

namespace {

std::atomic<bool> exit_begun{false};
std::atomic<bool> watched[static_cast<int>(ExitPoint::count_)];

void mark_exit_begun() { exit_begun.store(true); }

}  // namespace

void watch_exit_after(ExitPoint point) noexcept {
  std::atomic<bool>& once = watched[static_cast<int>(point)];
  if (once.load(std::memory_order_relaxed) || once.exchange(true)) return;
  // Registered after the library's own static objects were made: runs before they are
  // destroyed, and before everything made earlier. A failed registration (no room for hooks)
  // leaves exiting() false, as before the point.
  (void)std::atexit(mark_exit_begun);
}

bool process_exiting() noexcept { return exit_begun.load(); }

}  // namespace tabula::detail
