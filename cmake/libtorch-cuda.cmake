# What a CUDA LibTorch needs from the CUDA toolkit before find_package(Torch), and the folders its CUDA
# libraries are found in at run time (README, "Building against your LibTorch").
#
# A pip CUDA torch's CMake config looks for the toolkit (nvcc, headers) and for nvrtc, which it links. The
# toolkit is named the way PyTorch names it for extensions, CUDA_HOME (or CUDA_PATH, or nvcc on PATH). nvrtc
# comes with the wheel (nvidia/cu13/lib/libnvrtc.so.13, nvidia/cuda_nvrtc/lib for CUDA 12 wheels) and is
# often absent from a toolkit installed without it; the wheel's copy is the one torch itself loads, so it is
# preferred, and its folder goes into the addon's RPATH (the addon needs it: it links with --no-as-needed).

# vbp_prepare_cuda_toolkit(SITE_PACKAGES): call before find_package(Torch). SITE_PACKAGES is the folder that
# holds the wheel's torch/ (empty for a LibTorch download or Debian's, which bring no nvidia/ folder).
macro(vbp_prepare_cuda_toolkit _vbp_site)
  if(NOT CUDAToolkit_ROOT)
    foreach(_vbp_env CUDA_HOME CUDA_PATH)
      if(DEFINED ENV{${_vbp_env}} AND EXISTS "$ENV{${_vbp_env}}")
        set(CUDAToolkit_ROOT "$ENV{${_vbp_env}}")
        break()
      endif()
    endforeach()
  endif()
  if(CUDAToolkit_ROOT)
    # Torch's config asks both CMake modules: FindCUDAToolkit (CUDAToolkit_ROOT) and the older FindCUDA.
    if(NOT CUDA_TOOLKIT_ROOT_DIR)
      set(CUDA_TOOLKIT_ROOT_DIR "${CUDAToolkit_ROOT}")
    endif()
    if(NOT CMAKE_CUDA_COMPILER AND EXISTS "${CUDAToolkit_ROOT}/bin/nvcc")
      set(CMAKE_CUDA_COMPILER "${CUDAToolkit_ROOT}/bin/nvcc")
    endif()
  endif()
  # A NOTFOUND left in the cache by an earlier configure would be linked as it is.
  foreach(_vbp_var CUDA_nvrtc_LIBRARY CUDA_NVRTC_LIB)
    if(DEFINED CACHE{${_vbp_var}} AND NOT ${_vbp_var})
      unset(${_vbp_var} CACHE)
    endif()
  endforeach()
  if(NOT CUDA_nvrtc_LIBRARY AND NOT "${_vbp_site}" STREQUAL "")
    file(GLOB _vbp_nvrtc "${_vbp_site}/nvidia/*/lib/libnvrtc.so.[0-9]*")
    if(_vbp_nvrtc)
      list(SORT _vbp_nvrtc)
      list(GET _vbp_nvrtc 0 _vbp_nvrtc)
      set(CUDA_nvrtc_LIBRARY "${_vbp_nvrtc}" CACHE FILEPATH "nvrtc of the CUDA torch wheel")
      message(STATUS "torch-vbp: nvrtc from the torch wheel: ${_vbp_nvrtc}")
    endif()
  endif()
endmacro()

# vbp_cuda_runtime_dirs(OUT): after find_package(Torch), the folders outside the system's that hold CUDA
# libraries the addon links directly (nvrtc from the wheel, say); empty for a CPU LibTorch.
function(vbp_cuda_runtime_dirs out)
  set(_dirs "")
  if(CUDA_nvrtc_LIBRARY AND EXISTS "${CUDA_nvrtc_LIBRARY}")
    get_filename_component(_dir "${CUDA_nvrtc_LIBRARY}" DIRECTORY)
    get_filename_component(_dir "${_dir}" REALPATH)
    if(NOT _dir MATCHES "^/(usr/)?lib(64)?(/|$)")
      list(APPEND _dirs "${_dir}")
    endif()
  endif()
  set(${out} "${_dirs}" PARENT_SCOPE)
endfunction()
