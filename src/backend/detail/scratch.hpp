#pragma once
// Scratch memory a kernel borrows for the length of one call (a GEMM's packing buffers), and
// the per-session state of the device it runs on.

#include <cstddef>

#include "backend/detail/device_context.hpp"

namespace tabula::detail {

/// Where a kernel's scratch comes from. Kernels never allocate on their own: the caller names
/// the owner (a session, `SessionScratch`), so every scratch byte is counted there (category
/// workspace) and nothing outlives the call. Implementations are thread-safe: the parts of one
/// kernel call acquire from several threads.
class Scratch {
 public:
  virtual ~Scratch() = default;
  /// `bytes` aligned to 64 bytes, the caller's until `release`. @throws OutOfMemory.
  virtual void* acquire(std::size_t bytes) = 0;
  virtual void release(void* data, std::size_t bytes) noexcept = 0;
  /// The owner's context for the scratch's device, made with `make` on first use and kept
  /// until the owner is cleared (a GPU GEMM's library handle). @throws what `make` throws.
  virtual DeviceContext& context(DeviceContextFactory make) = 0;
};

/// One acquired block of `bytes` (none for zero bytes), released when it goes out of scope.
/// Not copyable.
class ScratchBlock {
 public:
  ScratchBlock(Scratch& scratch, std::size_t bytes)
      : scratch_(scratch), bytes_(bytes), data_(bytes == 0 ? nullptr : scratch.acquire(bytes)) {}
  ~ScratchBlock() {
    if (data_ != nullptr) scratch_.release(data_, bytes_);
  }
  ScratchBlock(const ScratchBlock&) = delete;
  ScratchBlock& operator=(const ScratchBlock&) = delete;

  void* data() const noexcept { return data_; }

 private:
  Scratch& scratch_;
  std::size_t bytes_;
  void* data_;
};

/// One acquired buffer of `floats` floats (none for zero), released when it goes out of scope.
class ScratchFloats {
 public:
  ScratchFloats(Scratch& scratch, std::size_t floats) : block_(scratch, floats * sizeof(float)) {}

  float* data() const noexcept { return static_cast<float*>(block_.data()); }

 private:
  ScratchBlock block_;
};

}  // namespace tabula::detail
