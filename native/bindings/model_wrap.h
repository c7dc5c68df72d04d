// The JS object of a loaded model. It owns a shared_ptr to the core model: work in flight keeps its own
// reference, so dispose() never pulls a model from under a running job.
#pragma once

#include <napi.h>

#include <memory>

#include "core/model.h"

namespace vbp::js {

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static Napi::Function define(Napi::Env env);
  // Wraps a core model in a new JS object (main thread only).
  static Napi::Object wrap(Napi::Env env, std::shared_ptr<TorchModel> model);

  explicit ModelWrap(const Napi::CallbackInfo& info);
  ~ModelWrap() override;

 private:
  std::shared_ptr<TorchModel> live(Napi::Env env) const;
  void release(Napi::Env env);

  Napi::Value forward(const Napi::CallbackInfo& info);
  Napi::Value forwardSync(const Napi::CallbackInfo& info);
  Napi::Value clone(const Napi::CallbackInfo& info);
  Napi::Value save(const Napi::CallbackInfo& info);
  Napi::Value embeddedCard(const Napi::CallbackInfo& info);
  Napi::Value submodules(const Napi::CallbackInfo& info);
  Napi::Value parameters(const Napi::CallbackInfo& info);
  Napi::Value namedTensor(const Napi::CallbackInfo& info);
  Napi::Value device(const Napi::CallbackInfo& info);
  Napi::Value dispose(const Napi::CallbackInfo& info);
  Napi::Value mlps(const Napi::CallbackInfo& info);
  Napi::Value createStatsSession(const Napi::CallbackInfo& info);
  Napi::Value createSaliencySession(const Napi::CallbackInfo& info);
  Napi::Value neuronNorms(const Napi::CallbackInfo& info);
  Napi::Value prune(const Napi::CallbackInfo& info);
  Napi::Value compensatedSelection(const Napi::CallbackInfo& info);
  Napi::Value countMacs(const Napi::CallbackInfo& info);
  Napi::Value createTrainer(const Napi::CallbackInfo& info);
  Napi::Value checkpointState(const Napi::CallbackInfo& info);

  std::shared_ptr<TorchModel> model_;
  int64_t reportedBytes_ = 0;
  Napi::Env env_;
};

}  // namespace vbp::js
