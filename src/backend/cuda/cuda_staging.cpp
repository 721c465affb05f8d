#include "backend/cuda/cuda_staging.hpp"

#include "session/detail/session_core.hpp"
#include "tabula/core/errors.hpp"

namespace tabula::detail {

namespace {

// A staging buffer is large enough for a segment of its own in the host pool, and whole
// multiples of it: no other block shares its pages, which the driver locks.
constexpr std::size_t kStagingGranule = std::size_t{2} << 20;

std::size_t staging_size(std::size_t bytes) {
  return (bytes + kStagingGranule - 1) / kStagingGranule * kStagingGranule;
}

}  // namespace

std::unique_ptr<DeviceContext> CudaStaging::make(SessionCore& session, Device device) {
  auto staging = std::unique_ptr<CudaStaging>(new CudaStaging(session, device));
  check_cuda(cudaSetDevice(device.index()), "cudaSetDevice");
  for (Slot& slot : staging->slots_)
    check_cuda(cudaEventCreateWithFlags(&slot.copied, cudaEventDisableTiming), "cudaEventCreate");
  return staging;
}

CudaStaging::~CudaStaging() {
  for (Slot& slot : slots_) {
    free_buffer(slot);
    if (slot.copied != nullptr) cudaEventDestroy(slot.copied);
  }
}

void CudaStaging::free_buffer(Slot& slot) noexcept {
  if (!slot.buffer) return;
  cudaEventSynchronize(slot.copied);  // the driver may still be reading it
  cudaHostUnregister(slot.buffer->data());
  slot.buffer.reset();
}

std::byte* CudaStaging::host_buffer(std::size_t bytes) {
  Slot& slot = slots_[next_];
  next_ = (next_ + 1) % slots_.size();
  check_cuda(cudaEventSynchronize(slot.copied), "waiting for a staged copy");
  if (!slot.buffer || slot.buffer->nbytes() < bytes) {
    free_buffer(slot);
    std::shared_ptr<Storage> buffer =
        session_.allocate(staging_size(bytes), Device::cpu(), Category::data, "cuda_staging");
    check_cuda(cudaHostRegister(buffer->data(), buffer->nbytes(), cudaHostRegisterDefault),
               "cudaHostRegister (pinning the staging buffer)");
    slot.buffer = std::move(buffer);
  }
  return static_cast<std::byte*>(slot.buffer->data());
}

void CudaStaging::upload(void* dst, std::size_t bytes, const Stream& stream) {
  // host_buffer advanced past the slot it handed out.
  Slot& slot = slots_[(next_ + slots_.size() - 1) % slots_.size()];
  check_cuda(
      cudaMemcpyAsync(dst, slot.buffer->data(), bytes, cudaMemcpyHostToDevice, stream.handle()),
      "cudaMemcpyAsync (staged upload)");
  check_cuda(cudaEventRecord(slot.copied, stream.handle()), "cudaEventRecord");
}

std::int64_t* CudaStaging::device_indices(std::size_t count) {
  const std::size_t bytes = count * sizeof(std::int64_t);
  if (!indices_ || indices_->nbytes() < bytes) {
    indices_.reset();
    indices_ = session_.allocate(bytes, device_, Category::workspace, "cuda_gather_indices");
  }
  return static_cast<std::int64_t*>(indices_->data());
}

}  // namespace tabula::detail
