#pragma once
// Fault injection for the memory system: make the k-th allocation of a session fail.

#include <atomic>
#include <cstddef>
#include <memory>

#include "tabula/memory/memory_resource.hpp"
#include "tabula/session/session.hpp"

namespace tabula::testing {

/// @brief A plan shared by a test and the adaptors it installs in sessions: counts every
/// buffer allocation and, once armed, refuses allocation number `fail_from()` and every one
/// after it, as memory that has run out stays out (a single refusal would be hidden by the
/// session's release-and-retry, which is right for the library and useless for the test).
/// Thread-safe (atomics).
class AllocationFaults {
 public:
  /// Allocations counted so far (successful or refused).
  std::size_t count() const noexcept { return count_.load(); }
  /// Allocations refused so far.
  std::size_t refused() const noexcept { return refused_.load(); }
  /// Refuse the `k`-th allocation counted from now (k >= 1) and every later one.
  void fail_from_next(std::size_t k) noexcept { fail_from_.store(count_.load() + k); }
  /// Stop refusing.
  void disarm() noexcept { fail_from_.store(0); }

  /// Options whose sessions allocate through this plan (on top of `base`).
  SessionOptions session_options(SessionOptions base = {});

  /// Counts one allocation; true when it must be refused.
  bool should_refuse() noexcept;

 private:
  std::atomic<std::size_t> count_{0};
  std::atomic<std::size_t> fail_from_{0};  // 0: never
  std::atomic<std::size_t> refused_{0};
};

/// @brief Passes allocations through to `upstream` except those `faults` refuses, which
/// throw `OutOfMemory` as an exhausted device would.
class FaultInjectingResource final : public MemoryResource {
 public:
  FaultInjectingResource(MemoryResource& upstream, AllocationFaults& faults) noexcept;

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override;
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) noexcept override;
  void do_discard(void* p, std::size_t bytes) noexcept override { upstream_.discard(p, bytes); }

  MemoryResource& upstream_;
  AllocationFaults& faults_;
};

}  // namespace tabula::testing
