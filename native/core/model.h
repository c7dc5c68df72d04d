// A TorchScript module on one device: load, forward, clone, save and introspection. No Node.js here.
#pragma once

#include <torch/script.h>

#include "core/own_types.h"

#include <memory>
#include <string>
#include <vector>

namespace vbp {

struct SubmoduleInfo {
  std::string name;      // dotted path from the root ('' for the root itself)
  std::string typeName;  // qualified class name without TorchScript's mangling, e.g. torch.nn.modules.linear.Linear
};

struct ParameterInfo {
  std::string name;
  std::vector<int64_t> shape;
  int64_t numel;
  std::string dtype;
};

// Use of one instance must be serialised by the caller: the JS facade runs every call on a model through
// one queue (lib/pipeline/model.ts), and forwardSync() refuses while that queue is busy. Distinct instances
// can be used from different threads at once.
class TorchModel {
 public:
  // `keepAlive`: compilation units the module's code refers to besides its own (see own_types.h).
  TorchModel(torch::jit::Module module, c10::Device device, std::vector<std::shared_ptr<torch::jit::CompilationUnit>> keepAlive = {});
  // Destroys the module under typeRegistryMutex(): its types and functions may be those a copy running on
  // another thread is reading (a model and its copies share function objects).
  ~TorchModel();
  TorchModel(const TorchModel&) = delete;
  TorchModel& operator=(const TorchModel&) = delete;

  // A model made from a copy of this one's module (own types): keeps what this one keeps, and its unit.
  std::shared_ptr<TorchModel> derived(OwnTypesCopy copy) const;

  // Loads a TorchScript archive; keeps its model card (the extra file kModelCardEntry) when it has one.
  static std::shared_ptr<TorchModel> load(const std::string& path, const c10::Device& device);

  // Runs forward under InferenceMode on the model's device; the result stays where the model put it.
  // A half-precision model (float16 or bfloat16 parameters) gets float32 inputs cast to its type.
  c10::IValue run(std::vector<c10::IValue> inputs);
  // run(), with the result copied to CPU, contiguous tensors (ready to cross to JS).
  c10::IValue forward(std::vector<c10::IValue> inputs);

  std::shared_ptr<TorchModel> clone() const;
  // Writes the archive; a non-empty `card` (JSON text) goes in as the extra file kModelCardEntry.
  void save(const std::string& path, const std::string& card = "") const;
  // The model card of the archive this model was loaded from ("" when it had none).
  const std::string& embeddedCard() const { return embeddedCard_; }
  // A fine-tuning checkpoint's state (kFinetuneStateEntry, kOptimizerStateEntry) when loaded from one, else "".
  const std::string& embeddedExtra(const std::string& name) const;

  std::vector<SubmoduleInfo> submodules() const;
  std::vector<ParameterInfo> parameters() const;
  // A copy of the parameter or buffer at a dotted name, on the CPU; throws INVALID_ARGUMENT when there is none.
  at::Tensor namedTensor(const std::string& name) const;
  // Bytes held by parameters and buffers, reported to V8 so that the GC sees native memory.
  int64_t nativeBytes() const;

  torch::jit::Module& module() { return module_; }
  const torch::jit::Module& module() const { return module_; }
  const c10::Device& device() const { return device_; }

 private:
  torch::jit::Module module_;
  c10::Device device_;
  // Half-precision models (float16, bfloat16) get float32 inputs cast to their type; kFloat otherwise.
  c10::ScalarType floatInputType_ = at::kFloat;
  std::vector<std::shared_ptr<torch::jit::CompilationUnit>> keepAlive_;
  std::string embeddedCard_;
  torch::jit::ExtraFilesMap checkpointExtras_;
};

// Name of the model card inside a TorchScript archive (stored as extra/model_card.json; Python reads it
// with torch.jit.load(f, _extra_files={"model_card.json": ""})).
inline constexpr const char* kModelCardEntry = "model_card.json";
// What a fine-tuning checkpoint adds to the archive: progress (JSON) and the optimizer's state.
inline constexpr const char* kFinetuneStateEntry = "finetune_state.json";
inline constexpr const char* kOptimizerStateEntry = "finetune_optimizer.pt";

// numpy-style dtype names: float32, float64, int64, ...
std::string dtypeName(c10::ScalarType type);

// TorchScript class names carry '__torch__.' and '___torch_mangle_N.' parts; this strips them.
std::string readableTypeName(const c10::ClassTypePtr& type);

// Moves every tensor in a (nested) value to `device`.
c10::IValue valueToDevice(const c10::IValue& value, const c10::Device& device);

// Copies every tensor in a (nested) value to contiguous CPU memory, half precision widened to float.
c10::IValue valueToHost(const c10::IValue& value);

}  // namespace vbp
