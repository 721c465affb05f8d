# FindOpenBLAS
# ------------
# Finds OpenBLAS with its CBLAS interface (cblas.h) and defines the imported target
# OpenBLAS::OpenBLAS. Sets OpenBLAS_FOUND, OpenBLAS_INCLUDE_DIR, OpenBLAS_LIBRARY,
# OpenBLAS_VERSION.
#
# Debian installs OpenBLAS under a flavour directory (openblas-pthread, openblas-openmp, ...)
# and ships an OpenBLASConfig.cmake that only sets variables; this module uses that when it is
# there, then pkg-config, then a plain search, so the header and library found belong together.
# Used by the benchmarks only (the reference GEMM); the library itself does not link OpenBLAS.

include(FindPackageHandleStandardArgs)

if(NOT OpenBLAS_INCLUDE_DIR OR NOT OpenBLAS_LIBRARY)
  find_package(OpenBLAS CONFIG QUIET)  # Debian: OpenBLAS_INCLUDE_DIRS / OpenBLAS_LIBRARIES
  find_package(PkgConfig QUIET)
  if(PkgConfig_FOUND)
    pkg_check_modules(PC_OpenBLAS QUIET openblas)
  endif()
endif()

find_path(OpenBLAS_INCLUDE_DIR
  NAMES cblas.h
  HINTS ${OpenBLAS_INCLUDE_DIRS} ${PC_OpenBLAS_INCLUDEDIR} ${PC_OpenBLAS_INCLUDE_DIRS}
  PATH_SUFFIXES openblas-pthread openblas-openmp openblas-serial openblas)

set(_openblas_library_dirs "")
foreach(_lib IN LISTS OpenBLAS_LIBRARIES)
  get_filename_component(_dir "${_lib}" DIRECTORY)
  list(APPEND _openblas_library_dirs "${_dir}")
endforeach()
find_library(OpenBLAS_LIBRARY
  NAMES openblas
  HINTS ${_openblas_library_dirs} ${PC_OpenBLAS_LIBDIR} ${PC_OpenBLAS_LIBRARY_DIRS}
  PATH_SUFFIXES openblas-pthread openblas-openmp openblas-serial)

if(NOT OpenBLAS_VERSION AND PC_OpenBLAS_VERSION)
  set(OpenBLAS_VERSION "${PC_OpenBLAS_VERSION}")
endif()

find_package_handle_standard_args(OpenBLAS
  REQUIRED_VARS OpenBLAS_LIBRARY OpenBLAS_INCLUDE_DIR
  VERSION_VAR OpenBLAS_VERSION)

if(OpenBLAS_FOUND AND NOT TARGET OpenBLAS::OpenBLAS)
  add_library(OpenBLAS::OpenBLAS UNKNOWN IMPORTED)
  set_target_properties(OpenBLAS::OpenBLAS PROPERTIES
    IMPORTED_LOCATION "${OpenBLAS_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${OpenBLAS_INCLUDE_DIR}")
endif()

mark_as_advanced(OpenBLAS_INCLUDE_DIR OpenBLAS_LIBRARY)
