#include "backend/cuda/cublas_library.hpp"

#include <dlfcn.h>

#include <string>

#include "backend/cuda/process_exit.hpp"
#include "tabula/core/errors.hpp"

namespace tabula::detail {

namespace {

#define TABULA_CUBLAS_STRING(x) #x
#define TABULA_CUBLAS_SONAME(major) "libcublas.so." TABULA_CUBLAS_STRING(major)
// The file of the cuBLAS this build was compiled against (its major version's soname).
constexpr char kFile[] = TABULA_CUBLAS_SONAME(CUBLAS_VER_MAJOR);

// Where the loader looks (LD_LIBRARY_PATH, the program's run path, its cache), else in the
// folder the build found cuBLAS in (TABULA_CUBLAS_DIR): a toolkit whose cuBLAS is not beside
// cudart, nor known to the loader. Null with the loader's messages in `why` when neither opens.
void* open_file(std::string& why) {
  if (void* library = dlopen(kFile, RTLD_NOW | RTLD_LOCAL)) return library;
  const char* first = dlerror();
  why = first ? first : "not found";
#ifdef TABULA_CUBLAS_DIR
  const std::string beside_build = std::string(TABULA_CUBLAS_DIR) + "/" + kFile;
  if (void* library = dlopen(beside_build.c_str(), RTLD_NOW | RTLD_LOCAL)) return library;
  const char* second = dlerror();
  why += std::string("; ") + (second ? second : beside_build + ": not found");
#endif
  return nullptr;
}

// The function `name` of `library` into `function`; false, with dlerror's message in `why`, if
// it has none.
template <typename Function>
bool resolve(void* library, const char* name, Function& function, std::string& why) {
  (void)dlerror();  // clears an earlier error, so that the one read below is dlsym's
  function = reinterpret_cast<Function>(dlsym(library, name));
  if (function) return true;
  const char* error = dlerror();
  why = std::string(name) + ": " + (error ? error : "a null symbol");
  return false;
}

CublasLibrary open_cublas() {
  std::string why;
  void* library = open_file(why);
  if (!library)
    TABULA_THROW(Error, "cannot open cuBLAS (" << kFile << "), which CUDA GEMMs need: " << why
                                               << "; is its folder on LD_LIBRARY_PATH?");
  CublasLibrary cublas{};
  if (resolve(library, "cublasCreate_v2", cublas.create, why) &&
      resolve(library, "cublasDestroy_v2", cublas.destroy, why) &&
      resolve(library, "cublasSetStream_v2", cublas.set_stream, why) &&
      resolve(library, "cublasSetWorkspace_v2", cublas.set_workspace, why) &&
      resolve(library, "cublasSgemm_v2", cublas.sgemm, why) &&
      resolve(library, "cublasGetStatusName", cublas.status_name, why) &&
      resolve(library, "cublasGetStatusString", cublas.status_string, why)) {
    watch_exit_after(ExitPoint::cublas_opened);  // cuBLAS's static objects exist from now
    return cublas;
  }
  dlclose(library);
  TABULA_THROW(Error, kFile << " lacks a function tabula calls (" << why << "): older than the "
                            << "cuBLAS " << CUBLAS_VER_MAJOR << "." << CUBLAS_VER_MINOR
                            << " tabula was built with?");
}

}  // namespace

const CublasLibrary& CublasLibrary::get() {
  static const CublasLibrary cublas = open_cublas();  // a throw leaves it to the next call
  return cublas;
}

}  // namespace tabula::detail
