#include "core/memory_stats.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace vbp {
namespace {
std::atomic<int64_t> liveModels{0};
std::atomic<int64_t> liveSessions{0};
std::atomic<int64_t> liveTrainers{0};
std::atomic<int64_t> modelBytes{0};
}  // namespace

int64_t countModel(int64_t bytes, int sign) {
  modelBytes += sign * bytes;
  return liveModels += sign;
}

void countSession(int sign) { liveSessions += sign; }

void countTrainer(int sign) { liveTrainers += sign; }

int64_t liveObjects() { return liveModels.load() + liveSessions.load() + liveTrainers.load(); }

NativeMemory nativeMemory() {
  NativeMemory m;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  const struct mallinfo2 info = mallinfo2();
  m.mallocInUse = static_cast<int64_t>(info.uordblks + info.hblkhd);
#endif
  m.liveModels = liveModels.load();
  m.liveSessions = liveSessions.load();
  m.liveTrainers = liveTrainers.load();
  m.modelBytes = modelBytes.load();
  return m;
}

}  // namespace vbp
