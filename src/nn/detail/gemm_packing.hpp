#pragma once
// The packing buffer a layer reserves for its GEMMs.

#include <initializer_list>
#include <span>
#include <string>

#include "backend/detail/kernels.hpp"
#include "tabula/core/tensor.hpp"

namespace tabula::detail {

/// A session buffer ("<layer>/gemm_packing", category workspace) large enough for the packing
/// of the largest of `gemms` on the kernels of `weights`' device at the current thread count;
/// an empty tensor when none needs any. Layers reserve it with their batch buffers and lend it
/// to their GEMMs through `SessionScratch`, so a training step takes no memory once it has
/// begun. What the GEMMs need in the weights' session besides (a GPU's cuBLAS handle and
/// workspace, `Kernels::prepare`) is made now too. The extents must be those the GEMMs run
/// with: packing sizes need not grow with the extents.
/// @throws OutOfMemory
Tensor reserve_gemm_packing(const std::string& layer_name, const Tensor& weights,
                            std::span<const GemmExtents> gemms);
inline Tensor reserve_gemm_packing(const std::string& layer_name, const Tensor& weights,
                                   std::initializer_list<GemmExtents> gemms) {
  return reserve_gemm_packing(layer_name, weights, std::span(gemms.begin(), gemms.size()));
}

}  // namespace tabula::detail
