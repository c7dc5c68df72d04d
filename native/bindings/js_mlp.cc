#include "bindings/js_mlp.h"

#include <cmath>

#include "core/errors.h"

namespace vbp::js {
namespace {

std::string stringField(const Napi::Object& object, const char* name, const std::string& what) {
  const Napi::Value value = object.Get(name);
  if (!value.IsString()) throw Error(code::kPlan, what + "." + name + " must be a string");
  return value.As<Napi::String>();
}

// Numbers of a typed array or a plain array, as doubles; anything else is a PLAN error naming `what`.
std::vector<double> numbersFromJs(const Napi::Value& value, const std::string& what) {
  if (value.IsTypedArray()) {
    const Napi::TypedArray typed = value.As<Napi::TypedArray>();
    if (typed.TypedArrayType() == napi_int32_array) {
      const auto array = value.As<Napi::Int32Array>();
      return std::vector<double>(array.Data(), array.Data() + array.ElementLength());
    }
    if (typed.TypedArrayType() == napi_float64_array) {
      const auto array = value.As<Napi::Float64Array>();
      return std::vector<double>(array.Data(), array.Data() + array.ElementLength());
    }
  }
  if (!value.IsArray()) throw Error(code::kPlan, what + " must be an array of numbers");
  std::vector<double> result;
  const Napi::Array array = value.As<Napi::Array>();
  for (uint32_t i = 0; i < array.Length(); ++i) {
    const Napi::Value item = array.Get(i);
    if (!item.IsNumber()) throw Error(code::kPlan, what + "[" + std::to_string(i) + "] is not a number");
    result.push_back(item.As<Napi::Number>().DoubleValue());
  }
  return result;
}

// Neuron indices: whole numbers that fit an int64 exactly (NaN or 2.5 would be undefined behaviour to cast).
std::vector<int64_t> indicesFromJs(const Napi::Value& value, const std::string& what) {
  std::vector<int64_t> result;
  for (const double x : numbersFromJs(value, what)) {
    if (!std::isfinite(x) || std::floor(x) != x || std::fabs(x) > 9007199254740991.0) {
      throw Error(code::kPlan, what + " holds " + std::to_string(x) + ", not a neuron index (a whole number)");
    }
    result.push_back(static_cast<int64_t>(x));
  }
  return result;
}

std::vector<double> finiteFromJs(const Napi::Value& value, const std::string& what) {
  std::vector<double> result = numbersFromJs(value, what);
  for (const double x : result) {
    if (!std::isfinite(x)) throw Error(code::kPlan, what + " holds a NaN or infinite value");
  }
  return result;
}

}  // namespace

Napi::Array mlpsToJs(Napi::Env env, const std::vector<MlpBlock>& mlps) {
  Napi::Array array = Napi::Array::New(env, mlps.size());
  for (size_t i = 0; i < mlps.size(); ++i) {
    Napi::Object item = Napi::Object::New(env);
    item.Set("owner", mlps[i].owner);
    item.Set("fc1", mlps[i].fc1);
    item.Set("fc2", mlps[i].fc2);
    item.Set("inFeatures", static_cast<double>(mlps[i].inFeatures));
    item.Set("hidden", static_cast<double>(mlps[i].hidden));
    item.Set("outFeatures", static_cast<double>(mlps[i].outFeatures));
    item.Set("activation", mlps[i].activation);
    array.Set(static_cast<uint32_t>(i), item);
  }
  return array;
}

std::optional<std::vector<std::pair<std::string, std::string>>> mlpPairsFromJs(const Napi::Value& value) {
  if (value.IsUndefined() || value.IsNull()) return std::nullopt;
  if (!value.IsArray()) throw Error(code::kMlpSpec, "mlps must be an array of { fc1, fc2 }");
  std::vector<std::pair<std::string, std::string>> pairs;
  const Napi::Array array = value.As<Napi::Array>();
  for (uint32_t i = 0; i < array.Length(); ++i) {
    const Napi::Value item = array.Get(i);
    const std::string what = "mlps[" + std::to_string(i) + "]";
    if (!item.IsObject()) throw Error(code::kMlpSpec, what + " must be an object { fc1, fc2 }");
    const Napi::Object object = item.As<Napi::Object>();
    if (!object.Get("fc1").IsString() || !object.Get("fc2").IsString()) {
      throw Error(code::kMlpSpec, what + " must have string fields fc1 and fc2 (dotted submodule paths)");
    }
    pairs.emplace_back(object.Get("fc1").As<Napi::String>(), object.Get("fc2").As<Napi::String>());
  }
  return pairs;
}

std::vector<LayerCut> cutsFromJs(const Napi::Value& value) {
  if (!value.IsArray()) throw Error(code::kPlan, "the plan's layers must be an array");
  std::vector<LayerCut> cuts;
  const Napi::Array array = value.As<Napi::Array>();
  for (uint32_t i = 0; i < array.Length(); ++i) {
    const std::string what = "layers[" + std::to_string(i) + "]";
    if (!array.Get(i).IsObject()) throw Error(code::kPlan, what + " must be an object");
    const Napi::Object object = array.Get(i).As<Napi::Object>();
    LayerCut cut;
    cut.fc1 = stringField(object, "fc1", what);
    cut.fc2 = stringField(object, "fc2", what);
    cut.keep = indicesFromJs(object.Get("keep"), what + ".keep");
    const Napi::Value means = object.Get("prunedMeans");
    if (!means.IsUndefined() && !means.IsNull()) cut.prunedMeans = finiteFromJs(means, what + ".prunedMeans");
    const Napi::Value allMeans = object.Get("means");
    if (!allMeans.IsUndefined() && !allMeans.IsNull()) cut.means = finiteFromJs(allMeans, what + ".means");
    const Napi::Value covariance = object.Get("covariance");
    if (!covariance.IsUndefined() && !covariance.IsNull()) cut.covariance = finiteFromJs(covariance, what + ".covariance");
    cuts.push_back(std::move(cut));
  }
  return cuts;
}

SelectionInput selectionInputFromJs(const Napi::Value& value) {
  if (!value.IsArray()) throw Error(code::kInvalidArgument, "compensatedSelection: blocks must be an array");
  SelectionInput input;
  const Napi::Array blocks = value.As<Napi::Array>();
  for (uint32_t i = 0; i < blocks.Length(); ++i) {
    const Napi::Value item = blocks.Get(i);
    const Napi::Object block = item.IsObject() ? item.As<Napi::Object>() : Napi::Object::New(value.Env());
    const Napi::Value covariance = block.Get("covariance");
    if (!block.Get("fc2").IsString() || !covariance.IsTypedArray() || covariance.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
      throw Error(code::kInvalidArgument, "compensatedSelection: each block needs fc2 (a path) and covariance (a Float64Array)");
    }
    input.fc2Paths.push_back(block.Get("fc2").As<Napi::String>());
    const auto values = covariance.As<Napi::Float64Array>();
    input.covariances.emplace_back(values.Data(), values.Data() + values.ElementLength());
  }
  return input;
}

Compensation compensationFromJs(const Napi::Value& mode, const Napi::Value& ridge) {
  const std::string name = mode.IsString() ? mode.As<Napi::String>().Utf8Value() : "mean";
  if (name == "mean") return {CompensationKind::Mean, 0};
  if (name == "none") return {CompensationKind::None, 0};
  if (name != "lsq") throw Error(code::kInvalidArgument, "compensation must be 'mean', 'lsq' or 'none', got '" + name + "'");
  const double value = ridge.IsNumber() ? ridge.As<Napi::Number>().DoubleValue() : -1;
  if (!std::isfinite(value) || value < 0) throw Error(code::kInvalidArgument, "ridge must be a finite number >= 0");
  return {CompensationKind::LeastSquares, value};
}

CovarianceOptions covarianceOptionsFromJs(const Napi::Value& value) {
  CovarianceOptions options;
  if (value.IsUndefined() || value.IsNull()) return options;
  if (!value.IsObject()) throw Error(code::kInvalidArgument, "statistics options must be an object");
  const Napi::Object object = value.As<Napi::Object>();
  options.enabled = object.Get("covariance").ToBoolean();
  const Napi::Value type = object.Get("productType");
  if (type.IsString()) {
    const std::string name = type.As<Napi::String>();
    if (name != "float64" && name != "float32") throw Error(code::kInvalidArgument, "covariance product type must be 'float64' or 'float32'");
    options.productType = name == "float32" ? at::kFloat : at::kDouble;
  }
  const Napi::Value sampling = object.Get("sampling");
  if (sampling.IsNumber()) {
    options.sampling = sampling.As<Napi::Number>().DoubleValue();
    if (!(options.sampling > 0 && options.sampling <= 1)) throw Error(code::kInvalidArgument, "covariance sampling must be in (0, 1]");
  }
  return options;
}

}  // namespace vbp::js
