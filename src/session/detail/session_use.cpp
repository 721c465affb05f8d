#include "session/detail/session_use.hpp"

#include <algorithm>
#include <utility>
#include <vector>

#include "session/detail/session_core.hpp"
#include "session/detail/storage.hpp"

namespace tabula::detail {

namespace {

// The sessions this thread holds uses of, with their depth: a handful at most.
struct HeldUse {
  const SessionCore* core;
  int depth;
};
thread_local std::vector<HeldUse> held_uses;

std::vector<HeldUse>::iterator find_held(const SessionCore& core) {
  return std::find_if(held_uses.begin(), held_uses.end(),
                      [&](const HeldUse& use) { return use.core == &core; });
}

}  // namespace

SessionUse::SessionUse(SessionCore& core) : core_(core.shared_from_this()) {
  if (auto it = find_held(core); it != held_uses.end()) {
    ++it->depth;
    return;
  }
  held_uses.reserve(held_uses.size() + 1);  // so that the push below cannot throw once locked
  core.begin_use();
  held_uses.push_back({&core, 1});
}

SessionUse::~SessionUse() {
  auto it = find_held(*core_);
  if (--it->depth > 0) return;
  held_uses.erase(it);
  core_->end_use();
}

bool SessionUse::held_by_this_thread(const SessionCore& core) noexcept {
  return find_held(core) != held_uses.end();
}

void SessionUses::hold(SessionCore& core) { uses_.push_back(std::make_unique<SessionUse>(core)); }

void SessionUses::hold(const Tensor& tensor) {
  if (tensor.storage()) hold(tensor.storage()->owner());
}

}  // namespace tabula::detail
