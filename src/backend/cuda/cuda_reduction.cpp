#include "backend/cuda/cuda_reduction.hpp"

#include "session/detail/session_core.hpp"

namespace tabula::detail {

std::unique_ptr<DeviceContext> CudaReduction::make(SessionCore& session, Device device) {
  std::shared_ptr<Storage> buffer =
      session.allocate(static_cast<std::size_t>(kFloats) * sizeof(float), device,
                       Category::workspace, "cuda_reduction");
  return std::unique_ptr<DeviceContext>(new CudaReduction(std::move(buffer)));
}

}  // namespace tabula::detail
