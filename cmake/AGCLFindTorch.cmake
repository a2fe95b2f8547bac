# Finds LibTorch: Debian's CPU LibTorch 1.13 by default, or any LibTorch
# (e.g. the CUDA-enabled one inside a PyTorch 2.x installation) given by
# Torch_DIR, e.g.
#   -DTorch_DIR=$(python3 -c "import torch;print(torch.utils.cmake_prefix_path)")/Torch
#
# Defines the interface target agcl::torch that carries include directories,
# libraries and LibTorch's ABI flag, and AGCL_TORCH_VERSION.

if(TARGET agcl::torch)
  return()
endif()

# A PyTorch installation's TorchConfig looks for CUDA through the old FindCUDA;
# CMake >= 3.27 removed it by default, and the new policy is needed there.
if(POLICY CMP0146)
  cmake_policy(SET CMP0146 OLD)
endif()

find_package(Torch REQUIRED)

add_library(agcl_torch INTERFACE)
add_library(agcl::torch ALIAS agcl_torch)
target_link_libraries(agcl_torch INTERFACE ${TORCH_LIBRARIES})
target_include_directories(agcl_torch SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})

# LibTorch's C++ ABI flag (-D_GLIBCXX_USE_CXX11_ABI=0 or 1) must match across
# every object that passes std::string or containers to it, GoogleTest and
# Google Benchmark included: apply it project-wide.
if(TORCH_CXX_FLAGS)
  separate_arguments(_agcl_torch_flags UNIX_COMMAND "${TORCH_CXX_FLAGS}")
  add_compile_options(${_agcl_torch_flags})
endif()

if(Torch_VERSION)
  set(AGCL_TORCH_VERSION ${Torch_VERSION})
else()
  set(AGCL_TORCH_VERSION ${PACKAGE_VERSION})
endif()
set(AGCL_TORCH_HAS_CUDA OFF)
if(TORCH_CUDA_LIBRARIES OR CAFFE2_USE_CUDA OR TARGET torch_cuda)
  set(AGCL_TORCH_HAS_CUDA ON)
endif()
message(STATUS "AGCL: LibTorch ${AGCL_TORCH_VERSION} from ${Torch_DIR} (CUDA: ${AGCL_TORCH_HAS_CUDA})")
