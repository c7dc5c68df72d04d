#include "core/cpu_cache.h"

#include <c10/core/Allocator.h>
#include <c10/core/impl/alloc_cpu.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <type_traits>
#include <vector>

namespace vbp {
namespace {

// Smaller blocks are left to malloc, which keeps them in its arenas anyway.
constexpr size_t kMinCachedBytes = 64 << 10;
// Each block starts with a header holding its size; 64 bytes keep the 64-byte alignment LibTorch expects.
constexpr size_t kHeaderBytes = 64;

struct Cache {
  std::mutex mutex;
  std::multimap<size_t, void*> free;  // size -> block (header address)
  CpuCacheStats stats;
};

Cache& cache() {
  static Cache* instance = new Cache();  // never destroyed: tensors may be freed during process exit
  return *instance;
}

size_t& sizeOf(void* block) { return *static_cast<size_t*>(block); }
void* userPointer(void* block) { return static_cast<char*>(block) + kHeaderBytes; }
void* blockOf(void* user) { return static_cast<char*>(user) - kHeaderBytes; }

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

void releaseBlock(void* user) {
  if (user == nullptr) return;
  void* block = blockOf(user);
  const size_t size = sizeOf(block);
  if (size < kMinCachedBytes) {
    c10::free_cpu(block);
    return;
  }
  std::vector<void*> evicted;
  {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    c.stats.liveBytes -= static_cast<int64_t>(size);
    c.stats.cachedBytes += static_cast<int64_t>(size);
    c.free.emplace(size, block);
    trimLocked(c, evicted);
  }
  freeBlocks(evicted);
}

void* takeBlock(size_t bytes) {
  if (bytes >= kMinCachedBytes) {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    // The smallest cached block that fits, if it wastes at most half of itself.
    auto fit = c.free.lower_bound(bytes);
    if (fit != c.free.end() && fit->first <= 2 * bytes) {
      void* block = fit->second;
      c.stats.cachedBytes -= static_cast<int64_t>(fit->first);
      c.stats.liveBytes += static_cast<int64_t>(fit->first);
      c.stats.peakLiveBytes = std::max(c.stats.peakLiveBytes, c.stats.liveBytes);
      c.stats.hits++;
      c.free.erase(fit);
      return block;
    }
  }
  void* block = c10::alloc_cpu(kHeaderBytes + bytes);
  sizeOf(block) = bytes;
  if (bytes >= kMinCachedBytes) {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    c.stats.liveBytes += static_cast<int64_t>(bytes);
    c.stats.peakLiveBytes = std::max(c.stats.peakLiveBytes, c.stats.liveBytes);
    c.stats.misses++;
  }
  return block;
}

c10::DataPtr allocateBlock(size_t bytes) {
  void* user = bytes == 0 ? nullptr : userPointer(takeBlock(bytes));
  return {user, user, &releaseBlock, c10::Device(c10::DeviceType::CPU)};
}

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
    // Priority 1: above LibTorch's own CPU allocator (0), so that it stays in place.
    c10::SetAllocator(c10::DeviceType::CPU, allocator, 1);
    const char* slack = std::getenv("VBP_CPU_CACHE_SLACK_MB");
    std::lock_guard<std::mutex> lock(cache().mutex);
    cache().stats.installed = true;
    cache().stats.slackBytes = slack != nullptr ? static_cast<int64_t>(std::max(0.0, std::atof(slack)) * (1 << 20)) : kCpuCacheDefaultSlackBytes;
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

CpuCacheStats cpuCacheStats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.stats;
}

}  // namespace vbp
