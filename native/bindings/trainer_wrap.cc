#include "bindings/trainer_wrap.h"

#include "bindings/addon.h"
#include "bindings/async_job.h"
#include "bindings/distributed_wrap.h"
#include "bindings/js_values.h"
#include "bindings/model_wrap.h"
#include "bindings/shared_handle.h"
#include "core/cpu_cache.h"
#include "core/memory_stats.h"

namespace vbp::js {
namespace {

double numberOption(const Napi::Object& options, const char* name, double fallback) {
  const Napi::Value value = options.Get(name);
  if (value.IsUndefined()) return fallback;
  if (!value.IsNumber()) throw Error(code::kInvalidArgument, std::string("trainer option ") + name + " must be a number");
  return value.As<Napi::Number>().DoubleValue();
}

Napi::Array stringsToJs(Napi::Env env, const std::vector<std::string>& items) {
  Napi::Array array = Napi::Array::New(env, items.size());
  for (size_t i = 0; i < items.size(); ++i) array.Set(static_cast<uint32_t>(i), items[i]);
  return array;
}

}  // namespace

Napi::Function TrainerWrap::define(Napi::Env env) {
  return DefineClass(env, "NativeTrainer",
                     {
                         InstanceMethod<&TrainerWrap::step>("step"),
                         InstanceMethod<&TrainerWrap::snapshot>("snapshot"),
                         InstanceMethod<&TrainerWrap::checkpoint>("checkpoint"),
                         InstanceMethod<&TrainerWrap::info>("info"),
                         InstanceMethod<&TrainerWrap::dispose>("dispose"),
                     });
}

Napi::Object TrainerWrap::wrap(Napi::Env env, std::shared_ptr<Trainer> trainer) {
  return newWrapper(env, env.GetInstanceData<Addon>()->trainerConstructor, std::move(trainer));
}

TrainerOptions TrainerWrap::optionsFromJs(const Napi::Value& value) {
  if (!value.IsObject()) throw Error(code::kInvalidArgument, "createTrainer(options): options must be an object");
  const Napi::Object options = value.As<Napi::Object>();
  TrainerOptions result;
  result.weightDecay = numberOption(options, "weightDecay", result.weightDecay);
  result.beta1 = numberOption(options, "beta1", result.beta1);
  result.beta2 = numberOption(options, "beta2", result.beta2);
  result.eps = numberOption(options, "eps", result.eps);
  result.temperature = numberOption(options, "temperature", result.temperature);
  result.alpha = numberOption(options, "alpha", result.alpha);
  result.clipNorm = numberOption(options, "clipNorm", result.clipNorm);
  result.seed = static_cast<uint64_t>(numberOption(options, "seed", 0));
  result.optimizeGraph = options.Get("optimizeGraph").ToBoolean().Value();
  if (options.Get("precision").IsString()) result.precision = parsePrecision(options.Get("precision").As<Napi::String>());
  if (options.Get("distributed").ToBoolean().Value()) {
    result.group = currentDistributedGroup();
    if (!result.group) throw Error(code::kDistributed, "data-parallel fine-tuning needs a process group: call initDistributed() first");
  }
  const Napi::Value trainable = options.Get("trainable");
  if (!trainable.IsUndefined()) {
    if (!trainable.IsArray()) throw Error(code::kInvalidArgument, "trainer option trainable must be an array of strings");
    const Napi::Array prefixes = trainable.As<Napi::Array>();
    for (uint32_t i = 0; i < prefixes.Length(); ++i) {
      if (!prefixes.Get(i).IsString()) throw Error(code::kInvalidArgument, "trainer option trainable must be an array of strings");
      result.trainable.push_back(prefixes.Get(i).As<Napi::String>());
    }
  }
  return result;
}

TrainerWrap::TrainerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TrainerWrap>(info) {
  trainer_ = wrappedObject<Trainer>(info, "finetune()");
  countTrainer(+1);
}

TrainerWrap::~TrainerWrap() { release(); }

void TrainerWrap::release() {
  if (!trainer_) return;
  countTrainer(-1);
  trainer_.reset();
  if (liveObjects() == 0) releaseCpuCache();
}

std::shared_ptr<Trainer> TrainerWrap::live() const {
  if (!trainer_) throw Error(code::kDisposed, "this fine-tuning run has been disposed");
  return trainer_;
}

Napi::Value TrainerWrap::step(const Napi::CallbackInfo& info) {
  return guard(info.Env(), code::kForward, [&]() -> Napi::Value {
    auto trainer = live();
    auto inputs = inputsFromJs(info[0]);
    if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
      throw Error(code::kInvalidArgument, "step(input, labels, ...): labels must be an Int32Array");
    }
    const Napi::Int32Array labelArray = info[1].As<Napi::Int32Array>();
    at::Tensor labels = at::empty({static_cast<int64_t>(labelArray.ElementLength())}, at::kInt);
    std::copy(labelArray.Data(), labelArray.Data() + labelArray.ElementLength(), labels.data_ptr<int32_t>());
    std::optional<at::Tensor> teacher;
    if (!info[2].IsNull() && !info[2].IsUndefined()) teacher = tensorFromJs(info[2], "teacher logits");
    if (!info[3].IsNumber() || !info[4].IsNumber()) throw Error(code::kInvalidArgument, "step(): lr and step index must be numbers");
    const double lr = info[3].As<Napi::Number>().DoubleValue();
    const int64_t stepIndex = info[4].As<Napi::Number>().Int64Value();
    const bool stop = info[5].ToBoolean().Value();
    return Job<StepResult>::start(
        info.Env(), code::kForward,
        [trainer, inputs = std::move(inputs), labels, teacher, lr, stepIndex, stop]() mutable {
          return trainer->step(std::move(inputs), labels, teacher, lr, stepIndex, stop);
        },
        [](Napi::Env env, StepResult& r) -> Napi::Value {
          Napi::Object result = Napi::Object::New(env);
          result.Set("loss", r.loss);
          result.Set("crossEntropy", r.crossEntropy);
          result.Set("distillation", r.distillation);
          result.Set("gradNorm", r.gradNorm);
          result.Set("correct", static_cast<double>(r.correct));
          result.Set("count", static_cast<double>(r.count));
          result.Set("communicationMs", r.communicationMs);
          result.Set("skipped", r.skipped);
          result.Set("lossScale", r.lossScale);
          return result;
        });
  });
}

Napi::Value TrainerWrap::snapshot(const Napi::CallbackInfo& info) {
  return guard(info.Env(), code::kInternal, [&]() -> Napi::Value {
    auto trainer = live();
    return Job<std::shared_ptr<TorchModel>>::start(
        info.Env(), code::kInternal, [trainer]() { return trainer->snapshot(); },
        [](Napi::Env env, std::shared_ptr<TorchModel>& model) -> Napi::Value { return ModelWrap::wrap(env, std::move(model)); });
  });
}

Napi::Value TrainerWrap::checkpoint(const Napi::CallbackInfo& info) {
  return guard(info.Env(), code::kModelSave, [&]() -> Napi::Value {
    auto trainer = live();
    if (!info[0].IsString() || !info[1].IsString() || !info[2].IsString()) {
      throw Error(code::kInvalidArgument, "checkpoint(path, card, state): three strings expected");
    }
    const std::string path = info[0].As<Napi::String>();
    torch::jit::ExtraFilesMap extras;
    const std::string card = info[1].As<Napi::String>();
    if (!card.empty()) extras[kModelCardEntry] = card;
    extras[kFinetuneStateEntry] = info[2].As<Napi::String>().Utf8Value();
    return Job<bool>::start(
        info.Env(), code::kModelSave,
        [trainer, path, extras]() {
          trainer->checkpoint(path, extras);
          return true;
        },
        [](Napi::Env env, bool&) -> Napi::Value { return env.Undefined(); });
  });
}

Napi::Value TrainerWrap::info(const Napi::CallbackInfo& info) {
  return guard(info.Env(), code::kInternal, [&]() -> Napi::Value {
    auto trainer = live();
    Napi::Object result = Napi::Object::New(info.Env());
    result.Set("honoursTrainMode", trainer->mode().honoursTrainMode);
    result.Set("frozenOff", stringsToJs(info.Env(), trainer->mode().frozenOff));
    result.Set("trainableParameters", static_cast<double>(trainer->trainableCount()));
    result.Set("parameters", static_cast<double>(trainer->parameterCount()));
    return result;
  });
}

Napi::Value TrainerWrap::dispose(const Napi::CallbackInfo& info) {
  release();
  return info.Env().Undefined();
}

}  // namespace vbp::js
