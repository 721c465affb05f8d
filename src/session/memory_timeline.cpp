#include "tabula/session/memory_timeline.hpp"

#include <algorithm>

#include "session/detail/session_core.hpp"
#include "tabula/core/errors.hpp"
#include "tabula/memory/process_memory.hpp"
#include "tabula/session/session.hpp"

namespace tabula {

namespace {

// Thinning doubles the clock's interval up to this: a timeline never goes blind for longer.
constexpr std::chrono::milliseconds kLongestInterval{60000};

MemoryTimelineOptions checked(MemoryTimelineOptions options) {
  TABULA_EXPECT(options.capacity >= 2, InvalidArgument, "MemoryTimeline capacity", ">= 2",
                options.capacity);
  TABULA_EXPECT(options.interval.count() > 0, InvalidArgument, "MemoryTimeline interval",
                "> 0 ms", options.interval.count() << " ms");
  return options;
}

}  // namespace

MemoryTimeline::MemoryTimeline(Session& session, MemoryTimelineOptions options)
    : session_(session.core().shared_from_this()),
      device_(session.device()),
      options_(checked(options)),
      origin_(std::chrono::steady_clock::now()),
      interval_(options_.interval) {}

MemoryTimeline::MemoryTimeline(Device device, MemoryTimelineOptions options)
    : device_(device),
      options_(checked(options)),
      origin_(std::chrono::steady_clock::now()),
      interval_(options_.interval) {}

MemoryTimeline::~MemoryTimeline() { stop(); }

void MemoryTimeline::start() {
  {
    std::lock_guard lock(mutex_);
    if (clock_.joinable()) return;
    stopping_ = false;
  }
  sample();
  std::lock_guard lock(mutex_);
  clock_ = std::thread([this] { run(); });
}

void MemoryTimeline::stop() noexcept {
  std::thread clock;
  {
    std::lock_guard lock(mutex_);
    if (!clock_.joinable()) return;
    stopping_ = true;
    clock = std::move(clock_);
  }
  wake_.notify_all();
  clock.join();
  try {
    sample();
  } catch (...) {
    // A last sample that cannot be taken (out of memory for the vector) is not worth a throw
    // from stop(); the samples taken so far stay.
  }
}

bool MemoryTimeline::running() const noexcept {
  std::lock_guard lock(mutex_);
  return clock_.joinable();
}

MemorySample MemoryTimeline::measure() const {
  const MemoryInfo info = session_ ? session_->memory_info(device_) : memory_info(device_);
  MemorySample s;
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - origin_).count();
  s.current = info.current;
  s.reserved = info.reserved;
  s.by_category = info.by_category;
  try {
    s.rss = process_memory().rss;
  } catch (const Error&) {
    s.rss = 0;  // no /proc: the library's figures are still worth keeping
  }
  return s;
}

void MemoryTimeline::append(const MemorySample& s) {
  std::lock_guard lock(mutex_);
  if (samples_.size() >= options_.capacity) {
    // Thin to every other sample, keeping the first and the newest, and sample half as often.
    std::vector<MemorySample> kept;
    kept.reserve(options_.capacity);
    for (std::size_t i = 0; i < samples_.size(); i += 2) kept.push_back(samples_[i]);
    if (samples_.size() % 2 == 0) kept.push_back(samples_.back());
    samples_ = std::move(kept);
    interval_ = std::min(interval_ * 2, kLongestInterval);
    ++thinned_;
  }
  samples_.push_back(s);
}

MemorySample MemoryTimeline::sample() {
  const MemorySample s = measure();
  append(s);
  return s;
}

void MemoryTimeline::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    if (wake_.wait_for(lock, interval_, [this] { return stopping_; })) break;
    lock.unlock();
    try {
      sample();
    } catch (...) {
      // Out of memory for one more sample: skip this tick rather than end the process.
    }
    lock.lock();
  }
}

std::vector<MemorySample> MemoryTimeline::samples() const {
  std::lock_guard lock(mutex_);
  return samples_;
}

std::chrono::milliseconds MemoryTimeline::interval() const {
  std::lock_guard lock(mutex_);
  return interval_;
}

std::size_t MemoryTimeline::thinned() const {
  std::lock_guard lock(mutex_);
  return thinned_;
}

}  // namespace tabula
