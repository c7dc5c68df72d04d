// A caching CPU allocator for LibTorch's tensors. LibTorch allocates every activation afresh; from libuv's
// worker threads, glibc hands activation-sized blocks back to the system and faults them in again on every
// forward (a batch-256 forward of the bundled model: 120-250 ms that way, 53-57 ms with blocks kept). This
// allocator keeps freed blocks of 64 KiB and more for reuse, bounded by the largest working set seen (see
// kCpuCacheSlackBytes), and gives them all back when the last model is disposed or on request. Only LibTorch's CPU tensors use it:
// the process's malloc settings are left alone.
#pragma once

#include <cstdint>

namespace vbp {

struct CpuCacheStats {
  bool installed = false;
  int64_t cachedBytes = 0;    // freed blocks kept for reuse
  int64_t liveBytes = 0;      // cacheable blocks in use by tensors
  int64_t peakLiveBytes = 0;  // the largest liveBytes since the cache was last emptied
  int64_t hits = 0;           // allocations served from the cache
  int64_t misses = 0;         // allocations of cacheable size that had to go to the system
  int64_t slackBytes = 0;
};

// Makes the caching allocator LibTorch's CPU allocator (once per process). Not installed when the
// environment variable VBP_CPU_ALLOCATOR is 'default'.
void installCpuCache();

// Frees every cached block (tensors in use are not affected) and resets the peak to what is live.
void releaseCpuCache();

CpuCacheStats cpuCacheStats();

// For tests: the next `count` allocations from the system fail as if memory were exhausted.
void injectAllocationFailures(int count);

// The bound: blocks in use plus blocks cached stay within twice the most bytes ever in use at once (a block
// serves requests from half its size up, so a working set may need up to twice its bytes in blocks) plus a
// slack, 16 MiB unless VBP_CPU_CACHE_SLACK_MB says otherwise; beyond it the largest cached blocks are freed.
inline constexpr int64_t kCpuCacheDefaultSlackBytes = 16 << 20;

}  // namespace vbp
