#include "bindings/session_wrap.h"

#include <cstring>

#include "bindings/addon.h"
#include "bindings/async_job.h"
#include "bindings/js_mlp.h"
#include "bindings/js_values.h"
#include "bindings/shared_handle.h"
#include "core/cpu_cache.h"
#include "core/memory_stats.h"

namespace vbp::js {

Napi::Function SessionWrap::define(Napi::Env env) {
  return DefineClass(env, "NativeStatsSession",
                     {
                         InstanceMethod<&SessionWrap::run>("run"),
                         InstanceMethod<&SessionWrap::snapshot>("snapshot"),
                         InstanceMethod<&SessionWrap::mlps>("mlps"),
                         InstanceMethod<&SessionWrap::dispose>("dispose"),
                     });
}

Napi::Object SessionWrap::wrap(Napi::Env env, std::shared_ptr<StatsSession> session) {
  return newWrapper(env, env.GetInstanceData<Addon>()->sessionConstructor, std::move(session));
}

SessionWrap::SessionWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SessionWrap>(info) {
  session_ = wrappedObject<StatsSession>(info, "gatherStats()");
  countSession(+1);
}

SessionWrap::~SessionWrap() { release(); }

void SessionWrap::release() {
  if (!session_) return;
  countSession(-1);
  session_.reset();
  if (liveObjects() == 0) releaseCpuCache();
}

std::shared_ptr<StatsSession> SessionWrap::live() const {
  if (!session_) throw Error(code::kDisposed, "this statistics session has been disposed");
  return session_;
}

Napi::Value SessionWrap::run(const Napi::CallbackInfo& info) {
  return guard(info.Env(), code::kForward, [&]() -> Napi::Value {
    auto session = live();
    auto inputs = inputsFromJs(info[0]);
    const bool countMacs = info[1].ToBoolean().Value();
    return Job<std::optional<MacCount>>::start(
        info.Env(), code::kForward, [session, inputs = std::move(inputs), countMacs]() mutable { return session->run(std::move(inputs), countMacs); },
        [](Napi::Env env, std::optional<MacCount>& macs) -> Napi::Value { return macs ? macsToJs(env, *macs) : env.Undefined(); });
  });
}

Napi::Value SessionWrap::snapshot(const Napi::CallbackInfo& info) {
  return guard(info.Env(), code::kStats, [&]() -> Napi::Value {
    auto session = live();
    return Job<std::vector<StatsSnapshot>>::start(
        info.Env(), code::kStats, [session]() { return session->snapshot(); },
        [](Napi::Env env, std::vector<StatsSnapshot>& layers) -> Napi::Value {
          Napi::Array array = Napi::Array::New(env, layers.size());
          for (size_t i = 0; i < layers.size(); ++i) {
            const StatsSnapshot& s = layers[i];
            Napi::Object item = Napi::Object::New(env);
            item.Set("count", static_cast<double>(s.count));
            item.Set("nonFinite", static_cast<double>(s.nonFinite));
            auto mean = Napi::Float64Array::New(env, static_cast<size_t>(s.mean.numel()));
            auto m2 = Napi::Float64Array::New(env, static_cast<size_t>(s.m2.numel()));
            std::memcpy(mean.Data(), s.mean.data_ptr<double>(), mean.ByteLength());
            std::memcpy(m2.Data(), s.m2.data_ptr<double>(), m2.ByteLength());
            item.Set("mean", mean);
            item.Set("m2", m2);
            if (s.comoment.defined()) {
              auto comoment = Napi::Float64Array::New(env, static_cast<size_t>(s.comoment.numel()));
              std::memcpy(comoment.Data(), s.comoment.data_ptr<double>(), comoment.ByteLength());
              item.Set("comoment", comoment);
              auto covarianceMean = Napi::Float64Array::New(env, static_cast<size_t>(s.covarianceMean.numel()));
              std::memcpy(covarianceMean.Data(), s.covarianceMean.data_ptr<double>(), covarianceMean.ByteLength());
              item.Set("comomentMean", covarianceMean);
              item.Set("comomentCount", static_cast<double>(s.covarianceCount));
            }
            array.Set(static_cast<uint32_t>(i), item);
          }
          return array;
        });
  });
}

Napi::Value SessionWrap::mlps(const Napi::CallbackInfo& info) {
  return guard(info.Env(), code::kInternal, [&]() -> Napi::Value { return mlpsToJs(info.Env(), live()->mlps()); });
}

Napi::Value SessionWrap::dispose(const Napi::CallbackInfo& info) {
  release();
  return info.Env().Undefined();
}

}  // namespace vbp::js
