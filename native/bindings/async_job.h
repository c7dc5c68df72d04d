// A promise-returning AsyncWorker: `work` runs on the libuv pool and never touches Napi values;
// `toJs` converts its result on the main thread. Errors reject the promise with a coded JS error.
#pragma once

#include <napi.h>

#include <functional>
#include <utility>

#include "bindings/js_errors.h"
#include "core/threads.h"

namespace vbp::js {

template <typename Result>
class Job final : public Napi::AsyncWorker {
 public:
  using Work = std::function<Result()>;
  using ToJs = std::function<Napi::Value(Napi::Env, Result&)>;

  static Napi::Promise start(Napi::Env env, const char* fallbackCode, Work work, ToJs toJs) {
    auto* job = new Job(env, fallbackCode, std::move(work), std::move(toJs));
    Napi::Promise promise = job->deferred_.Promise();
    job->Queue();  // deletes itself once settled (OnWorkComplete)
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
      applyThreadCount();
      result_ = work_();
    } catch (...) {
      error_ = describeCurrentException(fallbackCode_);
      failed_ = true;
    }
    work_ = nullptr;  // release captured models on the worker thread, not later on the main one
  }

  // Settles the promise on the main thread. Replaces AsyncWorker's own completion, whose HandleScope throws
  // outside any handler (and so terminates the process) when a worker_thread's environment is being torn
  // down as the job ends: then nobody awaits the promise, and the job is only deleted.
  void OnWorkComplete(Napi::Env, napi_status status) override {
    if (status != napi_cancelled) {
      try {
        Napi::HandleScope scope(Env());
        settle();
      } catch (...) {
        // The environment cannot run JavaScript any more.
      }
    }
    Destroy();
  }

  void settle() {
    if (failed_) {
      deferred_.Reject(makeError(Env(), error_).Value());
      return;
    }
    try {
      deferred_.Resolve(toJs_(Env(), result_));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    } catch (...) {
      deferred_.Reject(makeError(Env(), describeCurrentException(fallbackCode_)).Value());
    }
  }

  Napi::Promise::Deferred deferred_;
  const char* fallbackCode_;
  Work work_;
  ToJs toJs_;
  Result result_{};
  ErrorInfo error_;
  bool failed_ = false;
};

}  // namespace vbp::js
