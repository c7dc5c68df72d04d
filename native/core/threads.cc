#include "core/threads.h"

#include <ATen/Parallel.h>

#include <atomic>

#include "core/symbols.h"

namespace vbp {
namespace {
std::atomic<int> requestedThreads{0};  // 0: never set, LibTorch's default stands
}  // namespace

void setThreadCount(int threads) {
  requestedThreads = threads;
  at::set_num_threads(threads);
  using SetThreads = void (*)(int);
  if (auto setBlasThreads = reinterpret_cast<SetThreads>(findSymbol("openblas_set_num_threads"))) setBlasThreads(threads);
}

void applyThreadCount() {
  const int threads = requestedThreads.load();
  if (threads > 0 && at::get_num_threads() != threads) at::set_num_threads(threads);
}

int blasThreadCount() {
  using GetThreads = int (*)();
  const auto getBlasThreads = reinterpret_cast<GetThreads>(findSymbol("openblas_get_num_threads"));
  return getBlasThreads ? getBlasThreads() : -1;
}

}  // namespace vbp
