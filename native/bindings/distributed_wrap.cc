#include "bindings/distributed_wrap.h"

#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "bindings/async_job.h"
#include "bindings/js_errors.h"
#include "core/errors.h"

namespace vbp::js {

namespace {

std::mutex groupMutex;
std::shared_ptr<DistributedGroup> group;  // the process's, shared by every environment of it

std::shared_ptr<DistributedGroup> joined() {
  auto current = currentDistributedGroup();
  if (!current) throw Error(code::kDistributed, "no process group: call initDistributed() first");
  return current;
}

// Float64Array or Float32Array -> a CPU tensor holding a copy (collectives then run off the main thread).
at::Tensor copyOfTypedArray(const Napi::Value& value, const char* what) {
  if (!value.IsTypedArray()) throw Error(code::kInvalidArgument, std::string(what) + ": expected Float64Array or Float32Array values");
  const Napi::TypedArray array = value.As<Napi::TypedArray>();
  const auto length = static_cast<int64_t>(array.ElementLength());
  const void* data = static_cast<const uint8_t*>(array.ArrayBuffer().Data()) + array.ByteOffset();
  switch (array.TypedArrayType()) {
    case napi_float64_array:
      return at::from_blob(const_cast<void*>(data), {length}, at::kDouble).clone();
    case napi_float32_array:
      return at::from_blob(const_cast<void*>(data), {length}, at::kFloat).clone();
    default:
      throw Error(code::kInvalidArgument, std::string(what) + ": expected Float64Array or Float32Array values");
  }
}

void copyIntoTypedArray(const at::Tensor& tensor, const Napi::TypedArray& array) {
  void* data = static_cast<uint8_t*>(array.ArrayBuffer().Data()) + array.ByteOffset();
  std::memcpy(data, tensor.data_ptr(), tensor.numel() * tensor.element_size());
}

struct InPlace {
  std::vector<at::Tensor> tensors;
  std::vector<Napi::Reference<Napi::TypedArray>> arrays;
};

InPlace inPlaceArgument(const Napi::Value& value, const char* what) {
  if (!value.IsArray()) throw Error(code::kInvalidArgument, std::string(what) + ": expected an array of Float64Array or Float32Array");
  const Napi::Array list = value.As<Napi::Array>();
  InPlace result;
  for (uint32_t i = 0; i < list.Length(); ++i) {
    const Napi::Value item = list.Get(i);
    result.tensors.push_back(copyOfTypedArray(item, what));
    result.arrays.push_back(Napi::Persistent(item.As<Napi::TypedArray>()));
  }
  return result;
}

// Runs `collective` on the tensors off the main thread, then writes the results back into the JS arrays.
Napi::Value inPlaceCollective(Napi::Env env, const Napi::Value& arrays, const char* what,
                              std::function<void(DistributedGroup&, std::vector<at::Tensor>&)> collective) {
  auto target = std::make_shared<InPlace>(inPlaceArgument(arrays, what));
  auto tensors = std::make_shared<std::vector<at::Tensor>>(target->tensors);
  auto current = joined();
  return Job<bool>::start(
      env, code::kDistributed,
      [current, tensors, collective]() {
        collective(*current, *tensors);
        return true;
      },
      [target, tensors](Napi::Env env, bool&) -> Napi::Value {
        for (size_t i = 0; i < tensors->size(); ++i) copyIntoTypedArray((*tensors)[i], target->arrays[i].Value());
        return env.Undefined();
      });
}

DistributedConfig configFromJs(const Napi::Value& value) {
  if (!value.IsObject()) throw Error(code::kInvalidArgument, "initDistributed: expected an options object");
  const Napi::Object o = value.As<Napi::Object>();
  DistributedConfig config;
  config.backend = o.Get("backend").ToString().Utf8Value();
  config.masterAddr = o.Get("masterAddr").ToString().Utf8Value();
  config.masterPort = o.Get("masterPort").ToNumber().Int32Value();
  config.rank = o.Get("rank").ToNumber().Int32Value();
  config.worldSize = o.Get("worldSize").ToNumber().Int32Value();
  config.timeout = std::chrono::milliseconds(static_cast<int64_t>(o.Get("timeoutMs").ToNumber().DoubleValue()));
  return config;
}

Napi::Value backends(const Napi::CallbackInfo& info) {
  Napi::Array result = Napi::Array::New(info.Env());
  uint32_t i = 0;
  for (const auto& name : distributedBackends()) result.Set(i++, name);
  return result;
}

Napi::Value init(const Napi::CallbackInfo& info) {
  return guard(info.Env(), code::kDistributed, [&]() -> Napi::Value {
    const DistributedConfig config = configFromJs(info[0]);
    if (currentDistributedGroup()) throw Error(code::kDistributed, "this process already joined a group: call destroyDistributed() first");
    return Job<std::shared_ptr<DistributedGroup>>::start(
        info.Env(), code::kDistributed, [config]() { return DistributedGroup::join(config); },
        [](Napi::Env env, std::shared_ptr<DistributedGroup>& joinedGroup) -> Napi::Value {
          {
            std::lock_guard<std::mutex> lock(groupMutex);
            group = joinedGroup;
          }
          Napi::Object result = Napi::Object::New(env);
          result.Set("rank", joinedGroup->rank());
          result.Set("worldSize", joinedGroup->worldSize());
          result.Set("backend", joinedGroup->config().backend);
          return result;
        });
  });
}

Napi::Value destroy(const Napi::CallbackInfo& info) {
  std::shared_ptr<DistributedGroup> leaving;
  {
    std::lock_guard<std::mutex> lock(groupMutex);
    leaving = std::move(group);
    group.reset();
  }
  return Napi::Boolean::New(info.Env(), static_cast<bool>(leaving));
}

Napi::Value allreduce(const Napi::CallbackInfo& info) {
  return guard(info.Env(), code::kDistributed, [&]() -> Napi::Value {
    return inPlaceCollective(info.Env(), info[0], "allreduce", [](DistributedGroup& g, std::vector<at::Tensor>& t) { g.allreduceSum(t); });
  });
}

Napi::Value broadcast(const Napi::CallbackInfo& info) {
  return guard(info.Env(), code::kDistributed, [&]() -> Napi::Value {
    const int root = info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 0;
    return inPlaceCollective(info.Env(), info[0], "broadcast", [root](DistributedGroup& g, std::vector<at::Tensor>& t) { g.broadcast(t, root); });
  });
}

Napi::Value allgather(const Napi::CallbackInfo& info) {
  return guard(info.Env(), code::kDistributed, [&]() -> Napi::Value {
    const at::Tensor input = copyOfTypedArray(info[0], "allgather");
    auto current = joined();
    return Job<std::vector<at::Tensor>>::start(
        info.Env(), code::kDistributed, [current, input]() { return current->allgather(input); },
        [](Napi::Env env, std::vector<at::Tensor>& parts) -> Napi::Value {
          Napi::Array result = Napi::Array::New(env, parts.size());
          for (uint32_t i = 0; i < parts.size(); ++i) {
            const at::Tensor& part = parts[i];
            const size_t n = static_cast<size_t>(part.numel());
            if (part.scalar_type() == at::kDouble) {
              Napi::Float64Array array = Napi::Float64Array::New(env, n);
              std::memcpy(array.Data(), part.data_ptr(), n * sizeof(double));
              result.Set(i, array);
            } else {
              Napi::Float32Array array = Napi::Float32Array::New(env, n);
              std::memcpy(array.Data(), part.data_ptr(), n * sizeof(float));
              result.Set(i, array);
            }
          }
          return result;
        });
  });
}

Napi::Value barrier(const Napi::CallbackInfo& info) {
  return guard(info.Env(), code::kDistributed, [&]() -> Napi::Value {
    auto current = joined();
    return Job<bool>::start(
        info.Env(), code::kDistributed,
        [current]() {
          current->barrier();
          return true;
        },
        [](Napi::Env env, bool&) -> Napi::Value { return env.Undefined(); });
  });
}

}  // namespace

std::shared_ptr<DistributedGroup> currentDistributedGroup() {
  std::lock_guard<std::mutex> lock(groupMutex);
  return group;
}

void defineDistributed(Napi::Env env, Napi::Object exports) {
  exports.Set("distributedBackends", Napi::Function::New(env, backends, "distributedBackends"));
  exports.Set("distributedInit", Napi::Function::New(env, init, "distributedInit"));
  exports.Set("distributedDestroy", Napi::Function::New(env, destroy, "distributedDestroy"));
  exports.Set("distributedAllreduce", Napi::Function::New(env, allreduce, "distributedAllreduce"));
  exports.Set("distributedBroadcast", Napi::Function::New(env, broadcast, "distributedBroadcast"));
  exports.Set("distributedAllgather", Napi::Function::New(env, allgather, "distributedAllgather"));
  exports.Set("distributedBarrier", Napi::Function::New(env, barrier, "distributedBarrier"));
}

}  // namespace vbp::js
