#pragma once
// cuBLAS, opened when a GPU first multiplies rather than when a program starts.

#include <cublas_v2.h>

namespace tabula::detail {

/// The cuBLAS functions tabula calls, from libcublas.so.<major> opened with dlopen on first
/// use. Linked, cuBLAS (with the libcublasLt it needs) would load into every process of a CUDA
/// build as it starts: about 150 MiB resident before main with CUDA 13, paid on the CPU too,
/// by every isolated trial and by every tool. Opened once and never closed (handles and their
/// kernels must outlive any session); thread-safe.
struct CublasLibrary {
  decltype(&cublasCreate_v2) create;
  decltype(&cublasDestroy_v2) destroy;
  decltype(&cublasSetStream_v2) set_stream;
  decltype(&cublasSetWorkspace_v2) set_workspace;
  decltype(&cublasSgemm_v2) sgemm;
  decltype(&cublasGetStatusName) status_name;
  decltype(&cublasGetStatusString) status_string;

  /// The library, opened on the first call (a failed open is tried again on the next one).
  /// @throws Error naming the file and the loader's message when it cannot be opened or lacks
  /// one of the functions.
  static const CublasLibrary& get();
};

}  // namespace tabula::detail
