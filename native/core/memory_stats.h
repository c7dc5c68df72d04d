// What the process holds natively: bytes the C allocator has handed out (glibc's mallinfo2, which unlike
// RSS does not count freed-but-cached pages), and the models, sessions and trainers torch-vbp keeps alive.
#pragma once

#include <atomic>
#include <cstdint>

namespace vbp {

struct NativeMemory {
  int64_t mallocInUse = -1;  // -1 where the C library cannot say
  int64_t liveModels = 0;
  int64_t liveSessions = 0;
  int64_t liveTrainers = 0;
  int64_t modelBytes = 0;  // parameters and buffers of live models (also reported to V8)
};

NativeMemory nativeMemory();

// Counters kept by the bindings as models and sessions are wrapped and released.
// countModel returns the number of live models after the change.
int64_t countModel(int64_t bytes, int sign);
void countSession(int sign);
void countTrainer(int sign);
// Models, sessions and trainers alive: when none is, nothing of ours needs the CPU cache's blocks.
int64_t liveObjects();

}  // namespace vbp
