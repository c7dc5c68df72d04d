#include "bindings/saliency_wrap.h"

#include <algorithm>
#include <cstring>

#include "bindings/addon.h"
#include "bindings/async_job.h"
#include "bindings/js_values.h"
#include "bindings/shared_handle.h"
#include "core/cpu_cache.h"
#include "core/memory_stats.h"

namespace vbp::js {

Napi::Function SaliencyWrap::define(Napi::Env env) {
  return DefineClass(env, "NativeSaliencySession",
                     {
                         InstanceMethod<&SaliencyWrap::run>("run"),
                         InstanceMethod<&SaliencyWrap::scores>("scores"),
                         InstanceMethod<&SaliencyWrap::dispose>("dispose"),
                     });
}

Napi::Object SaliencyWrap::wrap(Napi::Env env, std::shared_ptr<SaliencySession> session) {
  return newWrapper(env, env.GetInstanceData<Addon>()->saliencyConstructor, std::move(session));
}

SaliencyWrap::SaliencyWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SaliencyWrap>(info) {
  session_ = wrappedObject<SaliencySession>(info, "gatherStats()");
  countSession(+1);
}

SaliencyWrap::~SaliencyWrap() { release(); }

void SaliencyWrap::release() {
  if (!session_) return;
  countSession(-1);
  session_.reset();
  if (liveObjects() == 0) releaseCpuCache();
}

std::shared_ptr<SaliencySession> SaliencyWrap::live() const {
  if (!session_) throw Error(code::kDisposed, "this SNIP session has been disposed");
  return session_;
}

Napi::Value SaliencyWrap::run(const Napi::CallbackInfo& info) {
  return guard(info.Env(), code::kForward, [&]() -> Napi::Value {
    auto session = live();
    auto inputs = inputsFromJs(info[0]);
    if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
      throw Error(code::kInvalidArgument, "SNIP run(input, labels): labels must be an Int32Array");
    }
    const Napi::Int32Array labelArray = info[1].As<Napi::Int32Array>();
    at::Tensor labels = at::empty({static_cast<int64_t>(labelArray.ElementLength())}, at::kInt);
    std::copy(labelArray.Data(), labelArray.Data() + labelArray.ElementLength(), labels.data_ptr<int32_t>());
    return Job<bool>::start(
        info.Env(), code::kForward,
        [session, inputs = std::move(inputs), labels]() mutable {
          session->run(std::move(inputs), labels);
          return true;
        },
        [](Napi::Env env, bool&) -> Napi::Value { return env.Undefined(); });
  });
}

Napi::Value SaliencyWrap::scores(const Napi::CallbackInfo& info) {
  return guard(info.Env(), code::kStats, [&]() -> Napi::Value {
    auto session = live();
    return Job<std::vector<at::Tensor>>::start(
        info.Env(), code::kStats, [session]() { return session->scores(); },
        [](Napi::Env env, std::vector<at::Tensor>& scores) -> Napi::Value {
          Napi::Array array = Napi::Array::New(env, scores.size());
          for (size_t i = 0; i < scores.size(); ++i) {
            auto values = Napi::Float64Array::New(env, static_cast<size_t>(scores[i].numel()));
            std::memcpy(values.Data(), scores[i].data_ptr<double>(), values.ByteLength());
            array.Set(static_cast<uint32_t>(i), values);
          }
          return array;
        });
  });
}

Napi::Value SaliencyWrap::dispose(const Napi::CallbackInfo& info) {
  release();
  return info.Env().Undefined();
}

}  // namespace vbp::js
