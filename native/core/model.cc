#include "core/model.h"

#include <c10/core/DeviceGuard.h>
#include <torch/csrc/jit/runtime/jit_exception.h>
#include <torch/serialize.h>
#include <torch/version.h>

#include <fstream>
#include <unordered_set>

#include "core/archive_check.h"
#include "core/archive_writer.h"
#include "core/errors.h"
#include "core/own_types.h"

namespace vbp {
namespace {

bool fileReadable(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return in.good();
}

template <typename Fn>
c10::IValue mapTensors(const c10::IValue& value, const Fn& fn) {
  if (value.isTensor()) return fn(value.toTensor());
  if (value.isTuple()) {
    std::vector<c10::IValue> items;
    for (const auto& item : value.toTupleRef().elements()) items.push_back(mapTensors(item, fn));
    return c10::ivalue::Tuple::create(std::move(items));
  }
  if (value.isList()) {
    c10::impl::GenericList list(c10::AnyType::get());
    for (const auto& item : value.toListRef()) list.push_back(mapTensors(item, fn));
    return list;
  }
  if (value.isGenericDict()) {
    auto dict = c10::impl::GenericDict(value.toGenericDict().keyType(), c10::AnyType::get());
    for (const auto& entry : value.toGenericDict()) dict.insert(entry.key(), mapTensors(entry.value(), fn));
    return dict;
  }
  return value;
}

// A file saved by a newer PyTorch names operators or a format version this LibTorch lacks: say so, and how
// to read it (a build of torch-vbp against that LibTorch).
std::string newerLibTorchHint(const std::string& message) {
  const bool newer = message.find("Unknown builtin op") != std::string::npos || message.find("Unknown type name") != std::string::npos ||
                     message.find("file format version") != std::string::npos || message.find("version of PyTorch") != std::string::npos;
  if (!newer) return "";
  return ". The file was probably saved by a newer PyTorch than this LibTorch (" TORCH_VERSION
         "): build torch-vbp against that PyTorch's LibTorch (PYTHON=/path/to/its/python npm run build:native, "
         "README 'Building and LibTorch'), or save the model with this version";
}

}  // namespace

TorchModel::TorchModel(torch::jit::Module module, c10::Device device, std::vector<std::shared_ptr<torch::jit::CompilationUnit>> keepAlive)
    : module_(std::move(module)), device_(device), keepAlive_(std::move(keepAlive)) {
  for (const auto& item : module_.named_parameters(/*recurse=*/true)) {
    const auto type = item.value.scalar_type();
    if (!at::isFloatingType(type)) continue;
    if (type == at::kHalf || type == at::kBFloat16) floatInputType_ = type;
    break;  // the first floating parameter says what the model computes in
  }
}

TorchModel::~TorchModel() {
  std::lock_guard<std::mutex> lock(typeRegistryMutex());
  module_ = torch::jit::Module();
  keepAlive_.clear();
}

std::shared_ptr<TorchModel> TorchModel::derived(OwnTypesCopy copy) const {
  auto keepAlive = keepAlive_;
  if (std::find(keepAlive.begin(), keepAlive.end(), copy.sourceUnit) == keepAlive.end()) keepAlive.push_back(copy.sourceUnit);
  return std::make_shared<TorchModel>(std::move(copy.module), device_, std::move(keepAlive));
}

std::shared_ptr<TorchModel> TorchModel::load(const std::string& path, const c10::Device& device) {
  if (!fileReadable(path)) {
    throw Error(code::kModelNotFound, "cannot read model file '" + path + "': no such file or not readable");
  }
  {
    FileSource archive(path);
    checkArchiveRecords(archive, "'" + path + "'");
  }
  torch::jit::Module module;
  torch::jit::ExtraFilesMap extraFiles{{kModelCardEntry, ""}, {kFinetuneStateEntry, ""}, {kOptimizerStateEntry, ""}};
  try {
    module = torch::jit::load(path, device, extraFiles);
  } catch (const c10::Error& e) {
    const ErrorInfo info = describeTorchMessage(e.what_without_backtrace(), code::kModelLoad);
    throw Error(code::kModelLoad, "'" + path + "' is not a loadable TorchScript model (" + info.message +
                                      "); save models with torch.jit.save(torch.jit.script(m) or torch.jit.trace(m, x))" +
                                      newerLibTorchHint(info.message));
  } catch (const std::exception& e) {
    const std::string message = compilationErrorMessage(e);
    throw Error(code::kModelLoad, "'" + path + "' is not a loadable TorchScript model: " + message + newerLibTorchHint(message));
  }
  checkArchiveTensors("'" + path + "'", module);
  if (!module.find_method("forward")) {
    throw Error(code::kModelLoad, "'" + path + "' holds a TorchScript module without a forward method");
  }
  module.eval();
  auto model = std::make_shared<TorchModel>(std::move(module), device);
  model->embeddedCard_ = extraFiles[kModelCardEntry];
  if (!extraFiles[kFinetuneStateEntry].empty()) {
    model->checkpointExtras_[kFinetuneStateEntry] = extraFiles[kFinetuneStateEntry];
    model->checkpointExtras_[kOptimizerStateEntry] = extraFiles[kOptimizerStateEntry];
  }
  return model;
}

const std::string& TorchModel::embeddedExtra(const std::string& name) const {
  static const std::string none;
  const auto found = checkpointExtras_.find(name);
  return found == checkpointExtras_.end() ? none : found->second;
}

c10::IValue TorchModel::forward(std::vector<c10::IValue> inputs) { return valueToHost(run(std::move(inputs))); }

c10::IValue TorchModel::run(std::vector<c10::IValue> inputs) {
  c10::InferenceMode inferenceMode;
  // Pool threads start with GPU 0 current: a model on cuda:1 must run with its own device current.
  c10::OptionalDeviceGuard deviceGuard;
  if (device_.is_cuda()) deviceGuard.reset_device(device_);
  for (auto& input : inputs) {
    input = valueToDevice(input, device_);
    if (floatInputType_ != at::kFloat) {
      input = mapTensors(input, [&](const at::Tensor& t) -> c10::IValue { return t.scalar_type() == at::kFloat ? t.to(floatInputType_) : t; });
    }
  }
  c10::IValue output;
  try {
    output = module_.forward(std::move(inputs));
  } catch (const Error&) {
    throw;
  } catch (const torch::jit::JITException& e) {
    // Raised by the model's own code (an assert or raise in its forward): not a verdict on the input.
    const ErrorInfo info = describeTorchMessage(e.what(), code::kForward);
    throw Error(code::kForward, "forward failed in the model's code: " + info.message);
  } catch (const std::exception& e) {
    const std::string what = [&] {
      if (auto* c10Error = dynamic_cast<const c10::Error*>(&e)) return std::string(c10Error->what_without_backtrace());
      return compilationErrorMessage(e);
    }();
    const ErrorInfo info = describeTorchMessage(what, code::kForward);
    throw Error(classifyForwardFailure(info.message), "forward failed: " + info.message);
  }
  return output;
}

std::shared_ptr<TorchModel> TorchModel::clone() const {
  torch::NoGradGuard noGrad;
  return derived(cloneWithOwnTypes(module_, TensorCopy::Deep));
}

void TorchModel::save(const std::string& path, const std::string& card) const {
  torch::jit::ExtraFilesMap extraFiles;
  if (!card.empty()) extraFiles[kModelCardEntry] = card;
  try {
    writeModuleFile(module_, path, extraFiles);
  } catch (const Error&) {
    throw;
  } catch (const std::exception&) {
    const ErrorInfo info = describeCurrentException(code::kModelSave);
    throw Error(code::kModelSave, "cannot save model to '" + path + "': " + info.message);
  }
}

std::vector<SubmoduleInfo> TorchModel::submodules() const {
  std::vector<SubmoduleInfo> result;
  for (const auto& item : module_.named_modules()) {
    result.push_back({item.name, readableTypeName(item.value.type())});
  }
  return result;
}

std::vector<ParameterInfo> TorchModel::parameters() const {
  std::vector<ParameterInfo> result;
  std::unordered_set<const c10::TensorImpl*> seen;  // a tied tensor once, under its first name (as PyTorch lists it)
  for (const auto& item : module_.named_parameters(/*recurse=*/true)) {
    const auto& t = item.value;
    if (!seen.insert(t.unsafeGetTensorImpl()).second) continue;
    result.push_back({item.name, t.sizes().vec(), t.numel(), dtypeName(t.scalar_type())});
  }
  return result;
}

at::Tensor TorchModel::namedTensor(const std::string& name) const {
  for (const auto& item : module_.named_parameters(/*recurse=*/true)) {
    if (item.name == name) return item.value.detach().to(c10::kCPU).contiguous().clone();
  }
  for (const auto& item : module_.named_buffers(/*recurse=*/true)) {
    if (item.name == name) return item.value.detach().to(c10::kCPU).contiguous().clone();
  }
  throw Error(code::kInvalidArgument, "the model has no parameter or buffer named '" + name + "'");
}

int64_t TorchModel::nativeBytes() const {
  int64_t bytes = 0;
  std::unordered_set<const c10::TensorImpl*> seen;
  for (const auto& item : module_.named_parameters(true)) {
    if (seen.insert(item.value.unsafeGetTensorImpl()).second) bytes += static_cast<int64_t>(item.value.nbytes());
  }
  for (const auto& item : module_.named_buffers(true)) {
    if (seen.insert(item.value.unsafeGetTensorImpl()).second) bytes += static_cast<int64_t>(item.value.nbytes());
  }
  return bytes;
}

std::string dtypeName(c10::ScalarType type) {
  switch (type) {
    case at::kFloat:
      return "float32";
    case at::kDouble:
      return "float64";
    case at::kHalf:
      return "float16";
    case at::kBFloat16:
      return "bfloat16";
    case at::kInt:
      return "int32";
    case at::kLong:
      return "int64";
    case at::kShort:
      return "int16";
    case at::kChar:
      return "int8";
    case at::kByte:
      return "uint8";
    case at::kBool:
      return "bool";
    default:
      return c10::toString(type);
  }
}

std::string readableTypeName(const c10::ClassTypePtr& type) {
  if (!type->name()) return type->str();
  std::string name = type->name()->qualifiedName();
  for (const std::string prefix : {"__torch__."}) {
    if (name.rfind(prefix, 0) == 0) name.erase(0, prefix.size());
  }
  for (auto at = name.find("___torch_mangle_"); at != std::string::npos; at = name.find("___torch_mangle_")) {
    const auto dot = name.find('.', at);
    name.erase(at, dot == std::string::npos ? std::string::npos : dot - at + 1);
  }
  return name;
}

c10::IValue valueToDevice(const c10::IValue& value, const c10::Device& device) {
  return mapTensors(value, [&](const at::Tensor& t) -> c10::IValue { return t.to(device); });
}

c10::IValue valueToHost(const c10::IValue& value) {
  return mapTensors(value, [](const at::Tensor& t) -> c10::IValue {
    at::Tensor host = t.to(c10::kCPU).contiguous();
    if (host.scalar_type() == at::kHalf || host.scalar_type() == at::kBFloat16) host = host.to(at::kFloat);
    return host;
  });
}

}  // namespace vbp
