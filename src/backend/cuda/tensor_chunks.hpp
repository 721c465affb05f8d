#pragma once
// Many tensors' elementwise work in one launch: each tensor is cut into chunks of
// kChunkElements, every block of the grid takes one chunk, and the list of tensors travels in
// the kernel's parameters (at most kTensorsPerLaunch, 1.5 KiB of the 4 KiB parameters may
// hold). The optimizer updates of a model's parameters are then one launch per 32 tensors, not
// one each.
//
// Plain host/device code: the tests check the chunk-to-tensor mapping on the host.

#include "backend/detail/host_device.hpp"
#include "backend/detail/kernels.hpp"

namespace tabula::detail {

struct TensorChunks {
  static constexpr int kTensorsPerLaunch = 32;
  static constexpr index_t kChunkElements = 4096;

  UpdateTensor tensors[kTensorsPerLaunch];
  index_t first_chunk[kTensorsPerLaunch + 1] = {0};  ///< tensor i's chunks: [first[i], first[i+1])
  int count = 0;

  /// Adds `t` (n > 0) unless the list is full. @return false when full.
  bool add(const UpdateTensor& t) {
    if (count == kTensorsPerLaunch) return false;
    tensors[count] = t;
    first_chunk[count + 1] = first_chunk[count] + (t.n + kChunkElements - 1) / kChunkElements;
    ++count;
    return true;
  }
  TABULA_HD index_t chunks() const { return first_chunk[count]; }

  /// The tensor that chunk `chunk` (< chunks()) belongs to.
  TABULA_HD int tensor_of(index_t chunk) const {
    int i = 0;
    while (chunk >= first_chunk[i + 1]) ++i;
    return i;
  }
  /// Runs f(tensor, element) for every element of chunk `chunk` that thread `thread` of
  /// `threads` takes.
  template <typename F>
  TABULA_HD void run_chunk(index_t chunk, index_t thread, index_t threads, F& f) const {
    const int i = tensor_of(chunk);
    const UpdateTensor& t = tensors[i];
    const index_t begin = (chunk - first_chunk[i]) * kChunkElements;
    const index_t end = begin + kChunkElements < t.n ? begin + kChunkElements : t.n;
    for (index_t e = begin + thread; e < end; e += threads) f(t, e);
  }
};

}  // namespace tabula::detail
