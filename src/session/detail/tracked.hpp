#pragma once
// Something a session's registry lists and invalidates on clear.

#include "tabula/session/live_object.hpp"

namespace tabula::detail {

class SessionCore;

/// An object registered with a session. The registry is an intrusive list in creation order;
/// all of its links are guarded by the owning session's lock.
class Tracked {
 public:
  virtual ~Tracked() = default;

  /// A row for `live_objects()`. Called with the session's lock held.
  virtual LiveObject describe() const = 0;
  /// Gives back whatever the object holds and makes later use of it throw `SessionCleared`.
  /// Called by `SessionCore::clear` with the session's lock held.
  virtual void invalidate() noexcept = 0;

 private:
  friend class SessionCore;
  Tracked* registry_prev_ = nullptr;
  Tracked* registry_next_ = nullptr;
};

}  // namespace tabula::detail
