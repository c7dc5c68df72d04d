// A promise-returning AsyncWorker: `work` runs on the libuv pool and never touches Napi values;
// `toJs` converts its result on the main thread. Errors reject the promise with a coded JS error.
#pragma once

#include <napi.h>

#include <functional>
#include <utility>

#include "bindings/js_errors.h"

namespace vbp::js {

template <typename Result>
class Job final : public Napi::AsyncWorker {
 public:
  using Work = std::function<Result()>;
  using ToJs = std::function<Napi::Value(Napi::Env, Result&)>;

  static Napi::Promise start(Napi::Env env, const char* fallbackCode, Work work, ToJs toJs) {
    auto* job = new Job(env, fallbackCode, std::move(work), std::move(toJs));
    Napi::Promise promise = job->deferred_.Promise();
    job->Queue();  // the worker deletes itself after OnOK/OnError
    return promise;
  }

 private:
  Job(Napi::Env env, const char* fallbackCode, Work work, ToJs toJs)
      : Napi::AsyncWorker(env, "torch-vbp"),
        deferred_(Napi::Promise::Deferred::New(env)),
        fallbackCode_(fallbackCode),
        work_(std::move(work)),
        toJs_(std::move(toJs)) {}

  void Execute() override {
    try {
      result_ = work_();
    } catch (...) {
      error_ = describeCurrentException(fallbackCode_);
      SetError(error_.message);
    }
    work_ = nullptr;  // release captured models on the worker thread, not later on the main one
  }

  void OnOK() override {
    Napi::HandleScope scope(Env());
    try {
      deferred_.Resolve(toJs_(Env(), result_));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    } catch (...) {
      deferred_.Reject(makeError(Env(), describeCurrentException(fallbackCode_)).Value());
    }
  }

  void OnError(const Napi::Error&) override {
    Napi::HandleScope scope(Env());
    deferred_.Reject(makeError(Env(), error_).Value());
  }

  Napi::Promise::Deferred deferred_;
  const char* fallbackCode_;
  Work work_;
  ToJs toJs_;
  Result result_{};
  ErrorInfo error_;
};

}  // namespace vbp::js
