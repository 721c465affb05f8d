#include "nn/detail/shared_workspace.hpp"

#include "tabula/memory/category.hpp"

namespace tabula::detail {

void SharedWorkspace::need(std::size_t bytes) {
  if (bytes <= bytes_) return;
  bytes_ = bytes;
  if (allocated_) allocate();
}

void SharedWorkspace::allocate() {
  allocated_ = true;
  if (bytes_ == 0) return;
  buffer_ = Tensor();  // the old one goes back before the larger is asked for
  buffer_ = empty({static_cast<std::int64_t>((bytes_ + sizeof(float) - 1) / sizeof(float))},
                  {.category = Category::workspace, .name = name_});
}

}  // namespace tabula::detail
