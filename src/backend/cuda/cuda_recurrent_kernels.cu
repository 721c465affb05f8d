#include <algorithm>

#include "backend/cuda/cuda_launch.cuh"
#include "backend/cuda/cuda_recurrent_kernels.hpp"
#include "backend/cuda/kernel_bodies.hpp"
#include "backend/cuda/lstm_sequence_bodies.hpp"
#include "backend/cuda/per_device.hpp"

namespace tabula::detail {

RecurrentKernels& cuda_recurrent_kernels_for(Device device) {
  return per_device<CudaRecurrentKernels>(device, "CUDA recurrent kernels");
}

namespace {

void check_gates(const LstmStep& s) {
  const auto gate_function = [](Activation f) {
    return f == Activation::tanh || f == Activation::sigmoid;
  };
  TABULA_EXPECT(gate_function(s.activation), InvalidArgument, "LSTM kernel activation",
                "tanh or sigmoid", name_of(s.activation));
  TABULA_EXPECT(gate_function(s.recurrent_activation), InvalidArgument,
                "LSTM kernel recurrent_activation", "tanh or sigmoid",
                name_of(s.recurrent_activation));
}

struct BlockBarrier {
  __device__ void operator()() const { __syncthreads(); }
};

// One block per bodies::kMaxSequenceRows samples or fewer (see sequence_launch).
__global__ void __launch_bounds__(1024)
    lstm_forward_sequence_kernel(LstmSequence s, index_t rows_per_block) {
  const index_t b0 = static_cast<index_t>(blockIdx.x) * rows_per_block;
  const index_t rows = s.step.batch - b0 < rows_per_block ? s.step.batch - b0 : rows_per_block;
  bodies::lstm_forward_block(s, b0, rows, threadIdx.x, blockDim.x, BlockBarrier{});
}

__global__ void __launch_bounds__(1024)
    lstm_backward_sequence_kernel(LstmSequence s, index_t rows_per_block) {
  const index_t b0 = static_cast<index_t>(blockIdx.x) * rows_per_block;
  const index_t rows = s.step.batch - b0 < rows_per_block ? s.step.batch - b0 : rows_per_block;
  bodies::lstm_backward_block(s, s.workspace, b0, rows, threadIdx.x, blockDim.x, BlockBarrier{});
}

struct SequenceLaunch {
  index_t rows_per_block;
  unsigned blocks;
  unsigned threads;
};

// As few samples per block as fill the device once (each block then reads the recurrent kernel
// for fewer samples, but more blocks run at once), and threads enough for the wider phase: a
// thread per gate column, or per (sample, unit).
SequenceLaunch sequence_launch(int processors, const LstmSequence& s) {
  const index_t batch = s.step.batch, U = s.step.units;
  const index_t rows = std::clamp<index_t>((batch + processors - 1) / std::max(processors, 1), 1,
                                           bodies::kMaxSequenceRows);
  const index_t widest = std::max(4 * U, rows * U);
  const index_t threads = std::clamp<index_t>((widest + 31) / 32 * 32, 32, 1024);
  return {rows, static_cast<unsigned>((batch + rows - 1) / rows), static_cast<unsigned>(threads)};
}

bool runs_in_one_launch(index_t units) { return units <= CudaRecurrentKernels::kMaxSequenceUnits; }

int multiprocessors(Device device) {
  int processors = 0;
  check_cuda(cudaDeviceGetAttribute(&processors, cudaDevAttrMultiProcessorCount, device.index()),
             "cudaDeviceGetAttribute(multiprocessors)");
  return processors;
}

}  // namespace

CudaRecurrentKernels::CudaRecurrentKernels(Device device)
    : device_(device), processors_(multiprocessors(device)) {}

std::size_t CudaRecurrentKernels::lstm_workspace_bytes(index_t units) const {
  return runs_in_one_launch(units) ? static_cast<std::size_t>(4 * units * units) * sizeof(float)
                                   : 0;
}

void CudaRecurrentKernels::lstm_forward_sequence(Kernels& k, Scratch& scratch,
                                                 const LstmSequence& s) {
  if (!runs_in_one_launch(s.step.units) || s.input != nullptr)  // the latter: not asked for
    return RecurrentKernels::lstm_forward_sequence(k, scratch, s);
  check_gates(s.step);
  if (s.step.batch <= 0 || s.timesteps <= 0) return;
  const Stream stream = Stream::for_device(device_);
  const SequenceLaunch launch = sequence_launch(processors_, s);
  lstm_forward_sequence_kernel<<<launch.blocks, launch.threads, 0, stream.handle()>>>(
      s, launch.rows_per_block);
  check_cuda(cudaGetLastError(), "lstm_forward_sequence");
}

void CudaRecurrentKernels::lstm_backward_sequence(Kernels& k, Scratch& scratch,
                                                  const LstmSequence& s) {
  if (!runs_in_one_launch(s.step.units))
    return RecurrentKernels::lstm_backward_sequence(k, scratch, s);
  check_gates(s.step);
  TABULA_EXPECT(s.workspace != nullptr, InvalidArgument, "LSTM backward sequence workspace",
                lstm_workspace_bytes(s.step.units) << " bytes (lstm_workspace_bytes)", "none");
  if (s.step.batch <= 0 || s.timesteps <= 0) return;
  const Stream stream = Stream::for_device(device_);
  k.transpose(s.recurrent, s.step.units, 4 * s.step.units, s.workspace);
  const SequenceLaunch launch = sequence_launch(processors_, s);
  lstm_backward_sequence_kernel<<<launch.blocks, launch.threads, 0, stream.handle()>>>(
      s, launch.rows_per_block);
  check_cuda(cudaGetLastError(), "lstm_backward_sequence");
}

void CudaRecurrentKernels::lstm_forward_step(const LstmStep& s, float* gates, const float* c_prev,
                                             float* c, float* h) {
  check_gates(s);
  const LstmStep step = s;
  for_each_index(
      Stream::for_device(device_), s.batch * s.units,
      [=] __device__(index_t i) { bodies::lstm_forward(i, step, gates, c_prev, c, h); },
      "lstm_forward_step");
}

void CudaRecurrentKernels::lstm_backward_step(const LstmStep& s, float* gates, const float* c_prev,
                                              const float* c, const float* dh, const float* dy,
                                              float* dc) {
  check_gates(s);
  const LstmStep step = s;
  for_each_index(
      Stream::for_device(device_), s.batch * s.units,
      [=] __device__(index_t i) { bodies::lstm_backward(i, step, gates, c_prev, c, dh, dy, dc); },
      "lstm_backward_step");
}

}  // namespace tabula::detail
