#include "nn/detail/shared_workspace.hpp"

#include "tabula/memory/category.hpp"

namespace tabula::detail {

bool SharedWorkspace::need(std::size_t bytes) noexcept {
  if (bytes <= bytes_) return true;
  if (allocated_) return false;
  bytes_ = bytes;
  return true;
}

void SharedWorkspace::allocate() {
  if (allocated_ || bytes_ == 0) {
    allocated_ = true;
    return;
  }
  buffer_ = empty({static_cast<std::int64_t>((bytes_ + sizeof(float) - 1) / sizeof(float))},
                  {.category = Category::workspace, .name = name_});
  allocated_ = true;  // only now: a refused buffer leaves the workspace to be allocated again
}

}  // namespace tabula::detail
