#pragma once
// What a device's kernels keep per session: library handles (cuBLAS) and the memory they work
// in, which belong to the session like any buffer and go back when it is cleared.

#include <memory>

#include "tabula/core/device.hpp"

namespace tabula::detail {

class SessionCore;

/// One session's state for one device's kernels. Made by the session on the first kernel call
/// that asks for it (`Scratch::context`), destroyed when the session is cleared, before its
/// memory goes back: a handle is never shared between sessions and never outlives its session.
class DeviceContext {
 public:
  virtual ~DeviceContext() = default;
};

/// Makes the context of `device` for `session`; may allocate from the session (its buffers
/// are then listed and counted like any other). @throws OutOfMemory, Error.
using DeviceContextFactory = std::unique_ptr<DeviceContext> (*)(SessionCore& session,
                                                                Device device);

}  // namespace tabula::detail
