#pragma once
// One workspace the layers of a model share, since they run one after another.

#include <cstddef>
#include <string>

#include "tabula/core/tensor.hpp"

namespace tabula::detail {

/// The workspace an execution plan lends its layers for their passes: each layer says at
/// reserve what it needs (`need`), the plan then allocates the largest need once (`allocate`:
/// category workspace, in the current session), and each pass of a layer uses that buffer
/// (`data`). Layers run one at a time, so one buffer serves them all instead of one each. Not
/// thread-safe.
class SharedWorkspace {
 public:
  explicit SharedWorkspace(std::string name) : name_(std::move(name)) {}
  SharedWorkspace(const SharedWorkspace&) = delete;
  SharedWorkspace& operator=(const SharedWorkspace&) = delete;

  /// Makes the workspace at least `bytes` before it is allocated; true when it then holds them.
  /// Once allocated it does not grow (a layer lent it may be running): false for a larger
  /// need, and the layer keeps a workspace of its own.
  bool need(std::size_t bytes) noexcept;
  /// Allocates the largest need so far (nothing when there is none), once.
  /// @throws OutOfMemory
  void allocate();
  /// Gives the buffer back and forgets every need.
  void release() noexcept {
    buffer_ = Tensor();
    bytes_ = 0;
    allocated_ = false;
  }
  /// The buffer: null before allocate(), or when no layer needs one.
  void* data() const noexcept { return buffer_.defined() ? buffer_.raw_data() : nullptr; }
  std::size_t bytes() const noexcept { return bytes_; }

 private:
  std::string name_;
  std::size_t bytes_ = 0;
  bool allocated_ = false;
  Tensor buffer_;
};

}  // namespace tabula::detail
