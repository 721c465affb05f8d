#include "backend/cuda/cuda_staging.hpp"

#include <cstdint>
#include <iostream>
#include <mutex>

#include "memory/detail/align.hpp"
#include "session/detail/session_core.hpp"
#include "tabula/core/errors.hpp"
#include "tabula/memory/host_resource.hpp"

namespace tabula::detail {

namespace {

// Buffers grow in whole steps of this (a power of two), so that a batch size that varies a
// little does not re-register memory every step.
constexpr std::size_t kStagingStep = std::size_t{2} << 20;

// Says once per process that host batches go to the GPU unpinned, and why.
void warn_unpinned(cudaError_t error) {
  static std::once_flag once;
  std::call_once(once, [error] {
    std::cerr << "tabula: cudaHostRegister refused the staging buffer ("
              << cudaGetErrorString(error)
              << "); host batches are copied to the GPU from pageable memory, which is slower\n";
  });
}

}  // namespace

std::unique_ptr<DeviceContext> CudaStaging::make(SessionCore& session, Device device) {
  auto staging = std::unique_ptr<CudaStaging>(new CudaStaging(session, device));
  check_cuda(cudaSetDevice(device.index()), "cudaSetDevice");
  for (Buffer& buffer : staging->buffers_)
    check_cuda(cudaEventCreateWithFlags(&buffer.copied, cudaEventDisableTiming), "cudaEventCreate");
  return staging;
}

CudaStaging::~CudaStaging() {
  for (Buffer& buffer : buffers_) {
    free_buffer(buffer);
    if (buffer.copied != nullptr && cudaEventDestroy(buffer.copied) != cudaSuccess)
      (void)cudaGetLastError();
  }
}

void CudaStaging::free_buffer(Buffer& buffer) noexcept {
  // Errors cannot be thrown here; they are cleared, so that no later, unrelated check
  // reports them.
  if (buffer.pages != nullptr) {
    // The device may still be reading it.
    if (cudaEventSynchronize(buffer.copied) != cudaSuccess) (void)cudaGetLastError();
    if (buffer.registered && cudaHostUnregister(buffer.pages) != cudaSuccess)
      (void)cudaGetLastError();
  }
  buffer.registered = false;
  buffer.pages = nullptr;
  buffer.page_bytes = 0;
  buffer.storage.reset();
}

void CudaStaging::ensure(Buffer& buffer, std::size_t bytes) {
  check_cuda(cudaEventSynchronize(buffer.copied), "waiting for a staged copy");
  if (buffer.page_bytes >= bytes) return;
  free_buffer(buffer);
  // The whole pages inside the block are pinned, whatever its alignment in the pool: a page
  // more than asked for leaves at least `bytes` of them.
  const std::size_t page = HostResource::page_size();
  const std::size_t block = round_up(bytes + page, kStagingStep);
  std::shared_ptr<Storage> storage =
      session_.allocate(block, Device::cpu(), Category::data, "cuda_staging");
  const auto start = reinterpret_cast<std::uintptr_t>(storage->data());
  const std::uintptr_t first = round_up(start, page), end = (start + block) & ~(page - 1);
  auto* pages = reinterpret_cast<std::byte*>(first);
  const std::size_t page_bytes = end - first;
  // Portable: registered for every device, so unregistering works whichever is current. A
  // driver that cannot pin (some sandboxes) still copies correctly from pageable memory: the
  // copy then returns once the driver has taken the bytes, so the slot is as safe to reuse.
  const cudaError_t pinning = cudaHostRegister(pages, page_bytes, cudaHostRegisterPortable);
  if (pinning != cudaSuccess) {
    (void)cudaGetLastError();  // not sticky: clear it, so the next check does not report it
    // Only a driver that cannot pin is worked around; any other failure is a failure.
    if (pinning != cudaErrorNotSupported && pinning != cudaErrorNotPermitted &&
        pinning != cudaErrorMemoryAllocation)
      check_cuda(pinning, "cudaHostRegister (pinning the staging buffer)");
    warn_unpinned(pinning);
  }
  buffer.registered = pinning == cudaSuccess;
  buffer.storage = std::move(storage);
  buffer.pages = pages;
  buffer.page_bytes = page_bytes;
}

CudaStaging::Slot CudaStaging::next(std::size_t bytes) {
  const std::size_t index = next_;
  ensure(buffers_[index], bytes);
  next_ = (index + 1) % buffers_.size();
  return {buffers_[index].pages, index};
}

void CudaStaging::reserve(std::size_t bytes) {
  for (Buffer& buffer : buffers_) ensure(buffer, bytes);
}

void CudaStaging::upload(const Slot& slot, void* dst, std::size_t bytes, const Stream& stream) {
  Buffer& buffer = buffers_[slot.index];
  check_cuda(cudaMemcpyAsync(dst, slot.data, bytes, cudaMemcpyHostToDevice, stream.handle()),
             "cudaMemcpyAsync (staged upload)");
  check_cuda(cudaEventRecord(buffer.copied, stream.handle()), "cudaEventRecord");
}

}  // namespace tabula::detail
