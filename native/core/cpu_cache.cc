#include "core/cpu_cache.h"

#include <c10/core/Allocator.h>
#include <c10/core/impl/alloc_cpu.h>

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <type_traits>
#include <unordered_map>
#include <vector>

namespace vbp {
namespace {

// Smaller blocks are left to malloc, which keeps them in its arenas anyway.
constexpr size_t kMinCachedBytes = 64 << 10;
// Beyond this a slack is as good as unbounded (and int64 arithmetic stays exact).
constexpr double kMaxSlackBytes = static_cast<double>(int64_t{1} << 50);

struct Cache {
  std::mutex mutex;
  // Blocks of ours in use, by address: the deleter frees anything else (a small block, or one that another
  // allocator handed out before ours was installed, e.g. to oneDNN) with LibTorch's default free.
  std::unordered_map<void*, size_t> live;
  std::multimap<size_t, void*> free;  // size -> cached block
  CpuCacheStats stats;
};

Cache& cache() {
  static Cache* instance = new Cache();  // never destroyed: tensors may be freed during process exit
  return *instance;
}

void freeBlocks(const std::vector<void*>& blocks) {
  for (void* block : blocks) c10::free_cpu(block);
}

// Keeps live + cached within the bound (cpu_cache.h): evicts the largest cached blocks.
void trimLocked(Cache& c, std::vector<void*>& evicted) {
  while (!c.free.empty() && c.stats.liveBytes + c.stats.cachedBytes > 2 * c.stats.peakLiveBytes + c.stats.slackBytes) {
    auto largest = std::prev(c.free.end());
    c.stats.cachedBytes -= static_cast<int64_t>(largest->first);
    evicted.push_back(largest->second);
    c.free.erase(largest);
  }
}

void releaseBlock(void* block) {
  if (block == nullptr) return;
  Cache& c = cache();
  std::vector<void*> evicted;
  {
    std::unique_lock<std::mutex> lock(c.mutex);
    const auto ours = c.live.find(block);
    if (ours == c.live.end()) {
      lock.unlock();
      c10::free_cpu(block);
      return;
    }
    const size_t size = ours->second;
    c.live.erase(ours);
    c.stats.liveBytes -= static_cast<int64_t>(size);
    try {
      evicted.reserve(4);
      c.free.emplace(size, block);
      c.stats.cachedBytes += static_cast<int64_t>(size);
      trimLocked(c, evicted);
    } catch (const std::bad_alloc&) {
      // No memory for the cache's own bookkeeping: the block goes back to the system instead.
      lock.unlock();
      c10::free_cpu(block);
      freeBlocks(evicted);
      return;
    }
  }
  freeBlocks(evicted);
}

// Records a block of ours as in use (mutex held). On failure the block is freed and the error rethrown.
void* markLiveLocked(Cache& c, void* block, size_t bytes) {
  try {
    c.live.emplace(block, bytes);
  } catch (...) {
    c10::free_cpu(block);
    throw;
  }
  c.stats.liveBytes += static_cast<int64_t>(bytes);
  c.stats.peakLiveBytes = std::max(c.stats.peakLiveBytes, c.stats.liveBytes);
  return block;
}

std::atomic<int> injectedFailures{0};

void* systemAllocation(size_t bytes) {
  if (injectedFailures.load(std::memory_order_relaxed) > 0 && injectedFailures.fetch_sub(1) > 0) {
    throw std::bad_alloc();
  }
  return c10::alloc_cpu(bytes);
}

// LibTorch's default allocation; when the system is out of memory, the cached blocks go back and it tries
// once more.
void* allocateFromSystem(size_t bytes) {
  try {
    return systemAllocation(bytes);
  } catch (const std::exception&) {
    releaseCpuCache();
    return systemAllocation(bytes);
  }
}

void* takeBlock(size_t bytes) {
  if (bytes < kMinCachedBytes) return allocateFromSystem(bytes);
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    // The smallest cached block that fits, if it wastes at most half of itself.
    auto fit = c.free.lower_bound(bytes);
    if (fit != c.free.end() && fit->first <= 2 * bytes) {
      void* block = fit->second;
      const size_t size = fit->first;
      c.free.erase(fit);
      c.stats.cachedBytes -= static_cast<int64_t>(size);
      c.stats.hits++;
      return markLiveLocked(c, block, size);
    }
  }
  void* block = allocateFromSystem(bytes);
  std::lock_guard<std::mutex> lock(c.mutex);
  c.stats.misses++;
  return markLiveLocked(c, block, bytes);
}

c10::DataPtr allocateBlock(size_t bytes) {
  void* block = bytes == 0 ? nullptr : takeBlock(bytes);
  return {block, block, &releaseBlock, c10::Device(c10::DeviceType::CPU)};
}

// VBP_CPU_CACHE_SLACK_MB: a number of MiB; anything else gives the default, and huge values are clamped.
int64_t slackFromEnvironment() {
  const char* text = std::getenv("VBP_CPU_CACHE_SLACK_MB");
  if (text == nullptr) return kCpuCacheDefaultSlackBytes;
  char* end = nullptr;
  const double mib = std::strtod(text, &end);
  if (end == text || *end != '\0' || std::isnan(mib)) return kCpuCacheDefaultSlackBytes;
  return static_cast<int64_t>(std::clamp(mib * (1 << 20), 0.0, kMaxSlackBytes));
}

// A fork while another thread holds the cache's mutex would leave it locked forever in the child.
void lockForFork() { cache().mutex.lock(); }
void unlockAfterFork() { cache().mutex.unlock(); }

// LibTorch 2.x changed c10::Allocator: allocate() lost its const and copy_data() appeared. The adapter
// declares whichever interface the headers being compiled against have.
template <typename A, typename = void>
struct HasCopyData : std::false_type {};
template <typename A>
struct HasCopyData<A, std::void_t<decltype(&A::copy_data)>> : std::true_type {};
template <typename A>
constexpr bool kConstAllocate = std::is_same<decltype(&A::allocate), c10::DataPtr (A::*)(size_t) const>::value;

template <typename A, bool ConstAllocate = kConstAllocate<A>, bool CopyData = HasCopyData<A>::value>
struct Adapter;

template <typename A>
struct Adapter<A, true, false> : A {
  c10::DataPtr allocate(size_t bytes) const override { return allocateBlock(bytes); }
  c10::DeleterFnPtr raw_deleter() const override { return &releaseBlock; }
};

template <typename A>
struct Adapter<A, true, true> : A {
  c10::DataPtr allocate(size_t bytes) const override { return allocateBlock(bytes); }
  c10::DeleterFnPtr raw_deleter() const override { return &releaseBlock; }
  void copy_data(void* dest, const void* src, size_t count) const override { std::memcpy(dest, src, count); }
};

template <typename A>
struct Adapter<A, false, true> : A {
  c10::DataPtr allocate(size_t bytes) override { return allocateBlock(bytes); }
  c10::DeleterFnPtr raw_deleter() const override { return &releaseBlock; }
  void copy_data(void* dest, const void* src, size_t count) const override { std::memcpy(dest, src, count); }
};

using CachingCpuAllocator = Adapter<c10::Allocator>;

}  // namespace

void installCpuCache() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* choice = std::getenv("VBP_CPU_ALLOCATOR");
    if (choice != nullptr && std::strcmp(choice, "default") == 0) return;
    static CachingCpuAllocator* allocator = new CachingCpuAllocator();
    pthread_atfork(&lockForFork, &unlockAfterFork, &unlockAfterFork);
    {
      std::lock_guard<std::mutex> lock(cache().mutex);
      cache().stats.installed = true;
      cache().stats.slackBytes = slackFromEnvironment();
    }
    // Priority 1: above LibTorch's own CPU allocator (0), so that it stays in place.
    c10::SetAllocator(c10::DeviceType::CPU, allocator, 1);
  });
}

void releaseCpuCache() {
  std::vector<void*> blocks;
  {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    for (const auto& entry : c.free) blocks.push_back(entry.second);
    c.free.clear();
    c.stats.cachedBytes = 0;
    c.stats.peakLiveBytes = c.stats.liveBytes;
  }
  freeBlocks(blocks);
}

void injectAllocationFailures(int count) { injectedFailures = count; }

CpuCacheStats cpuCacheStats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.stats;
}

}  // namespace vbp
