# tabula_target_defaults(<target>)
#
# Applies the project's own build settings to one of *our* targets (library, tests, examples,
# benchmarks, tools): C++20 without extensions, warnings as errors, and the sanitizer chosen by
# TABULA_SANITIZE. Third-party targets (GoogleTest, Google Benchmark) never get these, which is
# why this is a function over targets rather than global flags.
#
# Everything is PRIVATE: nothing here leaks into the exported tabula::tabula target.

set(_tabula_warning_flags -Wall -Wextra)
if(TABULA_WARNINGS_AS_ERRORS)
  list(APPEND _tabula_warning_flags -Werror)
endif()

if(TABULA_SANITIZE STREQUAL "address")
  set(_tabula_sanitize_compile
      -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  set(_tabula_sanitize_link -fsanitize=address,undefined)
elseif(TABULA_SANITIZE STREQUAL "thread")
  set(_tabula_sanitize_compile -fsanitize=thread -fno-omit-frame-pointer)
  set(_tabula_sanitize_link -fsanitize=thread)
else()
  set(_tabula_sanitize_compile "")
  set(_tabula_sanitize_link "")
endif()

function(tabula_target_defaults target)
  target_compile_features(${target} PRIVATE cxx_std_20)
  set_target_properties(${target} PROPERTIES CXX_EXTENSIONS OFF)

  # Host C++ only: nvcc gets the warnings through -Xcompiler but not -Werror, because the code
  # nvcc generates for the host is not ours to fix.
  target_compile_options(${target} PRIVATE
    "$<$<COMPILE_LANGUAGE:CXX>:${_tabula_warning_flags}>"
    "$<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra>")

  if(_tabula_sanitize_compile)
    target_compile_options(${target} PRIVATE
      "$<$<COMPILE_LANGUAGE:CXX>:${_tabula_sanitize_compile}>")
    # Link options are ignored for static libraries; every executable linking them gets its own.
    target_link_options(${target} PRIVATE ${_tabula_sanitize_link})
  endif()
endfunction()
