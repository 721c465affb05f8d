#pragma once
/// @file
/// Making a session current for a block of code.

#include "tabula/session/session.hpp"

namespace tabula {

/// @brief While alive, makes `session` the current session of this thread: tensors, layers and
/// models created on this thread belong to it. Scopes nest; each thread has its own stack.
/// Must be destroyed on the thread that created it, in reverse order of creation.
class SessionScope {
 public:
  explicit SessionScope(Session& session);
  ~SessionScope();
  SessionScope(const SessionScope&) = delete;
  SessionScope& operator=(const SessionScope&) = delete;

 private:
  Session* previous_;
};

}  // namespace tabula
