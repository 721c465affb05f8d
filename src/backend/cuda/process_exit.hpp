#pragma once
// Knowing, in a destructor that runs at exit, that a GPU library may be torn down already.
//
// exit() destroys static objects and runs atexit hooks in the reverse order of their making. A
// library loaded late (cuBLAS opened on first use, cuDNN's sub-libraries loaded by its first
// calls) is therefore torn down before the objects made earlier: the default session, a session
// at namespace scope. Handing their handles back to it then is the exit-time crash PyTorch and
// RMM avoid by leaving them to the process's end, when the driver frees everything anyway.

namespace tabula::detail {

/// The moments after which a library's static objects may exist that exit() would destroy
/// before the objects made earlier.
enum class ExitPoint {
  cublas_opened,
  cudnn_handle_made,
  cudnn_convolution_planned,
  cudnn_forward_run,
  cudnn_backward_run,
  count_
};

/// At the first call for `point`, registers a hook that exit() runs before destroying any
/// object made until then: from then on process_exiting() is true for those objects'
/// destructors. Later calls for the same point do nothing (one hook per point and process).
void watch_exit_after(ExitPoint point) noexcept;

/// True once exit() has begun, as far as the objects made before the last watched point can
/// tell: they then leave their GPU handles to the process's end.
bool process_exiting() noexcept;

}  // namespace tabula::detail
