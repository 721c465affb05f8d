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

/// One acquired buffer of floats (none for zero floats), released when it goes out of scope.
/// Not copyable.
class ScratchFloats {
 public:
  ScratchFloats(Scratch& scratch, std::size_t floats)
      : scratch_(scratch),
        bytes_(floats * sizeof(float)),
        data_(floats == 0 ? nullptr : static_cast<float*>(scratch.acquire(bytes_))) {}
  ~ScratchFloats() {
    if (data_ != nullptr) scratch_.release(data_, bytes_);
  }
  ScratchFloats(const ScratchFloats&) = delete;
  ScratchFloats& operator=(const ScratchFloats&) = delete;

  float* data() const noexcept { return data_; }

 private:
  Scratch& scratch_;
  std::size_t bytes_;
  float* data_;
};

}  // namespace tabula::detail
