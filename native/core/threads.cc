#include "core/threads.h"

#include <ATen/Parallel.h>

#include "core/symbols.h"

namespace vbp {

void setThreadCount(int threads) {
  at::set_num_threads(threads);
  using SetThreads = void (*)(int);
  if (auto setBlasThreads = reinterpret_cast<SetThreads>(findSymbol("openblas_set_num_threads"))) setBlasThreads(threads);
}

int blasThreadCount() {
  using GetThreads = int (*)();
  const auto getBlasThreads = reinterpret_cast<GetThreads>(findSymbol("openblas_get_num_threads"));
  return getBlasThreads ? getBlasThreads() : -1;
}

}  // namespace vbp
