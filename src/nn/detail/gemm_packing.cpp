#include "nn/detail/gemm_packing.hpp"

#include <algorithm>

#include "session/detail/session_scratch.hpp"

namespace tabula::detail {

Tensor reserve_gemm_packing(const std::string& layer_name, const Tensor& weights,
                            std::span<const GemmExtents> gemms) {
  Kernels& kernels = kernels_for(weights.device());
  {
    SessionScratch scratch(weights);  // the session the layer's GEMMs take scratch from
    kernels.prepare(scratch);
  }
  std::size_t bytes = 0;
  for (const GemmExtents& g : gemms)
    bytes = std::max(bytes, kernels.gemm_scratch_bytes(g.m, g.n, g.k));
  if (bytes == 0) return Tensor();
  const auto floats = static_cast<std::int64_t>((bytes + sizeof(float) - 1) / sizeof(float));
  return empty({floats}, {.category = Category::workspace, .name = layer_name + "/gemm_packing"});
}

}  // namespace tabula::detail
