// Entry point of the addon: argument conversion and AsyncWorkers only; the work lives in native/core.
#include "bindings/addon.h"

#include "bindings/async_job.h"
#include "bindings/distributed_wrap.h"
#include "bindings/image_wrap.h"
#include "bindings/model_wrap.h"
#include "bindings/saliency_wrap.h"
#include "bindings/session_wrap.h"
#include "bindings/test_hooks.h"
#include "bindings/trainer_wrap.h"
#include "core/allocator.h"
#include "core/cpu_cache.h"
#include "core/linked_torch.h"

#include <torch/utils.h>
#include <torch/version.h>
#include "core/device.h"
#include "core/memory_stats.h"
#include "core/model.h"
#include "core/precision.h"
#include "core/threads.h"

namespace vbp::js {

Addon::Addon(Napi::Env env, Napi::Object exports) {
  // A LibTorch other than the one this addon was compiled against: a coded error now, not a crash later.
  const std::string mismatch = vbp::linkedTorchMismatch(vbp::linkedTorch(), TORCH_VERSION, compiledWithCuda());
  if (!mismatch.empty()) {
    Napi::Error error = Napi::Error::New(env, mismatch);
    error.Set("code", code::kLibtorchMismatch);
    throw error;
  }
  installCpuCache();
  Napi::Function modelClass = ModelWrap::define(env);
  modelConstructor = Napi::Persistent(modelClass);
  sessionConstructor = Napi::Persistent(SessionWrap::define(env));
  saliencyConstructor = Napi::Persistent(SaliencyWrap::define(env));
  trainerConstructor = Napi::Persistent(TrainerWrap::define(env));
  DefineAddon(exports, {
                           InstanceMethod<&Addon::versionInfo>("versionInfo"),
                           InstanceMethod<&Addon::setNumThreads>("setNumThreads"),
                           InstanceMethod<&Addon::manualSeed>("manualSeed"),
                           InstanceMethod<&Addon::tf32>("tf32"),
                           InstanceMethod<&Addon::loadModel>("loadModel"),
                           InstanceMethod<&Addon::nativeMemory>("nativeMemory"),
                           InstanceMethod<&Addon::keepLargeAllocations>("keepLargeAllocations"),
                           InstanceMethod<&Addon::releaseCachedMemory>("releaseCachedMemory"),
                           InstanceMethod<&Addon::linkedTorchMismatch>("linkedTorchMismatch"),
                           InstanceValue("NativeModel", modelClass),
                           InstanceValue("_testHooks", testHooks(env)),
                       });
  defineDistributed(env, exports);
  defineImages(env, exports);
}

Napi::Value Addon::versionInfo(const Napi::CallbackInfo& info) {
  return guard(info.Env(), code::kInternal, [&]() -> Napi::Value {
    const BuildInfo build = buildInfo();
    Napi::Object result = Napi::Object::New(info.Env());
    result.Set("torch", build.torchVersion);
    result.Set("linkedTorch", vbp::linkedTorch().version);
    result.Set("cudaBuild", build.cudaBuild);
    result.Set("cudaVersion", build.cudaVersion);
    result.Set("cudaAvailable", build.cudaAvailable);
    result.Set("cudaDeviceCount", build.cudaDeviceCount);
    result.Set("numThreads", build.numThreads);
    result.Set("blasThreads", blasThreadCount());
    result.Set("napiVersion", NAPI_VERSION);
    return result;
  });
}

Napi::Value Addon::setNumThreads(const Napi::CallbackInfo& info) {
  return guard(info.Env(), code::kInvalidArgument, [&]() -> Napi::Value {
    const int threads = info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 0;
    if (threads < 1) throw Error(code::kInvalidArgument, "setNumThreads(n): n must be a positive integer");
    setThreadCount(threads);
    return info.Env().Undefined();
  });
}

// manualSeed(seed): LibTorch's default generators (CPU and every GPU), as torch.manual_seed.
Napi::Value Addon::manualSeed(const Napi::CallbackInfo& info) {
  return guard(info.Env(), code::kInvalidArgument, [&]() -> Napi::Value {
    bool lossless = false;
    const uint64_t seed = info[0].IsBigInt() ? info[0].As<Napi::BigInt>().Uint64Value(&lossless) : 0;
    if (!info[0].IsBigInt() || !lossless) throw Error(code::kInvalidArgument, "manualSeed(seed): seed must be a non-negative integer below 2^64");
    torch::manual_seed(seed);
    return info.Env().Undefined();
  });
}

// tf32() reads the TF32 flags; tf32({ matmul?, cudnn? }) changes the ones given. Both return the flags now in force.
Napi::Value Addon::tf32(const Napi::CallbackInfo& info) {
  return guard(info.Env(), code::kInvalidArgument, [&]() -> Napi::Value {
    Tf32Settings settings = tf32Settings();
    if (info.Length() > 0 && info[0].IsObject()) {
      const Napi::Object changes = info[0].As<Napi::Object>();
      if (changes.Has("matmul")) settings.matmul = changes.Get("matmul").ToBoolean();
      if (changes.Has("cudnn")) settings.cudnn = changes.Get("cudnn").ToBoolean();
      setTf32Settings(settings);
    }
    Napi::Object result = Napi::Object::New(info.Env());
    result.Set("matmul", settings.matmul);
    result.Set("cudnn", settings.cudnn);
    return result;
  });
}

Napi::Value Addon::nativeMemory(const Napi::CallbackInfo& info) {
  const NativeMemory m = vbp::nativeMemory();
  Napi::Object result = Napi::Object::New(info.Env());
  result.Set("mallocInUse", static_cast<double>(m.mallocInUse));
  result.Set("liveModels", static_cast<double>(m.liveModels));
  result.Set("liveSessions", static_cast<double>(m.liveSessions));
  result.Set("liveTrainers", static_cast<double>(m.liveTrainers));
  result.Set("modelBytes", static_cast<double>(m.modelBytes));
  const CpuCacheStats cache = cpuCacheStats();
  Napi::Object cpuCache = Napi::Object::New(info.Env());
  cpuCache.Set("installed", cache.installed);
  cpuCache.Set("cachedBytes", static_cast<double>(cache.cachedBytes));
  cpuCache.Set("liveBytes", static_cast<double>(cache.liveBytes));
  cpuCache.Set("peakLiveBytes", static_cast<double>(cache.peakLiveBytes));
  cpuCache.Set("hits", static_cast<double>(cache.hits));
  cpuCache.Set("misses", static_cast<double>(cache.misses));
  cpuCache.Set("slackBytes", static_cast<double>(cache.slackBytes));
  result.Set("cpuCache", cpuCache);
  return result;
}

Napi::Value Addon::keepLargeAllocations(const Napi::CallbackInfo& info) {
  return guard(info.Env(), code::kInvalidArgument, [&]() -> Napi::Value {
    const double bytes = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
    // mallopt takes an int; 1 GiB is the largest block size worth keeping.
    if (!(bytes >= 0 && bytes <= 1073741824.0)) {
      throw Error(code::kInvalidArgument, "keepLargeAllocations(bytes): bytes must be between 0 and 1 GiB");
    }
    return Napi::Boolean::New(info.Env(), vbp::keepLargeAllocations(static_cast<size_t>(bytes)));
  });
}

// For tests: what the load-time check says of a build-settings text against a compiled version.
Napi::Value Addon::linkedTorchMismatch(const Napi::CallbackInfo& info) {
  return guard(info.Env(), code::kInvalidArgument, [&]() -> Napi::Value {
    if (!info[0].IsString() || !info[1].IsString()) throw Error(code::kInvalidArgument, "linkedTorchMismatch(config, compiledVersion, cuda)");
    const std::string message =
        vbp::linkedTorchMismatch(parseBuildSettings(info[0].As<Napi::String>()), info[1].As<Napi::String>(), info[2].ToBoolean().Value());
    return Napi::String::New(info.Env(), message);
  });
}

Napi::Value Addon::releaseCachedMemory(const Napi::CallbackInfo& info) {
  releaseCpuCache();
  return info.Env().Undefined();
}

Napi::Value Addon::loadModel(const Napi::CallbackInfo& info) {
  return guard(info.Env(), code::kModelLoad, [&]() -> Napi::Value {
    if (!info[0].IsString()) throw Error(code::kInvalidArgument, "loadModel(path): path must be a string");
    const std::string path = info[0].As<Napi::String>();
    const std::string deviceSpec = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "cpu";
    const c10::Device device = resolveDevice(deviceSpec);
    return Job<std::shared_ptr<TorchModel>>::start(
        info.Env(), code::kModelLoad, [path, device]() { return TorchModel::load(path, device); },
        [](Napi::Env env, std::shared_ptr<TorchModel>& model) -> Napi::Value { return ModelWrap::wrap(env, std::move(model)); });
  });
}

}  // namespace vbp::js

using VbpAddon = vbp::js::Addon;
NODE_API_ADDON(VbpAddon)
