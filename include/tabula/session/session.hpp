#pragma once
/// @file
/// Sessions: the owners of every byte tabula allocates.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tabula/core/device.hpp"
#include "tabula/memory/memory_info.hpp"
#include "tabula/memory/pool_resource.hpp"
#include "tabula/session/live_object.hpp"

namespace tabula {

namespace detail {
class SessionCore;
}

/// @brief Keyword arguments of `Session`. Keep the leading members in this order.
struct SessionOptions {
  Device device = Device::cpu();  ///< where tensors are created by default
  std::size_t memory_limit = 0;   ///< bytes the session may hold per device; 0 = no limit
  std::string name = "session";   ///< shown in messages and reports
  /// Seed of the session's random generator; unset: the seed of `set_seed`, else random.
  std::optional<std::uint64_t> seed = std::nullopt;
  PoolOptions pool = {};  ///< how the session's pools size their segments
  /// Wraps each device's pool in a resource of the caller's, through which every buffer of
  /// the session is then allocated and freed (the wrapper must pass both through to `pool`).
  /// Fault-injection tests fail chosen allocations with it; an embedding application can
  /// count with it. Empty: the pool itself.
  std::function<std::unique_ptr<MemoryResource>(MemoryResource& pool)> wrap_pool = {};
};

/// @brief Owns memory pools (one per device it touches), a registry of live objects, a name
/// uniquifier and a random generator.
///
/// `clear()` frees every buffer the session owns and gives its pools' segments back to the OS
/// or driver; handles created before that (tensors, later layers and models) become stale and
/// throw `SessionCleared` when used. The session itself stays usable: objects created after
/// `clear()` are fine. Destroying a session clears it.
///
/// Thread safety: different threads may use different sessions freely; one session may be
/// used from several threads at once (its registry and pools are locked). `clear()` waits for
/// the library operations in flight on the session (fit, predict, a tensor copy, ...) to end,
/// so another thread's next call throws `SessionCleared` and never reads freed memory; a clear
/// from inside such an operation (a fit callback) runs when that operation returns. Raw
/// pointers from `Tensor::data()` are the caller's to stop using before clearing.
///
/// On a CUDA device a session serves one thread: that thread's work is ordered on its own
/// stream, and the session's pool, cuBLAS workspace and reduction buffer are reused in that
/// order. Work on one session's GPU memory from a second thread is not supported (a block one
/// thread freed could reach the other while the first one's kernels still use it); give each
/// thread its own session, which also lets their work overlap on the GPU. Clearing from
/// another thread is fine: freeing device memory waits for the device.
class Session {
 public:
  explicit Session(SessionOptions options = {});
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const std::string& name() const noexcept;
  Device device() const noexcept;
  const SessionOptions& options() const noexcept;

  /// @brief Frees everything the session owns, returns its pools' memory upstream, resets
  /// its name counters. Outstanding handles become stale. Waits for operations of other
  /// threads on the session; from within one (a callback), takes effect when it returns.
  void clear() noexcept;
  /// Number of times `clear()` has run.
  std::size_t clear_count() const noexcept;

  /// Figures for the session's own device.
  MemoryInfo memory_info() const;
  /// Figures for one device this session may have touched (all zero if it never did).
  MemoryInfo memory_info(Device device) const;
  /// Every object that holds memory in this session, oldest first.
  std::vector<LiveObject> live_objects() const;
  /// Makes `peak` equal `current` on every device of this session.
  void reset_peak_memory() noexcept;
  /// Gives cached free segments back upstream, and on the host the pages under the free
  /// blocks of the segments kept for live tensors; returns the bytes of the segments given back.
  std::size_t release_cached_memory() noexcept;

  /// A Keras-style unique name for this session: "dense", "dense_1", ...
  std::string unique_name(std::string_view prefix);
  /// Restarts the session's random stream from `seed`.
  void set_seed(std::uint64_t seed);

  /// The shared state that handles keep alive; for tabula's own modules.
  detail::SessionCore& core() const noexcept { return *core_; }

 private:
  std::shared_ptr<detail::SessionCore> core_;
};

/// The session objects are created in on this thread: the innermost `SessionScope`'s, else
/// `default_session()`.
Session& current_session() noexcept;

/// The process-wide session used outside any `SessionScope`.
Session& default_session() noexcept;

/// Clears the current session (the scoped one, else the default one): Keras's
/// `clear_session()`, except that the memory really goes back.
void clear_session() noexcept;

/// Figures summed over every live session on `device`; `peak` is the device's own peak.
MemoryInfo memory_info(Device device);

/// Resets the peak of `device` and of every session on it.
void reset_peak_memory(Device device) noexcept;

/// Gives every session's cached free segments on `device` back (on the host, the pages under
/// the free blocks of the others too); returns the bytes of the segments.
std::size_t release_cached_memory(Device device) noexcept;

/// @brief One live session as `live_sessions()` lists it.
struct SessionSummary {
  std::string name;
  Device device;             ///< the session's own device
  MemoryInfo memory;         ///< its figures on that device
  std::size_t clear_count = 0;
};

/// Every session that has allocated and is not destroyed yet, oldest first (`tabula memory`).
std::vector<SessionSummary> live_sessions();

/// Seeds the current session's random generator and every session created later without a
/// seed of its own (Keras's `set_random_seed`).
void set_seed(std::uint64_t seed);

}  // namespace tabula
