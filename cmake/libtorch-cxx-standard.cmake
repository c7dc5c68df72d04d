# vbp_libtorch_cxx_standard(OUT INCLUDE_DIRS): 20 when the LibTorch headers in INCLUDE_DIRS require C++20
# (ATen/ATen.h of LibTorch >= 2.14 stops with "#error C++20 or later compatible compiler is required"),
# else 17. scripts/libtorch-config.js (cxxstd) applies the same rule for binding.gyp.
function(vbp_libtorch_cxx_standard out include_dirs)
  set(_standard 17)
  foreach(_dir ${include_dirs})
    if(EXISTS "${_dir}/ATen/ATen.h")
      file(READ "${_dir}/ATen/ATen.h" _aten)
      string(FIND "${_aten}" "C++20 or later" _needs20)
      if(NOT _needs20 EQUAL -1)
        set(_standard 20)
      endif()
      break()
    endif()
  endforeach()
  set(${out} ${_standard} PARENT_SCOPE)
endfunction()
