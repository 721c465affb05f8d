#pragma once
// The LSTM's recurrence on a CUDA device: a whole sequence in one launch for up to
// kMaxSequenceUnits units (lstm_sequence_bodies.hpp), else a gemm and a step kernel (one thread
// per (sample, unit)) per timestep.

#include "backend/detail/recurrent_kernels.hpp"

namespace tabula::detail {

/// One per device, only read after construction: a call shares nothing with other calls but
/// what it is given (the sequence's buffers and workspace, the Kernels and Scratch of its
/// session, with their one-thread-per-session rule).
class CudaRecurrentKernels final : public RecurrentKernels {
 public:
  /// @throws Error when the device's multiprocessors cannot be counted.
  explicit CudaRecurrentKernels(Device device);

  void lstm_forward_step(const LstmStep& s, float* gates, const float* c_prev, float* c,
                         float* h) override;
  void lstm_backward_step(const LstmStep& s, float* gates, const float* c_prev, const float* c,
                          const float* dh, const float* dy, float* dc) override;
  /// The recurrent kernel transposed, for one-launch backward sequences: 16 * units^2 bytes up
  /// to kMaxSequenceUnits, else 0.
  std::size_t lstm_workspace_bytes(index_t units) const override;
  /// False: the one launch reads every step's projection, formed by one cuBLAS gemm (the
  /// gates of every step are kept at inference too, pending a GPU measurement of the other).
  bool lstm_projects_input_per_step(index_t units) const override {
    (void)units;
    return false;
  }
  void lstm_forward_sequence(Kernels& k, Scratch& scratch, const LstmSequence& s) override;
  void lstm_backward_sequence(Kernels& k, Scratch& scratch, const LstmSequence& s) override;

  /// Up to this many units a sequence runs in one launch. Beyond it the per-step gemms are large
  /// enough to fill the device, and every block of the one launch would read the recurrent
  /// kernel (64 KiB at 64 units, 256 KiB at 128) from L2 at every step.
  static constexpr index_t kMaxSequenceUnits = 128;

 private:
  Device device_;
  int processors_;  // multiprocessors, which the one-launch sequences spread their blocks over
};

/// The recurrent kernels of CUDA device `device`. @throws Error when it is not present.
RecurrentKernels& cuda_recurrent_kernels_for(Device device);

}  // namespace tabula::detail
