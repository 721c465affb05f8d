#pragma once
/// @file
/// A bounded record of memory figures over time: the library's, by category, and the OS's.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "tabula/core/device.hpp"
#include "tabula/memory/category.hpp"

namespace tabula {

class Session;
namespace detail {
class SessionCore;
}

/// @brief One point of a `MemoryTimeline`.
struct MemorySample {
  double seconds = 0.0;       ///< since the timeline was made
  std::size_t current = 0;    ///< library bytes in live allocations
  std::size_t reserved = 0;   ///< library bytes held from the OS/driver
  CategoryBytes by_category;  ///< `current`, split by category
  std::size_t rss = 0;        ///< the process's resident set size (host memory, from the OS)
};

/// @brief Keyword arguments of `MemoryTimeline`.
struct MemoryTimelineOptions {
  /// How often the clock samples; doubled each time the timeline is thinned (up to 60 s).
  std::chrono::milliseconds interval{20};
  /// Most samples kept, >= 2. When full, every other sample is dropped (the first and the
  /// newest stay), so the whole span stays covered at half the resolution.
  std::size_t capacity = 4096;
};

/// @brief Records the memory of one session, or of every session on a device, on a clock
/// (a thread of its own between `start` and `stop`) and at explicit `sample()` calls.
///
/// A session-recording timeline keeps the session's state alive (not its memory): recording
/// across `clear()` shows the figures going to zero. Thread-safe: `sample`, `samples` and
/// `stop` may be called from any thread. The destructor stops the clock.
class MemoryTimeline {
 public:
  /// Records `session` (its own device). @throws InvalidArgument for a capacity < 2.
  explicit MemoryTimeline(Session& session, MemoryTimelineOptions options = {});
  /// Records the sum over every session on `device`.
  explicit MemoryTimeline(Device device, MemoryTimelineOptions options = {});
  ~MemoryTimeline();
  MemoryTimeline(const MemoryTimeline&) = delete;
  MemoryTimeline& operator=(const MemoryTimeline&) = delete;

  /// Starts sampling on the clock (no-op when running). Takes a sample at once.
  void start();
  /// Stops the clock after a last sample (no-op when stopped).
  void stop() noexcept;
  bool running() const noexcept;

  /// Takes one sample now, clock or not. Returns it.
  MemorySample sample();
  /// The samples so far, oldest first.
  std::vector<MemorySample> samples() const;
  /// The clock's interval now (it grows when the timeline is thinned).
  std::chrono::milliseconds interval() const;
  /// Times the timeline was thinned to stay within its capacity.
  std::size_t thinned() const;

 private:
  MemorySample measure() const;
  void append(const MemorySample& s);
  void run();

  std::shared_ptr<detail::SessionCore> session_;  // null: the whole device
  Device device_;
  MemoryTimelineOptions options_;
  std::chrono::steady_clock::time_point origin_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<MemorySample> samples_;
  std::chrono::milliseconds interval_;
  std::size_t thinned_ = 0;
  bool stopping_ = false;
  std::thread clock_;
};

}  // namespace tabula
