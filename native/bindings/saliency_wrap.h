// The JS object of a SNIP scoring run (a SaliencySession): run labelled batches, read the scores, dispose.
#pragma once

#include <napi.h>

#include <memory>

#include "core/saliency.h"

namespace vbp::js {

class SaliencyWrap : public Napi::ObjectWrap<SaliencyWrap> {
 public:
  static Napi::Function define(Napi::Env env);
  static Napi::Object wrap(Napi::Env env, std::shared_ptr<SaliencySession> session);

  explicit SaliencyWrap(const Napi::CallbackInfo& info);
  ~SaliencyWrap() override;

 private:
  std::shared_ptr<SaliencySession> live() const;
  void release();

  Napi::Value run(const Napi::CallbackInfo& info);
  Napi::Value scores(const Napi::CallbackInfo& info);
  Napi::Value dispose(const Napi::CallbackInfo& info);

  std::shared_ptr<SaliencySession> session_;
};

}  // namespace vbp::js
