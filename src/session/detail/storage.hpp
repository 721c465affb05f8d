#pragma once
// A buffer in a session's pool: what tensors point at.

#include <atomic>
#include <cstddef>
#include <memory>
#include <string>
#include <utility>

#include "session/detail/tracked.hpp"
#include "tabula/core/device.hpp"
#include "tabula/memory/category.hpp"

namespace tabula::detail {

/// One allocation of a session, registered in its live-object registry. Tensors share it
/// through `shared_ptr`; `handles` counts the `Tensor` objects that refer to it. It keeps the
/// session's core alive, so it can outlive the `Session` object safely: once the session is
/// cleared it holds no memory and `data()` throws `SessionCleared`. Thread-safe.
class Storage final : public Tracked {
 public:
  Storage(std::shared_ptr<SessionCore> owner, void* data, std::size_t bytes, Device device,
          Category category, std::string name) noexcept;
  ~Storage() override;
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  /// The buffer. @throws SessionCleared when the session was cleared.
  void* data() const;
  bool stale() const noexcept { return stale_.load(std::memory_order_acquire); }
  /// Throws `SessionCleared` naming this buffer when it is stale.
  void check_live() const;

  std::size_t nbytes() const noexcept { return bytes_; }
  Device device() const noexcept { return device_; }
  Category category() const noexcept { return category_; }
  const std::string& name() const noexcept { return name_; }
  SessionCore& owner() const noexcept { return *owner_; }

  std::atomic<long> handles{0};

  /// Marks the storage stale and hands its buffer to the caller (the session, which frees it).
  /// Called with the session's lock held.
  void* take_data() noexcept {
    stale_.store(true, std::memory_order_release);
    return data_.exchange(nullptr, std::memory_order_acq_rel);
  }

  LiveObject describe() const override;
  void invalidate() noexcept override;

 private:
  std::shared_ptr<SessionCore> owner_;
  // Atomic: a stale handle read on one thread while another clears is a clean
  // SessionCleared, not a data race (library operations also hold a SessionUse).
  std::atomic<void*> data_;
  std::size_t bytes_;
  Device device_;
  Category category_;
  std::string name_;
  std::atomic<bool> stale_{false};
};

}  // namespace tabula::detail
