// Per-environment state of the addon (one per main thread or worker_thread).
#pragma once

#include <napi.h>

namespace vbp::js {

class Addon : public Napi::Addon<Addon> {
 public:
  Addon(Napi::Env env, Napi::Object exports);

  Napi::FunctionReference modelConstructor;
  Napi::FunctionReference sessionConstructor;
  Napi::FunctionReference saliencyConstructor;
  Napi::FunctionReference trainerConstructor;

 private:
  Napi::Value versionInfo(const Napi::CallbackInfo& info);
  Napi::Value setNumThreads(const Napi::CallbackInfo& info);
  Napi::Value manualSeed(const Napi::CallbackInfo& info);
  Napi::Value tf32(const Napi::CallbackInfo& info);
  Napi::Value loadModel(const Napi::CallbackInfo& info);
  Napi::Value nativeMemory(const Napi::CallbackInfo& info);
  Napi::Value keepLargeAllocations(const Napi::CallbackInfo& info);
  Napi::Value releaseCachedMemory(const Napi::CallbackInfo& info);
  Napi::Value linkedTorchMismatch(const Napi::CallbackInfo& info);
};

}  // namespace vbp::js
