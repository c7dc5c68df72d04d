// Hooks for the test suite only (lib/native/addon.ts types them as `_testHooks`): reaching states of the
// core that no public call reaches deterministically (a foreign block freed through our allocator, a pool
// thread's own thread count, an allocation failure).
#pragma once

#include <napi.h>

namespace vbp::js {

Napi::Object testHooks(Napi::Env env);

}  // namespace vbp::js
