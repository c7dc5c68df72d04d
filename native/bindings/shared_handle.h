// Hands a core object (held by shared_ptr) to a new JS wrapper object: the constructor of an ObjectWrap
// receives it as an External, so JS code cannot construct wrappers itself.
#pragma once

#include <napi.h>

#include <memory>

namespace vbp::js {

template <typename T>
Napi::Object newWrapper(Napi::Env env, const Napi::FunctionReference& constructor, std::shared_ptr<T> object) {
  auto* holder = new std::shared_ptr<T>(std::move(object));
  auto external = Napi::External<std::shared_ptr<T>>::New(env, holder, [](Napi::Env, std::shared_ptr<T>* p) { delete p; });
  return constructor.New({external});
}

// In a wrapper's constructor: the object passed by newWrapper(), or a TypeError naming the factory. The
// object is moved out of the External, so the wrapper holds the only reference and dispose() frees it at
// once; the External itself lives until the garbage collector takes it, holding nothing.
template <typename T>
std::shared_ptr<T> wrappedObject(const Napi::CallbackInfo& info, const char* madeBy) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw Napi::TypeError::New(info.Env(), std::string("these objects are made by ") + madeBy + ", not with new");
  }
  std::shared_ptr<T>* holder = info[0].As<Napi::External<std::shared_ptr<T>>>().Data();
  if (!*holder) throw Napi::TypeError::New(info.Env(), std::string("this handle was already used; objects are made by ") + madeBy);
  return std::move(*holder);
}

}  // namespace vbp::js
