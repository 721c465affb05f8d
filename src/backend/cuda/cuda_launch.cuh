#pragma once
// Runs a body (kernel_bodies.hpp) for every index of a range on a stream: one grid-stride
// kernel for all of tabula's elementwise and per-row work. nvcc only.

#include <algorithm>
#include <span>

#include "backend/cuda/cuda_stream.hpp"
#include "backend/cuda/tensor_chunks.hpp"
#include "backend/detail/kernels.hpp"

namespace tabula::detail {

template <typename F>
__global__ void each_index_kernel(index_t n, F f) {
  const index_t stride = static_cast<index_t>(gridDim.x) * blockDim.x;
  for (index_t i = static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    f(i);
}

inline constexpr int kThreadsPerBlock = 256;
// Enough blocks to fill any current GPU many times over; the grid stride covers the rest.
inline constexpr index_t kMaxBlocks = index_t{1} << 16;

/// Queues f(i) for i in [0, n) on `stream`. @throws Error when the launch is refused.
template <typename F>
void for_each_index(const Stream& stream, index_t n, F f, const char* what) {
  if (n <= 0) return;
  const index_t blocks =
      std::min<index_t>((n + kThreadsPerBlock - 1) / kThreadsPerBlock, kMaxBlocks);
  each_index_kernel<<<static_cast<unsigned>(blocks), kThreadsPerBlock, 0, stream.handle()>>>(n, f);
  check_cuda(cudaGetLastError(), what);
}

template <typename F>
__global__ void each_chunk_kernel(TensorChunks list, F f) {
  list.run_chunk(blockIdx.x, threadIdx.x, blockDim.x, f);
}

/// Queues f(tensor, element) for every element of every tensor on `stream`, in one launch
/// per TensorChunks::kTensorsPerLaunch tensors. @throws Error when a launch is refused.
template <typename F>
void for_each_tensor_element(const Stream& stream, std::span<const UpdateTensor> tensors, F f,
                             const char* what) {
  TensorChunks list;
  const auto launch = [&] {
    if (list.count == 0) return;
    each_chunk_kernel<<<static_cast<unsigned>(list.chunks()), kThreadsPerBlock, 0,
                        stream.handle()>>>(list, f);
    check_cuda(cudaGetLastError(), what);
    list = TensorChunks();
  };
  for (const UpdateTensor& t : tensors) {
    if (t.n <= 0) continue;
    if (!list.add(t)) {
      launch();
      list.add(t);
    }
  }
  launch();
}

}  // namespace tabula::detail
