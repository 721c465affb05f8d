#pragma once
// Keeps a session from being cleared while a library operation works on its buffers.

#include <memory>
#include <vector>

#include "tabula/core/tensor.hpp"

namespace tabula::detail {

class SessionCore;

/// @brief Held by every library operation that reads or writes a session's buffers (fit,
/// predict, get_weights, a tensor copy, ...): `clear()` waits until no operation holds one,
/// so a buffer is never freed under a kernel. Acquire it before checking that handles are
/// live: a clear that won the race then shows as `SessionCleared`, never as freed memory.
///
/// Re-entrant per thread (fit inside a callback of fit is fine). A thread that clears a
/// session while it holds a use of it (a callback calling `clear_session()`) cannot wait for
/// itself: the clear then runs when that thread's outermost use of the session ends.
/// Thread-safe; not movable (a scope guard).
class SessionUse {
 public:
  explicit SessionUse(SessionCore& core);
  ~SessionUse();
  SessionUse(const SessionUse&) = delete;
  SessionUse& operator=(const SessionUse&) = delete;

  /// True when the calling thread holds a use of `core`.
  static bool held_by_this_thread(const SessionCore& core) noexcept;

 private:
  std::shared_ptr<SessionCore> core_;  // alive until the use ends
};

/// @brief Uses of every session one operation touches (a model's, its data's). Movable.
class SessionUses {
 public:
  SessionUses() = default;
  void hold(SessionCore& core);
  /// Holds the session of `tensor`'s buffer; nothing for an empty handle.
  void hold(const Tensor& tensor);

 private:
  std::vector<std::unique_ptr<SessionUse>> uses_;
};

}  // namespace tabula::detail
