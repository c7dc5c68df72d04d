// Image preprocessing in the native core, as JS sees it: one JPEG (a file or its bytes) through torchvision's
// evaluation transform into a Float32Array, on the libuv pool.
#pragma once

#include <napi.h>

namespace vbp::js {

// Adds evalTransformJpeg(input: string | { file, offset, length } | Uint8Array, options, target: Float32Array):
// Promise<string | null> to `exports`: null when the item is written, else why this path does not take the file.
void defineImages(Napi::Env env, Napi::Object exports);

}  // namespace vbp::js
