#include "backend/cuda/cublas_library.hpp"

#include <dlfcn.h>

#include <string>

#include "tabula/core/errors.hpp"

namespace tabula::detail {

namespace {

// The file of the cuBLAS this build was compiled against (its major version's soname), found
// where the dynamic loader looks: LD_LIBRARY_PATH, the program's run path, the loader's cache.
const std::string kFile = "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR);

template <typename Function>
void resolve(void* library, const char* name, Function& function) {
  (void)dlerror();  // clears an earlier error, so that the one read below is dlsym's
  function = reinterpret_cast<Function>(dlsym(library, name));
  if (function) return;
  const char* why = dlerror();
  TABULA_THROW(Error, kFile << " has no " << name << " (" << (why ? why : "a null symbol")
                            << "): older than the cuBLAS " << CUBLAS_VER_MAJOR << "."
                            << CUBLAS_VER_MINOR << " tabula was built with?");
}

CublasLibrary open_cublas() {
  void* library = dlopen(kFile.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!library) {
    const char* why = dlerror();
    TABULA_THROW(Error, "cannot open cuBLAS (" << kFile << "), which CUDA GEMMs need: "
                                               << (why ? why : "unknown reason")
                                               << "; is its folder on LD_LIBRARY_PATH?");
  }
  CublasLibrary cublas{};
  resolve(library, "cublasCreate_v2", cublas.create);
  resolve(library, "cublasDestroy_v2", cublas.destroy);
  resolve(library, "cublasSetStream_v2", cublas.set_stream);
  resolve(library, "cublasSetWorkspace_v2", cublas.set_workspace);
  resolve(library, "cublasSgemm_v2", cublas.sgemm);
  resolve(library, "cublasGetStatusName", cublas.status_name);
  resolve(library, "cublasGetStatusString", cublas.status_string);
  return cublas;
}

}  // namespace

const CublasLibrary& CublasLibrary::get() {
  static const CublasLibrary cublas = open_cublas();  // a throw leaves it to the next call
  return cublas;
}

}  // namespace tabula::detail
