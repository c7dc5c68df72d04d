#include "bindings/js_errors.h"

namespace vbp::js {

Napi::Error makeError(Napi::Env env, const ErrorInfo& info) {
  Napi::Error error = Napi::Error::New(env, info.message);
  error.Value().Set("code", info.code);
  if (!info.detail.empty()) error.Value().Set("detail", info.detail);
  return error;
}

}  // namespace vbp::js
