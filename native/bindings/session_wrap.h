// The JS object of a calibration run (a StatsSession): run batches, read snapshots, dispose.
#pragma once

#include <napi.h>

#include <memory>

#include "core/tap.h"

namespace vbp::js {

class SessionWrap : public Napi::ObjectWrap<SessionWrap> {
 public:
  static Napi::Function define(Napi::Env env);
  static Napi::Object wrap(Napi::Env env, std::shared_ptr<StatsSession> session);

  explicit SessionWrap(const Napi::CallbackInfo& info);
  ~SessionWrap() override;

 private:
  std::shared_ptr<StatsSession> live() const;
  void release();

  Napi::Value run(const Napi::CallbackInfo& info);
  Napi::Value snapshot(const Napi::CallbackInfo& info);
  Napi::Value mlps(const Napi::CallbackInfo& info);
  Napi::Value dispose(const Napi::CallbackInfo& info);

  std::shared_ptr<StatsSession> session_;
};

}  // namespace vbp::js
