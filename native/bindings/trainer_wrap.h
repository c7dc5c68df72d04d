// The JS object of a fine-tuning run (a core Trainer): steps, snapshots, checkpoints, dispose.
#pragma once

#include <napi.h>

#include <memory>

#include "core/trainer.h"

namespace vbp::js {

class TrainerWrap : public Napi::ObjectWrap<TrainerWrap> {
 public:
  static Napi::Function define(Napi::Env env);
  static Napi::Object wrap(Napi::Env env, std::shared_ptr<Trainer> trainer);
  // The options object of createTrainer() -> core options (throws INVALID_ARGUMENT on bad types).
  static TrainerOptions optionsFromJs(const Napi::Value& value);

  explicit TrainerWrap(const Napi::CallbackInfo& info);
  ~TrainerWrap() override;

 private:
  std::shared_ptr<Trainer> live() const;
  void release();

  Napi::Value step(const Napi::CallbackInfo& info);
  Napi::Value snapshot(const Napi::CallbackInfo& info);
  Napi::Value checkpoint(const Napi::CallbackInfo& info);
  Napi::Value info(const Napi::CallbackInfo& info);
  Napi::Value dispose(const Napi::CallbackInfo& info);

  std::shared_ptr<Trainer> trainer_;
};

}  // namespace vbp::js
