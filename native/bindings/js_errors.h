// Turns core errors into JS Error objects carrying a stable `code` (lib/errors.ts wraps them in VbpError).
#pragma once

#include <napi.h>

#include "core/errors.h"

namespace vbp::js {

Napi::Error makeError(Napi::Env env, const ErrorInfo& info);

// Runs `fn` on the main thread; a C++ exception becomes a thrown JS error with a code.
template <typename Fn>
auto guard(Napi::Env env, const char* fallbackCode, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw makeError(env, describeCurrentException(fallbackCode));
  }
}

}  // namespace vbp::js
