// A session's kernel contexts (library handles, staging buffers): one per device and factory,
// made on first use, destroyed when the session is cleared — the latest first, each before the
// memory it holds goes back.

#include "backend/detail/device_context.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "session/detail/session_core.hpp"
#include "tabula/tabula.hpp"

namespace tabula::detail {
namespace {

std::vector<std::string>& destroyed() {
  static std::vector<std::string> names;
  return names;
}

// A context that holds a buffer of the session, as a staging context does.
class BufferContext final : public DeviceContext {
 public:
  BufferContext(SessionCore& session, std::string name)
      : name_(std::move(name)),
        buffer_(session.allocate(4096, Device::cpu(), Category::workspace, name_)) {}
  ~BufferContext() override {
    // Still the session's while the context goes: the buffer is live here.
    destroyed().push_back(name_ + (buffer_->stale() ? " after its buffer" : " with its buffer"));
  }

 private:
  std::string name_;
  std::shared_ptr<Storage> buffer_;
};

std::unique_ptr<DeviceContext> make_first(SessionCore& s, Device) {
  return std::make_unique<BufferContext>(s, "first");
}
std::unique_ptr<DeviceContext> make_second(SessionCore& s, Device) {
  return std::make_unique<BufferContext>(s, "second");
}

TEST(DeviceContexts, AreOnePerDeviceAndFactoryAndGoLatestFirstWhenTheSessionIsCleared) {
  destroyed().clear();
  Session session({.name = "contexts"});
  SessionCore& core = session.core();
  DeviceContext& first = core.device_context(Device::cpu(), &make_first);
  DeviceContext& second = core.device_context(Device::cpu(), &make_second);
  EXPECT_NE(&first, &second);
  EXPECT_EQ(&core.device_context(Device::cpu(), &make_first), &first);
  EXPECT_EQ(&core.device_context(Device::cpu(), &make_second), &second);
  EXPECT_EQ(session.memory_info(Device::cpu()).by_category[Category::workspace], 2 * 4096u);

  session.clear();
  EXPECT_EQ(destroyed(),
            (std::vector<std::string>{"second with its buffer", "first with its buffer"}));
  EXPECT_EQ(session.memory_info(Device::cpu()).reserved, 0u);
  // Made again on first use after the clear.
  destroyed().clear();
  core.device_context(Device::cpu(), &make_first);
  EXPECT_TRUE(destroyed().empty());
}

}  // namespace
}  // namespace tabula::detail
