#include "session/detail/session_scratch.hpp"

#include "session/detail/session_core.hpp"
#include "session/detail/storage.hpp"
#include "tabula/core/errors.hpp"

namespace tabula::detail {

namespace {

SessionCore& core_of(const Tensor& tensor) {
  TABULA_EXPECT(tensor.storage() != nullptr, InvalidArgument,
                "tensor whose session gives a kernel scratch", "a tensor with a buffer",
                "an empty tensor");
  return tensor.storage()->owner();
}

}  // namespace

SessionScratch::SessionScratch(SessionCore& core, Device device)
    : use_(core), core_(core), device_(device) {}

SessionScratch::SessionScratch(const Tensor& owner, const Tensor& reserved)
    : SessionScratch(core_of(owner), owner.device()) {
  owner.storage()->check_live();  // after the use is held: a clear that won shows here
  if (reserved.defined() && reserved.device() == device_) {
    reserved_ = reserved.raw_data();
    reserved_bytes_ = reserved.nbytes();
  }
}

void* SessionScratch::acquire(std::size_t bytes) {
  if (reserved_ != nullptr && bytes <= reserved_bytes_ && !lent_.exchange(true)) return reserved_;
  return core_.allocate_scratch(bytes, device_);
}

void SessionScratch::release(void* data, std::size_t bytes) noexcept {
  if (data != nullptr && data == reserved_) {
    lent_.store(false);
    return;
  }
  core_.release_scratch(data, bytes, device_);
}

DeviceContext& SessionScratch::context(DeviceContextFactory make) {
  return core_.device_context(device_, make);
}

}  // namespace tabula::detail
