// Optional functions of the libraries LibTorch brings (OpenBLAS's thread setter, CBLAS's syrk), found at run
// time: present only when LibTorch links them.
#pragma once

namespace vbp {

// The address of `name` in the process's global scope or among this library's own dependencies (Node loads
// addons with RTLD_LOCAL, so LibTorch's BLAS is not in the global scope); nullptr when there is none.
void* findSymbol(const char* name);

}  // namespace vbp
