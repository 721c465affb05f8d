#include "session/detail/storage.hpp"

#include "session/detail/session_core.hpp"
#include "tabula/core/errors.hpp"
#include "tabula/memory/memory_info.hpp"

namespace tabula::detail {

Storage::Storage(std::shared_ptr<SessionCore> owner, void* data, std::size_t bytes,
                 Device device, Category category, std::string name) noexcept
    : owner_(std::move(owner)),
      data_(data),
      bytes_(bytes),
      device_(device),
      category_(category),
      name_(std::move(name)) {}

Storage::~Storage() { owner_->release(*this); }

void Storage::check_live() const {
  if (stale()) {
    TABULA_THROW(SessionCleared, "tensor '" << name_ << "' (" << name_of(category_) << ", "
                                            << format_bytes(bytes_) << " on " << device_.str()
                                            << ") belongs to session '"
                                            << owner_->options().name
                                            << "', which was cleared; its memory is gone. "
                                               "Create the tensor again after clearing");
  }
}

void* Storage::data() const {
  void* data = data_.load(std::memory_order_acquire);
  if (data == nullptr) check_live();  // stale: throws (a zero-byte buffer is never null)
  return data;
}

LiveObject Storage::describe() const {
  return LiveObject{name_, "tensor", category_, bytes_, handles.load(std::memory_order_relaxed),
                    device_};
}

void Storage::invalidate() noexcept {
  owner_->release_locked(*this);
}

}  // namespace tabula::detail
