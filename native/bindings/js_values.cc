#include "bindings/js_values.h"

#include <cmath>
#include <cstring>

#include "core/errors.h"

namespace vbp::js {
namespace {

c10::ScalarType dtypeOfTypedArray(napi_typedarray_type type, const std::string& what) {
  switch (type) {
    case napi_float32_array:
      return at::kFloat;
    case napi_float64_array:
      return at::kDouble;
    case napi_int32_array:
      return at::kInt;
    case napi_bigint64_array:
      return at::kLong;
    case napi_int16_array:
      return at::kShort;
    case napi_int8_array:
      return at::kChar;
    case napi_uint8_array:
      return at::kByte;
    default:
      throw Error(code::kInputDtype, what +
                                         ".data has an unsupported element type; use Float32Array, Float64Array, "
                                         "Int32Array, BigInt64Array, Int16Array, Int8Array or Uint8Array");
  }
}

template <typename ArrayType, typename Element>
Napi::Value copyOut(Napi::Env env, const at::Tensor& t) {
  auto array = ArrayType::New(env, static_cast<size_t>(t.numel()));
  if (t.numel() > 0) std::memcpy(array.Data(), t.data_ptr(), static_cast<size_t>(t.numel()) * sizeof(Element));
  return array;
}

}  // namespace

at::Tensor tensorFromJs(const Napi::Value& value, const std::string& what) {
  if (!value.IsObject()) throw Error(code::kInput, what + " must be a tensor { data: TypedArray, shape: number[] }");
  const Napi::Object object = value.As<Napi::Object>();
  const Napi::Value data = object.Get("data");
  const Napi::Value shapeValue = object.Get("shape");
  if (!data.IsTypedArray()) throw Error(code::kInput, what + ".data must be a TypedArray (e.g. Float32Array)");
  if (!shapeValue.IsArray()) throw Error(code::kInputShape, what + ".shape must be an array of sizes");

  const Napi::Array shapeArray = shapeValue.As<Napi::Array>();
  std::vector<int64_t> shape;
  double expected = 1;
  for (uint32_t i = 0; i < shapeArray.Length(); ++i) {
    const Napi::Value dim = shapeArray.Get(i);
    const double size = dim.IsNumber() ? dim.As<Napi::Number>().DoubleValue() : -1;
    if (!(size >= 0) || std::floor(size) != size || size > 9007199254740991.0) {
      throw Error(code::kInputShape, what + ".shape[" + std::to_string(i) + "] must be a non-negative integer");
    }
    shape.push_back(static_cast<int64_t>(size));
    expected *= size;
  }
  const Napi::TypedArray typed = data.As<Napi::TypedArray>();
  const c10::ScalarType dtype = dtypeOfTypedArray(typed.TypedArrayType(), what);
  if (expected != static_cast<double>(typed.ElementLength())) {
    throw Error(code::kInputShape, what + ": shape [" + c10::Join(", ", shape) + "] needs " + std::to_string(static_cast<int64_t>(expected)) +
                                       " elements but data has " + std::to_string(typed.ElementLength()));
  }
  at::Tensor tensor = at::empty(shape, at::TensorOptions().dtype(dtype));
  const auto* bytes = static_cast<const uint8_t*>(typed.ArrayBuffer().Data()) + typed.ByteOffset();
  if (tensor.numel() > 0) std::memcpy(tensor.data_ptr(), bytes, tensor.nbytes());
  return tensor;
}

std::vector<c10::IValue> inputsFromJs(const Napi::Value& value) {
  std::vector<c10::IValue> inputs;
  if (value.IsArray()) {
    const Napi::Array array = value.As<Napi::Array>();
    for (uint32_t i = 0; i < array.Length(); ++i) {
      inputs.emplace_back(tensorFromJs(array.Get(i), "input[" + std::to_string(i) + "]"));
    }
  } else {
    inputs.emplace_back(tensorFromJs(value, "input"));
  }
  return inputs;
}

Napi::Array shapeToJs(Napi::Env env, c10::IntArrayRef shape) {
  Napi::Array array = Napi::Array::New(env, shape.size());
  for (size_t i = 0; i < shape.size(); ++i) array.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(shape[i])));
  return array;
}

Napi::Value tensorToJs(Napi::Env env, const at::Tensor& t) {
  Napi::Object result = Napi::Object::New(env);
  Napi::Value data;
  std::string dtype;
  switch (t.scalar_type()) {
    case at::kFloat:
      data = copyOut<Napi::Float32Array, float>(env, t);
      dtype = "float32";
      break;
    case at::kDouble:
      data = copyOut<Napi::Float64Array, double>(env, t);
      dtype = "float64";
      break;
    case at::kInt:
      data = copyOut<Napi::Int32Array, int32_t>(env, t);
      dtype = "int32";
      break;
    case at::kLong:
      data = copyOut<Napi::BigInt64Array, int64_t>(env, t);
      dtype = "int64";
      break;
    case at::kShort:
      data = copyOut<Napi::Int16Array, int16_t>(env, t);
      dtype = "int16";
      break;
    case at::kChar:
      data = copyOut<Napi::Int8Array, int8_t>(env, t);
      dtype = "int8";
      break;
    case at::kByte:
      data = copyOut<Napi::Uint8Array, uint8_t>(env, t);
      dtype = "uint8";
      break;
    case at::kBool:
      data = copyOut<Napi::Uint8Array, uint8_t>(env, t);
      dtype = "bool";
      break;
    default: {
      const at::Tensor widened = t.to(at::kDouble);
      data = copyOut<Napi::Float64Array, double>(env, widened);
      dtype = "float64";
    }
  }
  result.Set("data", data);
  result.Set("shape", shapeToJs(env, t.sizes()));
  result.Set("dtype", dtype);
  return result;
}

Napi::Value valueToJs(Napi::Env env, const c10::IValue& value) {
  if (value.isTensor()) return tensorToJs(env, value.toTensor());
  if (value.isNone()) return env.Null();
  if (value.isBool()) return Napi::Boolean::New(env, value.toBool());
  if (value.isInt()) return Napi::Number::New(env, static_cast<double>(value.toInt()));
  if (value.isDouble()) return Napi::Number::New(env, value.toDouble());
  if (value.isString()) return Napi::String::New(env, value.toStringRef());
  if (value.isTuple() || value.isList()) {
    std::vector<c10::IValue> items;
    if (value.isTuple()) {
      for (const auto& item : value.toTupleRef().elements()) items.push_back(item);
    } else {
      for (const auto& item : value.toListRef()) items.push_back(item);
    }
    Napi::Array array = Napi::Array::New(env, items.size());
    for (size_t i = 0; i < items.size(); ++i) array.Set(static_cast<uint32_t>(i), valueToJs(env, items[i]));
    return array;
  }
  if (value.isGenericDict()) {
    Napi::Object object = Napi::Object::New(env);
    for (const auto& entry : value.toGenericDict()) {
      const c10::IValue& key = entry.key();
      const std::string name = key.isString() ? key.toStringRef() : key.isInt() ? std::to_string(key.toInt()) : key.tagKind();
      object.Set(name, valueToJs(env, entry.value()));
    }
    return object;
  }
  throw Error(code::kForward, std::string("the model returned a value of unsupported type ") + value.tagKind());
}

Napi::Object macsToJs(Napi::Env env, const MacCount& count) {
  Napi::Object result = Napi::Object::New(env);
  result.Set("total", count.total);
  Napi::Object byKind = Napi::Object::New(env);
  for (const auto& [kind, macs] : count.byKind) byKind.Set(kind, macs);
  result.Set("byKind", byKind);
  return result;
}

}  // namespace vbp::js
