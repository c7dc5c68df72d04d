#include "core/threads.h"

#include <ATen/Parallel.h>

#include <dlfcn.h>

namespace vbp {

void setThreadCount(int threads) {
  at::set_num_threads(threads);
  // Looked up at run time: present only when the process has OpenBLAS loaded.
  using SetThreads = void (*)(int);
  if (auto setBlasThreads = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    setBlasThreads(threads);
  }
}

}  // namespace vbp
