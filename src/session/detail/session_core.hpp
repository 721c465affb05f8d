#pragma once
// The state of a session, shared by the Session object and every handle it gave out.

#include <atomic>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "backend/detail/device_context.hpp"
#include "session/detail/storage.hpp"
#include "session/detail/tracked.hpp"
#include "tabula/memory/host_resource.hpp"
#include "tabula/memory/limit_adaptor.hpp"
#include "tabula/memory/memory_info.hpp"
#include "tabula/memory/pool_resource.hpp"
#include "tabula/memory/stats_adaptor.hpp"
#include "tabula/session/name_uniquifier.hpp"
#include "tabula/session/random_generator.hpp"
#include "tabula/session/session.hpp"

namespace tabula::detail {

/// Owns a session's pools, registry, names and random generator. Handles hold it through
/// `shared_ptr`, so it outlives the `Session` object until the last stale handle is gone.
/// Thread-safe: one mutex guards the registry, counters, names and generator; each pool has
/// its own lock inside. Lock order: use lock (see `SessionUse`), contexts lock, a context's
/// own lock (a cuBLAS handle's, a staging buffer's), session lock, pool lock; the global session
/// list is never held while taking a session lock.
class SessionCore : public std::enable_shared_from_this<SessionCore> {
 public:
  explicit SessionCore(SessionOptions options);
  ~SessionCore();

  const SessionOptions& options() const noexcept { return options_; }

  /// Allocates `bytes` on `device`, registers the buffer under a unique name made from
  /// `name_prefix`. @throws OutOfMemory with the session's breakdown.
  std::shared_ptr<Storage> allocate(std::size_t bytes, Device device, Category category,
                                    std::string_view name_prefix);
  /// Kernel scratch (see `SessionScratch`): `bytes` from the device's pool, counted as
  /// workspace until `release_scratch`, not registered as an object (it lives for one kernel
  /// call, under a `SessionUse`). @throws OutOfMemory with the session's breakdown.
  void* allocate_scratch(std::size_t bytes, Device device);
  void release_scratch(void* data, std::size_t bytes, Device device) noexcept;
  /// The session's kernel context for `device` made by `make` (see `DeviceContext`; one per
  /// device and factory: a library handle, a staging buffer), made with `make` on
  /// first use; destroyed by `clear`. @throws what `make` throws (nothing is kept then).
  DeviceContext& device_context(Device device, DeviceContextFactory make);
  /// Returns a live storage's bytes; called from `~Storage`.
  void release(Storage& storage) noexcept;
  /// Returns a storage's bytes with the lock already held (from `clear`).
  void release_locked(Storage& storage) noexcept;

  /// Adds or removes a non-buffer object (a layer, a model) to the registry.
  void track(Tracked& object);
  void untrack(Tracked& object) noexcept;

  /// Waits for every `SessionUse` of other threads to end, then frees everything. From a
  /// thread that holds a use itself, the clear is deferred to the end of that use.
  void clear() noexcept;
  std::size_t clear_count() const noexcept;

  /// For `SessionUse`: operations in flight hold the use lock shared; clearing takes it
  /// exclusively. `end_use` runs a clear deferred meanwhile.
  void begin_use() { use_mutex_.lock_shared(); }
  void end_use() noexcept;
  /// Removes the session from the device-wide figures (the `Session` object is gone).
  void detach() noexcept;
  /// The `Session` object this is the state of; null once it is gone. Set by Session.
  Session* owner() const noexcept { return owner_.load(std::memory_order_acquire); }
  void set_owner(Session* owner) noexcept { owner_.store(owner, std::memory_order_release); }

  MemoryInfo memory_info(Device device) const;
  std::vector<LiveObject> live_objects() const;
  void reset_peak(Device device) noexcept;
  void reset_peak_all() noexcept;
  std::size_t release_cached(Device device) noexcept;
  std::size_t release_cached_all() noexcept;

  std::string unique_name(std::string_view prefix);
  void set_seed(std::uint64_t seed);
  /// Runs `f(RandomGenerator&)` under the session's lock.
  template <typename F>
  auto with_rng(F&& f) {
    std::lock_guard lock(mutex_);
    return f(rng_);
  }

 private:
  // The resource stack of one device: [the options' wrapper ->] pool -> limit -> stats ->
  // host or CUDA memory. Buffers come from and go back to `front()`.
  struct DevicePool {
    DevicePool(Device device, const SessionOptions& options);
    MemoryResource& front() noexcept { return wrapper ? *wrapper : pool; }
    std::unique_ptr<MemoryResource> base;
    StatsAdaptor stats;
    LimitAdaptor limit;
    PoolResource pool;
    std::unique_ptr<MemoryResource> wrapper;  // from SessionOptions::wrap_pool, or none
    CategoryBytes current;
    CategoryBytes peak_by_category;
    std::size_t peak = 0;
  };

  DevicePool& pool_for(Device device);
  // From the device's pool, asking other sessions for their cached segments once when it is
  // out of memory; may drop and retake `lock` meanwhile.
  void* allocate_locked(std::unique_lock<std::mutex>& lock, DevicePool& dp, std::size_t bytes,
                        Device device, Category category, std::string_view name);
  void count_locked(DevicePool& dp, Device device, Category category, std::size_t bytes) noexcept;
  void uncount_locked(DevicePool& dp, Device device, Category category, std::size_t bytes) noexcept;
  DevicePool* find_pool(Device device) const noexcept;
  void register_locked(Tracked& object) noexcept;
  void unregister_locked(Tracked& object) noexcept;
  std::string out_of_memory_message(std::size_t bytes, Device device, Category category,
                                    std::string_view name, const std::string& cause) const;

  void clear_now() noexcept;

  SessionOptions options_;
  // Taken before mutex_: a context is made (and may allocate) under it.
  std::mutex contexts_mutex_;
  struct ContextEntry {
    Device device;
    DeviceContextFactory make;
    std::unique_ptr<DeviceContext> context;
  };
  std::vector<ContextEntry> contexts_;  // a handful: searched in order
  std::shared_mutex use_mutex_;  // taken before mutex_, never after it
  std::atomic<bool> clear_deferred_{false};
  mutable std::mutex mutex_;
  std::map<Device, std::unique_ptr<DevicePool>> pools_;
  Tracked* registry_head_ = nullptr;
  Tracked* registry_tail_ = nullptr;
  std::size_t registry_size_ = 0;
  NameUniquifier names_;
  RandomGenerator rng_;
  std::size_t clear_count_ = 0;
  bool attached_ = false;
  std::atomic<Session*> owner_{nullptr};
};

/// Every live session, for device-wide figures. The list holds weak references and is never
/// locked while a session lock is being taken.
class SessionList {
 public:
  static SessionList& instance() noexcept;
  void add(const std::shared_ptr<SessionCore>& core);
  void remove(const SessionCore* core) noexcept;
  /// The live sessions, as strong references taken under the list's lock.
  std::vector<std::shared_ptr<SessionCore>> snapshot() const;

  /// Creates the device's ledger (called when a session first touches the device), so that
  /// the noexcept updates below never allocate.
  void ensure_ledger(Device device);
  /// Device-wide current and peak, updated by every session's allocations.
  void add_bytes(Device device, std::size_t bytes) noexcept;
  void sub_bytes(Device device, std::size_t bytes) noexcept;
  std::size_t device_peak(Device device) const noexcept;
  void reset_device_peak(Device device) noexcept;

  /// The seed `set_seed` asked for, for sessions created later without their own.
  std::optional<std::uint64_t> default_seed() const;
  void set_default_seed(std::uint64_t seed);

 private:
  struct Ledger {
    std::size_t current = 0;
    std::size_t peak = 0;
  };
  mutable std::mutex mutex_;
  std::vector<std::weak_ptr<SessionCore>> sessions_;
  std::map<Device, Ledger> ledgers_;
  std::optional<std::uint64_t> default_seed_;
};

}  // namespace tabula::detail
