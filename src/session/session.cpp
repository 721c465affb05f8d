#include "tabula/session/session.hpp"

#include <vector>

#include "session/detail/session_core.hpp"
#include "tabula/session/session_scope.hpp"

namespace tabula {

Session::Session(SessionOptions options)
    : core_(std::make_shared<detail::SessionCore>(std::move(options))) {
  core_->set_owner(this);
}

Session::~Session() {
  core_->clear();
  core_->set_owner(nullptr);
  core_->detach();
}

const std::string& Session::name() const noexcept { return core_->options().name; }
Device Session::device() const noexcept { return core_->options().device; }
const SessionOptions& Session::options() const noexcept { return core_->options(); }

void Session::clear() noexcept { core_->clear(); }
std::size_t Session::clear_count() const noexcept { return core_->clear_count(); }

MemoryInfo Session::memory_info() const { return core_->memory_info(device()); }
MemoryInfo Session::memory_info(Device device) const { return core_->memory_info(device); }
std::vector<LiveObject> Session::live_objects() const { return core_->live_objects(); }
void Session::reset_peak_memory() noexcept { core_->reset_peak_all(); }
std::size_t Session::release_cached_memory() noexcept { return core_->release_cached_all(); }

std::string Session::unique_name(std::string_view prefix) { return core_->unique_name(prefix); }
void Session::set_seed(std::uint64_t seed) { core_->set_seed(seed); }

// ---- current session --------------------------------------------------------------------

namespace {
thread_local Session* t_current = nullptr;
}

SessionScope::SessionScope(Session& session) : previous_(t_current) { t_current = &session; }
SessionScope::~SessionScope() { t_current = previous_; }

Session& default_session() noexcept {
  static Session session(SessionOptions{.name = "default"});
  return session;
}

Session& current_session() noexcept {
  return t_current != nullptr ? *t_current : default_session();
}

void clear_session() noexcept { current_session().clear(); }

// ---- device-wide figures ----------------------------------------------------------------

std::vector<SessionSummary> live_sessions() {
  std::vector<SessionSummary> out;
  for (const auto& core : detail::SessionList::instance().snapshot()) {
    const Device device = core->options().device;
    out.push_back({core->options().name, device, core->memory_info(device), core->clear_count()});
  }
  return out;
}

MemoryInfo memory_info(Device device) {
  MemoryInfo total;
  total.device = device;
  for (const auto& core : detail::SessionList::instance().snapshot()) {
    const MemoryInfo m = core->memory_info(device);
    total.current += m.current;
    total.reserved += m.reserved;
    total.by_category += m.by_category;
    total.peak_by_category += m.peak_by_category;
    total.allocations += m.allocations;
    total.upstream_allocations += m.upstream_allocations;
    total.live_objects += m.live_objects;
  }
  total.peak = detail::SessionList::instance().device_peak(device);
  return total;
}

void reset_peak_memory(Device device) noexcept {
  for (const auto& core : detail::SessionList::instance().snapshot()) core->reset_peak(device);
  detail::SessionList::instance().reset_device_peak(device);
}

std::size_t release_cached_memory(Device device) noexcept {
  std::size_t released = 0;
  for (const auto& core : detail::SessionList::instance().snapshot())
    released += core->release_cached(device);
  return released;
}

void set_seed(std::uint64_t seed) {
  detail::SessionList::instance().set_default_seed(seed);
  current_session().set_seed(seed);
}

}  // namespace tabula
