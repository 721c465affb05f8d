#pragma once
// A whole LSTM sequence in one launch: what one thread block runs for a few samples, as plain
// functions of (thread, threads, barrier). The recurrence couples the timesteps of a sample but
// never two samples, so blocks that split the batch need nothing from each other, and the
// per-step gemm and step kernel of the default path (RecurrentKernels::lstm_forward_sequence)
// become two phases between block barriers. For LSTM(64) at batch 64 that is one launch instead
// of 2 per step, 100 for 50 steps, each of which would cost more than its step's arithmetic.
//
// The CUDA kernels (cuda_recurrent_kernels.cu) run these with threadIdx.x, blockDim.x and
// __syncthreads(); the tests run them on host threads that meet at a std::barrier, against the
// CPU's default path. The elementwise phase is the step kernels' own body (kernel_bodies.hpp).
//
// Visibility: a phase reads what other threads of the block wrote in the phase before it, in
// global memory; the barrier between them makes those writes visible to the whole block. No
// buffer written during the launch is read through the read-only cache.

#include "backend/cuda/kernel_bodies.hpp"
#include "backend/detail/recurrent_kernels.hpp"

namespace tabula::detail::bodies {

/// The most samples one block runs: the recurrent product keeps one sum per sample in registers.
inline constexpr index_t kMaxSequenceRows = 8;

/// gates_t[b, j] += sum_k h_{t-1}[b, k] * recurrent[k, j] for the block's samples
/// [b0, b0 + rows): column j of step t's recurrent product, each weight read once for all rows.
TABULA_HD inline void add_recurrent_column(index_t j, const LstmSequence& s, index_t t, index_t b0,
                                           index_t rows) {
  const index_t U = s.step.units, G = 4 * U;
  const float* h = s.h_at(t - 1) + b0 * s.h_ld_at(t - 1);
  const index_t h_ld = s.h_ld_at(t - 1);
  float sum[kMaxSequenceRows] = {};
  for (index_t k = 0; k < U; ++k) {
    const float w = s.recurrent[k * G + j];
    for (index_t r = 0; r < kMaxSequenceRows; ++r)
      if (r < rows) sum[r] += h[r * h_ld + k] * w;
  }
  float* gates = s.gates_at(t) + b0 * s.step.gates_ld + j;
  for (index_t r = 0; r < kMaxSequenceRows; ++r)
    if (r < rows) gates[r * s.step.gates_ld] += sum[r];
}

/// dh[b, k] = sum_j dgates_t[b, j] * recurrent[k, j] for element i = (b, k): dL/dh_{t-1}.
/// Reads the recurrent kernel transposed, (4U, U), so that the threads of consecutive k read
/// consecutive weights. One sum per gate, added at the end: four chains of U multiply-adds
/// instead of one of 4U, which is the critical path of a backward step.
TABULA_HD inline void recurrent_gradient(index_t i, const LstmSequence& s, const float* recurrent_t,
                                         index_t t) {
  const index_t U = s.step.units, b = i / U, k = i % U;
  const float* dgates = s.gates_at(t) + b * s.step.gates_ld;
  const float* w = recurrent_t + k;
  float sum[4] = {};
#if defined(__CUDA_ARCH__)
#pragma unroll 2  // more in flight spills at the 64 registers of a 1024-thread block
#endif
  for (index_t j = 0; j < U; ++j)
    for (index_t gate = 0; gate < 4; ++gate)
      sum[gate] += dgates[gate * U + j] * w[(gate * U + j) * U];
  s.dh[b * U + k] = (sum[0] + sum[1]) + (sum[2] + sum[3]);
}

/// The forward recurrence (RecurrentKernels::lstm_forward_sequence) of samples
/// [b0, b0 + rows), rows <= kMaxSequenceRows, as thread `thread` of `threads` runs it;
/// `barrier()` waits for every thread of the block.
template <typename Barrier>
TABULA_HD void lstm_forward_block(const LstmSequence& s, index_t b0, index_t rows, index_t thread,
                                  index_t threads, Barrier barrier) {
  const index_t U = s.step.units, G = 4 * U;
  LstmStep step = s.step;
  for (index_t t = 0; t < s.timesteps; ++t) {
    if (t > 0) {  // h_{-1} = 0 adds nothing
      for (index_t j = thread; j < G; j += threads) add_recurrent_column(j, s, t, b0, rows);
      barrier();  // every pre-activation of step t is in
    }
    step.h_ld = s.h_ld_at(t);
    const float* c_prev = t > 0 ? s.cell_at(t - 1) : nullptr;
    for (index_t i = thread; i < rows * U; i += threads)
      lstm_forward(b0 * U + i, step, s.gates_at(t), c_prev, s.cell_at(t), s.h_at(t));
    barrier();  // h_t is in, for step t + 1
  }
}

/// The backward recurrence (RecurrentKernels::lstm_backward_sequence) of samples
/// [b0, b0 + rows), as thread `thread` of `threads` runs it (see lstm_forward_block), with
/// `recurrent_t` the recurrent kernel transposed (Kernels::transpose).
template <typename Barrier>
TABULA_HD void lstm_backward_block(const LstmSequence& s, const float* recurrent_t, index_t b0,
                                   index_t rows, index_t thread, index_t threads, Barrier barrier) {
  const index_t T = s.timesteps, U = s.step.units;
  for (index_t t = T; t-- > 0;) {
    const float* c_prev = t > 0 ? s.cell_at(t - 1) : nullptr;
    for (index_t i = thread; i < rows * U; i += threads)
      lstm_backward(b0 * U + i, s.step, s.gates_at(t), c_prev, s.cell_at(t),
                    t == T - 1 ? nullptr : s.dh, s.dy_at(t), s.dc);
    if (t == 0) break;  // h_{-1} = 0: no earlier state
    barrier();          // step t's gate gradients are in; dh has been read
    for (index_t i = thread; i < rows * U; i += threads)
      recurrent_gradient(b0 * U + i, s, recurrent_t, t);
    // dL/dh_{t-1} is in, for step t - 1. Both phases give element i to the same thread, so
    // today each thread reads only what it wrote; the barrier keeps that from mattering.
    barrier();
  }
}

}  // namespace tabula::detail::bodies
