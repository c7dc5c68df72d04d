#include "bindings/model_wrap.h"

#include "bindings/addon.h"
#include "bindings/async_job.h"
#include "bindings/js_mlp.h"
#include "bindings/js_values.h"
#include "bindings/saliency_wrap.h"
#include "bindings/session_wrap.h"
#include "bindings/shared_handle.h"
#include "bindings/trainer_wrap.h"
#include "core/compensated_selection.h"
#include "core/cpu_cache.h"
#include "core/device.h"
#include "core/macs.h"
#include "core/memory_stats.h"
#include "core/prune.h"
#include "core/tap.h"

namespace vbp::js {

Napi::Function ModelWrap::define(Napi::Env env) {
  return DefineClass(env, "NativeModel",
                     {
                         InstanceMethod<&ModelWrap::forward>("forward"),
                         InstanceMethod<&ModelWrap::clone>("clone"),
                         InstanceMethod<&ModelWrap::save>("save"),
                         InstanceMethod<&ModelWrap::embeddedCard>("embeddedCard"),
                         InstanceMethod<&ModelWrap::submodules>("submodules"),
                         InstanceMethod<&ModelWrap::parameters>("parameters"),
                         InstanceMethod<&ModelWrap::namedTensor>("namedTensor"),
                         InstanceMethod<&ModelWrap::device>("device"),
                         InstanceMethod<&ModelWrap::dispose>("dispose"),
                         InstanceMethod<&ModelWrap::mlps>("mlps"),
                         InstanceMethod<&ModelWrap::createStatsSession>("createStatsSession"),
                         InstanceMethod<&ModelWrap::createSaliencySession>("createSaliencySession"),
                         InstanceMethod<&ModelWrap::neuronNorms>("neuronNorms"),
                         InstanceMethod<&ModelWrap::prune>("prune"),
                         InstanceMethod<&ModelWrap::compensatedSelection>("compensatedSelection"),
                         InstanceMethod<&ModelWrap::countMacs>("countMacs"),
                         InstanceMethod<&ModelWrap::forwardSync>("forwardSync"),
                         InstanceMethod<&ModelWrap::createTrainer>("createTrainer"),
                         InstanceMethod<&ModelWrap::checkpointState>("checkpointState"),
                     });
}

Napi::Object ModelWrap::wrap(Napi::Env env, std::shared_ptr<TorchModel> model) {
  return newWrapper(env, env.GetInstanceData<Addon>()->modelConstructor, std::move(model));
}

ModelWrap::ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info), env_(info.Env()) {
  model_ = wrappedObject<TorchModel>(info, "loadModel()");
  reportedBytes_ = model_->nativeBytes();
  Napi::MemoryManagement::AdjustExternalMemory(env_, reportedBytes_);
  countModel(reportedBytes_, +1);
}

ModelWrap::~ModelWrap() { release(env_); }

void ModelWrap::release(Napi::Env env) {
  if (!model_) return;
  // The C call, not Napi::MemoryManagement: this also runs from the finalizer while a worker's environment
  // is torn down, where a failing call must not throw.
  int64_t ignored = 0;
  napi_adjust_external_memory(env, -reportedBytes_, &ignored);
  countModel(reportedBytes_, -1);
  reportedBytes_ = 0;
  model_.reset();
  // The last native object gone: the blocks cached for its work go back to the system.
  if (liveObjects() == 0) releaseCpuCache();
}

std::shared_ptr<TorchModel> ModelWrap::live(Napi::Env env) const {
  if (!model_) throw Error(code::kDisposed, "this model has been disposed");
  return model_;
}

Napi::Value ModelWrap::forward(const Napi::CallbackInfo& info) {
  return guard(info.Env(), code::kForward, [&]() -> Napi::Value {
    auto model = live(info.Env());
    auto inputs = inputsFromJs(info[0]);
    return Job<c10::IValue>::start(
        info.Env(), code::kForward, [model, inputs = std::move(inputs)]() mutable { return model->forward(std::move(inputs)); },
        [](Napi::Env env, c10::IValue& output) { return valueToJs(env, output); });
  });
}

// Forward on the calling thread: no thread-pool round trip (about 0.1-0.3 ms here), at the price of
// blocking the event loop for the whole forward. For tiny models at batch 1, and inside worker_threads.
Napi::Value ModelWrap::forwardSync(const Napi::CallbackInfo& info) {
  return guard(info.Env(), code::kForward, [&]() -> Napi::Value {
    auto model = live(info.Env());
    c10::IValue output = model->forward(inputsFromJs(info[0]));
    return valueToJs(info.Env(), output);
  });
}

Napi::Value ModelWrap::clone(const Napi::CallbackInfo& info) {
  return guard(info.Env(), code::kInternal, [&]() -> Napi::Value {
    auto model = live(info.Env());
    return Job<std::shared_ptr<TorchModel>>::start(
        info.Env(), code::kInternal, [model]() { return model->clone(); },
        [](Napi::Env env, std::shared_ptr<TorchModel>& copy) -> Napi::Value { return wrap(env, std::move(copy)); });
  });
}

Napi::Value ModelWrap::save(const Napi::CallbackInfo& info) {
  return guard(info.Env(), code::kModelSave, [&]() -> Napi::Value {
    auto model = live(info.Env());
    if (!info[0].IsString()) throw Error(code::kInvalidArgument, "save(path, card): path must be a string");
    if (!info[1].IsUndefined() && !info[1].IsString()) throw Error(code::kInvalidArgument, "save(path, card): card must be a string");
    std::string path = info[0].As<Napi::String>();
    std::string card = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
    return Job<bool>::start(
        info.Env(), code::kModelSave,
        [model, path, card]() {
          model->save(path, card);
          return true;
        },
        [](Napi::Env env, bool&) -> Napi::Value { return env.Undefined(); });
  });
}

Napi::Value ModelWrap::embeddedCard(const Napi::CallbackInfo& info) {
  return guard(info.Env(), code::kInternal, [&]() -> Napi::Value {
    const std::string& card = live(info.Env())->embeddedCard();
    return card.empty() ? info.Env().Null() : Napi::String::New(info.Env(), card);
  });
}

// A trainer on a copy of this model; with `resume`, continuing the optimizer state of the checkpoint it was loaded from.
Napi::Value ModelWrap::createTrainer(const Napi::CallbackInfo& info) {
  return guard(info.Env(), code::kInvalidArgument, [&]() -> Napi::Value {
    auto model = live(info.Env());
    TrainerOptions options = TrainerWrap::optionsFromJs(info[0]);
    const bool resume = info[1].ToBoolean().Value();
    if (resume && model->embeddedExtra(kOptimizerStateEntry).empty()) {
      throw Error(code::kInvalidArgument, "this model was not loaded from a fine-tuning checkpoint: it holds no optimizer state");
    }
    return Job<std::shared_ptr<Trainer>>::start(
        info.Env(), code::kInternal,
        [model, options, resume]() {
          return std::make_shared<Trainer>(*model, options, resume ? model->embeddedExtra(kOptimizerStateEntry) : std::string());
        },
        [](Napi::Env env, std::shared_ptr<Trainer>& trainer) -> Napi::Value { return TrainerWrap::wrap(env, std::move(trainer)); });
  });
}

Napi::Value ModelWrap::checkpointState(const Napi::CallbackInfo& info) {
  return guard(info.Env(), code::kInternal, [&]() -> Napi::Value {
    const std::string& state = live(info.Env())->embeddedExtra(kFinetuneStateEntry);
    return state.empty() ? info.Env().Null() : Napi::String::New(info.Env(), state);
  });
}

Napi::Value ModelWrap::submodules(const Napi::CallbackInfo& info) {
  return guard(info.Env(), code::kInternal, [&]() -> Napi::Value {
    const auto items = live(info.Env())->submodules();
    Napi::Array array = Napi::Array::New(info.Env(), items.size());
    for (size_t i = 0; i < items.size(); ++i) {
      Napi::Object entry = Napi::Object::New(info.Env());
      entry.Set("name", items[i].name);
      entry.Set("type", items[i].typeName);
      array.Set(static_cast<uint32_t>(i), entry);
    }
    return array;
  });
}

Napi::Value ModelWrap::parameters(const Napi::CallbackInfo& info) {
  return guard(info.Env(), code::kInternal, [&]() -> Napi::Value {
    const auto items = live(info.Env())->parameters();
    Napi::Array array = Napi::Array::New(info.Env(), items.size());
    for (size_t i = 0; i < items.size(); ++i) {
      Napi::Object entry = Napi::Object::New(info.Env());
      entry.Set("name", items[i].name);
      entry.Set("shape", shapeToJs(info.Env(), items[i].shape));
      entry.Set("numel", static_cast<double>(items[i].numel));
      entry.Set("dtype", items[i].dtype);
      array.Set(static_cast<uint32_t>(i), entry);
    }
    return array;
  });
}

Napi::Value ModelWrap::namedTensor(const Napi::CallbackInfo& info) {
  return guard(info.Env(), code::kInvalidArgument, [&]() -> Napi::Value {
    auto model = live(info.Env());
    if (!info[0].IsString()) throw Error(code::kInvalidArgument, "parameter(name): name must be a string");
    const std::string name = info[0].As<Napi::String>();
    return Job<at::Tensor>::start(
        info.Env(), code::kInvalidArgument, [model, name]() { return model->namedTensor(name); },
        [](Napi::Env env, at::Tensor& tensor) { return tensorToJs(env, tensor); });
  });
}

Napi::Value ModelWrap::device(const Napi::CallbackInfo& info) {
  return guard(info.Env(), code::kInternal, [&]() -> Napi::Value { return Napi::String::New(info.Env(), deviceName(live(info.Env())->device())); });
}

Napi::Value ModelWrap::dispose(const Napi::CallbackInfo& info) {
  release(info.Env());
  return info.Env().Undefined();
}

namespace {

using MlpPairs = std::optional<std::vector<std::pair<std::string, std::string>>>;

// The blocks to work on: the user's pairs (checked against the model) or every block found by structure.
std::vector<MlpBlock> blocksOf(const TorchModel& model, const MlpPairs& pairs, bool requireSome) {
  std::vector<MlpBlock> blocks = pairs ? resolveMlps(model.module(), *pairs) : findMlps(model.module());
  if (requireSome && blocks.empty()) {
    throw Error(code::kNoMlp, pairs ? "the list of MLP blocks is empty"
                                    : "no MLP block (Linear -> element-wise ops -> Linear) was found in this model; "
                                      "pass the blocks explicitly with the mlps option if the model has some");
  }
  return blocks;
}

}  // namespace

Napi::Value ModelWrap::mlps(const Napi::CallbackInfo& info) {
  return guard(info.Env(), code::kMlpSpec, [&]() -> Napi::Value {
    auto model = live(info.Env());
    MlpPairs pairs = mlpPairsFromJs(info[0]);
    return Job<std::vector<MlpBlock>>::start(
        info.Env(), code::kMlpSpec, [model, pairs]() { return blocksOf(*model, pairs, false); },
        [](Napi::Env env, std::vector<MlpBlock>& blocks) -> Napi::Value { return mlpsToJs(env, blocks); });
  });
}

Napi::Value ModelWrap::createStatsSession(const Napi::CallbackInfo& info) {
  return guard(info.Env(), code::kStats, [&]() -> Napi::Value {
    auto model = live(info.Env());
    MlpPairs pairs = mlpPairsFromJs(info[0]);
    const CovarianceOptions covariance = covarianceOptionsFromJs(info[1]);
    const bool optimizeGraph = info[1].IsObject() && info[1].As<Napi::Object>().Get("optimizeGraph").ToBoolean().Value();
    return Job<std::shared_ptr<StatsSession>>::start(
        info.Env(), code::kStats,
        [model, pairs, covariance, optimizeGraph]() {
          return std::make_shared<StatsSession>(*model, blocksOf(*model, pairs, true), covariance, optimizeGraph);
        },
        [](Napi::Env env, std::shared_ptr<StatsSession>& session) -> Napi::Value { return SessionWrap::wrap(env, std::move(session)); });
  });
}

// createSaliencySession(specs?): SNIP scoring on a private copy of the model (see core/saliency.h).
Napi::Value ModelWrap::createSaliencySession(const Napi::CallbackInfo& info) {
  return guard(info.Env(), code::kStats, [&]() -> Napi::Value {
    auto model = live(info.Env());
    MlpPairs pairs = mlpPairsFromJs(info[0]);
    return Job<std::shared_ptr<SaliencySession>>::start(
        info.Env(), code::kStats, [model, pairs]() { return std::make_shared<SaliencySession>(*model, blocksOf(*model, pairs, true)); },
        [](Napi::Env env, std::shared_ptr<SaliencySession>& session) -> Napi::Value { return SaliencyWrap::wrap(env, std::move(session)); });
  });
}

Napi::Value ModelWrap::neuronNorms(const Napi::CallbackInfo& info) {
  return guard(info.Env(), code::kMlpSpec, [&]() -> Napi::Value {
    auto model = live(info.Env());
    MlpPairs pairs = mlpPairsFromJs(info[0]);
    return Job<std::vector<NeuronNorms>>::start(
        info.Env(), code::kMlpSpec, [model, pairs]() { return vbp::neuronNorms(*model, blocksOf(*model, pairs, true)); },
        [](Napi::Env env, std::vector<NeuronNorms>& norms) -> Napi::Value {
          Napi::Array array = Napi::Array::New(env, norms.size());
          for (size_t i = 0; i < norms.size(); ++i) {
            Napi::Object item = Napi::Object::New(env);
            item.Set("fc1RowSq", tensorToJs(env, norms[i].fc1RowSq).As<Napi::Object>().Get("data"));
            item.Set("fc2ColSq", tensorToJs(env, norms[i].fc2ColSq).As<Napi::Object>().Get("data"));
            array.Set(static_cast<uint32_t>(i), item);
          }
          return array;
        });
  });
}

Napi::Value ModelWrap::prune(const Napi::CallbackInfo& info) {
  return guard(info.Env(), code::kPrune, [&]() -> Napi::Value {
    auto model = live(info.Env());
    std::vector<LayerCut> cuts = cutsFromJs(info[0]);
    const Compensation compensation = compensationFromJs(info[1], info[2]);
    return Job<std::shared_ptr<TorchModel>>::start(
        info.Env(), code::kPrune, [model, cuts = std::move(cuts), compensation]() { return pruneModel(*model, cuts, compensation); },
        [](Napi::Env env, std::shared_ptr<TorchModel>& pruned) -> Napi::Value { return wrap(env, std::move(pruned)); });
  });
}

// compensatedSelection([{ fc2, covariance: Float64Array }], count, ridge) -> removed indices per block.
Napi::Value ModelWrap::compensatedSelection(const Napi::CallbackInfo& info) {
  return guard(info.Env(), code::kPlan, [&]() -> Napi::Value {
    auto model = live(info.Env());
    if (!info[1].IsNumber() || !info[2].IsNumber()) {
      throw Error(code::kInvalidArgument, "compensatedSelection(blocks, count, ridge): count and ridge must be numbers");
    }
    SelectionInput input = selectionInputFromJs(info[0]);
    const int64_t count = info[1].As<Napi::Number>().Int64Value();
    const double ridge = info[2].As<Napi::Number>().DoubleValue();
    return Job<std::vector<std::vector<int64_t>>>::start(
        info.Env(), code::kPlan,
        [model, input = std::move(input), count, ridge]() {
          torch::NoGradGuard noGrad;
          return compensatedRemovals(selectionBlocks(*model, input.fc2Paths, input.covariances), count, ridge);
        },
        [](Napi::Env env, std::vector<std::vector<int64_t>>& removed) -> Napi::Value {
          Napi::Array result = Napi::Array::New(env, removed.size());
          for (size_t b = 0; b < removed.size(); ++b) {
            auto indices = Napi::Int32Array::New(env, removed[b].size());
            for (size_t j = 0; j < removed[b].size(); ++j) indices[j] = static_cast<int32_t>(removed[b][j]);
            result.Set(static_cast<uint32_t>(b), indices);
          }
          return result;
        });
  });
}

Napi::Value ModelWrap::countMacs(const Napi::CallbackInfo& info) {
  return guard(info.Env(), code::kForward, [&]() -> Napi::Value {
    auto model = live(info.Env());
    auto inputs = inputsFromJs(info[0]);
    return Job<MacCount>::start(
        info.Env(), code::kForward, [model, inputs = std::move(inputs)]() mutable { return vbp::countMacs(*model, std::move(inputs)); },
        [](Napi::Env env, MacCount& count) -> Napi::Value { return macsToJs(env, count); });
  });
}

}  // namespace vbp::js
