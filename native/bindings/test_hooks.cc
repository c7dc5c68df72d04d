#include "bindings/test_hooks.h"

#include <ATen/Parallel.h>
#include <c10/core/CPUAllocator.h>

#include "bindings/async_job.h"
#include "core/cpu_cache.h"

namespace vbp::js {
namespace {

// The intra-op thread count a libuv pool thread runs with, seen from a job like any other.
Napi::Value poolThreadCount(const Napi::CallbackInfo& info) {
  return Job<int>::start(
      info.Env(), code::kInternal, []() { return at::get_num_threads(); },
      [](Napi::Env env, int& threads) -> Napi::Value { return Napi::Number::New(env, threads); });
}

// A block LibTorch's default allocator handed out (as to oneDNN before our allocator was installed),
// freed through the allocator in force, as its owner would.
Napi::Value freeForeignBlock(const Napi::CallbackInfo& info) {
  return guard(info.Env(), code::kInternal, [&]() -> Napi::Value {
    const size_t bytes = info[0].IsNumber() ? static_cast<size_t>(info[0].As<Napi::Number>().Int64Value()) : (1 << 20);
    void* block = c10::GetDefaultCPUAllocator()->raw_allocate(bytes);
    c10::GetAllocator(c10::DeviceType::CPU)->raw_deallocate(block);
    return info.Env().Undefined();
  });
}

Napi::Value injectAllocationFailures(const Napi::CallbackInfo& info) {
  vbp::injectAllocationFailures(info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 0);
  return info.Env().Undefined();
}

}  // namespace

Napi::Object testHooks(Napi::Env env) {
  Napi::Object hooks = Napi::Object::New(env);
  hooks.Set("poolThreadCount", Napi::Function::New(env, poolThreadCount, "poolThreadCount"));
  hooks.Set("freeForeignBlock", Napi::Function::New(env, freeForeignBlock, "freeForeignBlock"));
  hooks.Set("injectAllocationFailures", Napi::Function::New(env, injectAllocationFailures, "injectAllocationFailures"));
  return hooks;
}

}  // namespace vbp::js
