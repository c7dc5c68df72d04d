// Conversion between JS values and LibTorch values. A tensor crosses as { data: TypedArray, shape: number[] }
// and is copied exactly once in each direction.
#pragma once

#include <napi.h>
#include <torch/script.h>

#include "core/macs.h"

#include <string>
#include <vector>

namespace vbp::js {

// { data, shape } -> a CPU tensor owning a copy of the data. Throws vbp::Error(INPUT_SHAPE / INPUT_DTYPE / INPUT).
at::Tensor tensorFromJs(const Napi::Value& value, const std::string& what);

// A tensor, or an array of tensors, -> forward's arguments.
std::vector<c10::IValue> inputsFromJs(const Napi::Value& value);

// A host value (see core valueToHost) -> tensors as { data, shape, dtype }, tuples and lists as arrays,
// string-keyed dicts as objects, scalars as numbers, booleans and strings, None as null.
Napi::Value valueToJs(Napi::Env env, const c10::IValue& value);

Napi::Value tensorToJs(Napi::Env env, const at::Tensor& hostTensor);

Napi::Array shapeToJs(Napi::Env env, c10::IntArrayRef shape);

// { total, byKind: { linear, matmul, conv, attention } }
Napi::Object macsToJs(Napi::Env env, const MacCount& count);

}  // namespace vbp::js
