# Compiler settings shared by every target of the project.

set(CMAKE_CXX_STANDARD 17)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_CXX_EXTENSIONS OFF)
set(CMAKE_POSITION_INDEPENDENT_CODE ON)
if(NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES)
  set(CMAKE_BUILD_TYPE Release CACHE STRING "Build type" FORCE)
endif()

# ccache: with CCACHE_BASEDIR at the source root, builds in different
# checkouts share hits (absolute paths would make every file miss).
option(AGCL_USE_CCACHE "Compile through ccache when it is installed" ON)
if(AGCL_USE_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  find_program(AGCL_CCACHE_PROGRAM ccache)
  if(AGCL_CCACHE_PROGRAM)
    set(CMAKE_C_COMPILER_LAUNCHER
        ${CMAKE_COMMAND} -E env CCACHE_BASEDIR=${PROJECT_SOURCE_DIR} CCACHE_NOHASHDIR=1 ${AGCL_CCACHE_PROGRAM})
    set(CMAKE_CXX_COMPILER_LAUNCHER ${CMAKE_C_COMPILER_LAUNCHER})
    message(STATUS "AGCL: compiling through ${AGCL_CCACHE_PROGRAM}")
  endif()
endif()

# Precompiled headers pay off from ~3 torch translation units on; ccache
# cannot cache a PCH build unless told the PCH is safe to hash by content.
option(AGCL_USE_PCH "Precompile the LibTorch headers of torch-heavy targets" ON)
if(AGCL_USE_PCH AND AGCL_CCACHE_PROGRAM)
  set(CMAKE_C_COMPILER_LAUNCHER
      ${CMAKE_COMMAND} -E env CCACHE_BASEDIR=${PROJECT_SOURCE_DIR} CCACHE_NOHASHDIR=1
      "CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime" ${AGCL_CCACHE_PROGRAM})
  set(CMAKE_CXX_COMPILER_LAUNCHER ${CMAKE_C_COMPILER_LAUNCHER})
endif()

option(AGCL_USE_CUDA "Build the project's own CUDA code (none yet; LibTorch's CUDA works without it)" OFF)
if(AGCL_USE_CUDA)
  enable_language(CUDA)
endif()

option(AGCL_BUILD_BENCHMARKS "Build the Google Benchmark programs under benchmarks/" ON)
option(AGCL_BUILD_EXAMPLES "Build the example programs under examples/" ON)

# agcl_torch_pch(<target> [<other>]): precompile <torch/torch.h> for a target with several
# torch-heavy translation units (~25 s and ~1.1 GB each without it, on 2 cores); with <other>,
# use <other>'s precompiled header instead of making one more (the targets must be compiled with
# the same options: two test programs of the core, not a shared library and a program). A
# precompiled header takes longer to make than a torch translation unit to compile (138-148 s
# against 60-110 s, all measured in one build beside other work on 2 cores, 2026-12-07).
function(agcl_torch_pch target)
  if(AGCL_USE_PCH)
    if(ARGC GREATER 1)
      target_precompile_headers(${target} REUSE_FROM ${ARGV1})
    else()
      target_precompile_headers(${target} PRIVATE <torch/torch.h>)
    endif()
  endif()
endfunction()

# Sanitizers (scripts/sanitize.sh): AGCL_SANITIZE=address,undefined instruments
# every target of the project (not ITK or LibTorch, which come prebuilt from
# Debian). -O1 with frame pointers keeps the reports' stacks readable at about
# half the speed of Release. UBSan stays recoverable at compile time, because
# GCC's runtime dies in a non-recoverable handler even when the finding is
# suppressed (test/sanitizers/ubsan.supp names one in ITK's headers);
# scripts/sanitize.sh sets halt_on_error=1, so every unsuppressed finding still
# ends its test. AGCL_SANITIZE_DEBUG is the debug-information flag: -g by default;
# CI uses -g1 (line tables only: the reports keep their file:line frames, the
# build takes about a quarter less compiler time and memory).
set(AGCL_SANITIZE "" CACHE STRING "Comma-separated -fsanitize= list, e.g. address,undefined (empty: none)")
set(AGCL_SANITIZE_DEBUG "-g" CACHE STRING "Debug-information flag of a sanitizer build (-g, -g1)")
if(AGCL_SANITIZE)
  if(NOT AGCL_SANITIZE MATCHES "^[a-z,]+$")
    message(FATAL_ERROR "AGCL_SANITIZE='${AGCL_SANITIZE}': expected a comma-separated list such as address,undefined")
  endif()
  if(NOT AGCL_SANITIZE_DEBUG MATCHES "^-g[0-3]?$")
    message(FATAL_ERROR "AGCL_SANITIZE_DEBUG='${AGCL_SANITIZE_DEBUG}': expected -g, -g1, -g2 or -g3")
  endif()
  set(agcl_sanitize_flags -fsanitize=${AGCL_SANITIZE} -fno-omit-frame-pointer ${AGCL_SANITIZE_DEBUG})
  add_compile_options(${agcl_sanitize_flags} -O1)
  add_link_options(-fsanitize=${AGCL_SANITIZE})
  message(STATUS "AGCL: sanitizers ${AGCL_SANITIZE}")
endif()

# libFuzzer programs (scripts/fuzz.sh, clang only): every target instrumented for coverage.
option(AGCL_FUZZ "Build the libFuzzer programs of test/fuzz (clang; with AGCL_CORE_ONLY)" OFF)
if(AGCL_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "AGCL_FUZZ needs clang (e.g. CXX=clang++-14); this is ${CMAKE_CXX_COMPILER_ID}")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
