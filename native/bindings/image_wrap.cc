#include "bindings/image_wrap.h"

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "bindings/async_job.h"
#include "bindings/js_errors.h"
#include "core/errors.h"
#include "core/eval_transform.h"

namespace vbp::js {

namespace {

// The bytes of `file` from `offset`, `length` of them (a member of a tar shard), or the whole file (length < 0).
std::vector<uint8_t> readBytes(const std::string& file, int64_t offset, int64_t length) {
  std::ifstream in(file, std::ios::binary | std::ios::ate);
  if (!in) throw Error(code::kIo, "cannot open '" + file + "'");
  const int64_t size = static_cast<int64_t>(in.tellg());
  if (length < 0) length = size - offset;
  if (offset < 0 || offset + length > size) throw Error(code::kData, "'" + file + "' ends before byte " + std::to_string(offset + length));
  std::vector<uint8_t> bytes(static_cast<std::size_t>(length));
  in.seekg(offset);
  if (length > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), length)) throw Error(code::kIo, "cannot read '" + file + "'");
  return bytes;
}

EvalTransform transformFromJs(const Napi::Object& options) {
  EvalTransform t;
  t.resize = options.Get("resize").As<Napi::Number>().Int32Value();
  t.crop = options.Get("crop").As<Napi::Number>().Int32Value();
  if (t.resize < 1 || t.crop < 1 || t.crop > t.resize)
    throw Error(code::kInvalidArgument, "evalTransformJpeg: resize and crop must be positive, crop <= resize");
  const std::string filter = options.Get("filter").As<Napi::String>().Utf8Value();
  if (filter != "bicubic" && filter != "bilinear")
    throw Error(code::kInvalidArgument, "evalTransformJpeg: filter must be bicubic or bilinear, got " + filter);
  t.filter = filter == "bicubic" ? ResampleFilter::kBicubic : ResampleFilter::kBilinear;
  const Napi::Array mean = options.Get("mean").As<Napi::Array>();
  const Napi::Array std = options.Get("std").As<Napi::Array>();
  if (mean.Length() != 3 || std.Length() != 3) throw Error(code::kInvalidArgument, "evalTransformJpeg: mean and std need 3 values");
  for (uint32_t c = 0; c < 3; ++c) {
    t.mean[c] = static_cast<float>(mean.Get(c).As<Napi::Number>().DoubleValue());
    t.std[c] = static_cast<float>(std.Get(c).As<Napi::Number>().DoubleValue());
  }
  return t;
}

Napi::Value evalTransform(const Napi::CallbackInfo& info) {
  return guard(info.Env(), code::kData, [&]() -> Napi::Value {
    if (!info[1].IsObject() || !info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      throw Error(code::kInvalidArgument, "evalTransformJpeg(input, options, target: Float32Array)");
    const EvalTransform transform = transformFromJs(info[1].As<Napi::Object>());
    Napi::Float32Array target = info[2].As<Napi::Float32Array>();
    const std::size_t needed = static_cast<std::size_t>(3) * transform.crop * transform.crop;
    if (target.ElementLength() != needed)
      throw Error(code::kInvalidArgument,
                  "evalTransformJpeg: target holds " + std::to_string(target.ElementLength()) + " floats, the item " + std::to_string(needed));
    // The arrays stay referenced until the job has settled (its ToJs runs and is destroyed on this thread).
    auto keep = std::make_shared<std::vector<Napi::ObjectReference>>();
    keep->push_back(Napi::Persistent(target.As<Napi::Object>()));
    float* out = target.Data();
    std::string file;
    int64_t offset = 0;
    int64_t length = -1;
    const uint8_t* bytes = nullptr;
    std::size_t size = 0;
    if (info[0].IsString()) {
      file = info[0].As<Napi::String>().Utf8Value();
    } else if (info[0].IsObject() && !info[0].IsTypedArray() && info[0].As<Napi::Object>().Has("file")) {
      // A part of a file: { file, offset, length }.
      const Napi::Object range = info[0].As<Napi::Object>();
      file = range.Get("file").As<Napi::String>().Utf8Value();
      offset = range.Get("offset").As<Napi::Number>().Int64Value();
      length = range.Get("length").As<Napi::Number>().Int64Value();
      if (offset < 0 || length < 0) throw Error(code::kInvalidArgument, "evalTransformJpeg: a negative offset or length");
    } else if (info[0].IsTypedArray() && info[0].As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array) {
      Napi::Uint8Array input = info[0].As<Napi::Uint8Array>();
      keep->push_back(Napi::Persistent(input.As<Napi::Object>()));
      bytes = input.Data();
      size = input.ElementLength();
    } else {
      throw Error(code::kInvalidArgument, "evalTransformJpeg: input must be a file name, { file, offset, length } or a Uint8Array");
    }
    using Outcome = std::string;  // empty: written; else why not
    return Job<Outcome>::start(
        info.Env(), code::kData,
        [file, offset, length, bytes, size, transform, out]() -> Outcome {
          std::vector<uint8_t> read;
          const uint8_t* data = bytes;
          std::size_t count = size;
          if (!file.empty()) {
            read = readBytes(file, offset, length);
            data = read.data();
            count = read.size();
          }
          std::string why;
          if (evalTransformJpeg(data, count, transform, out, why)) return {};
          return why.empty() ? std::string("not taken") : why;
        },
        [keep](Napi::Env env, Outcome& why) -> Napi::Value {
          if (why.empty()) return env.Null();
          return Napi::String::New(env, why);
        });
  });
}

}  // namespace

void defineImages(Napi::Env env, Napi::Object exports) {
  exports.Set("evalTransformJpeg", Napi::Function::New(env, evalTransform, "evalTransformJpeg"));
}

}  // namespace vbp::js
