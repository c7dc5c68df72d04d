#include "core/own_types.h"

#include <torch/csrc/jit/api/function_impl.h>

#include <unordered_map>

namespace vbp {
namespace {

using torch::jit::Module;

// Deep copies that keep tied tensors tied (two attributes holding one tensor hold one copy).
class TensorMemo {
 public:
  at::Tensor copy(const at::Tensor& t) {
    auto [it, inserted] = copies_.try_emplace(t.unsafeGetTensorImpl());
    if (inserted) {
      it->second = t.detach().clone();
      // detach() drops requires_grad; a parameter keeps it, as in the source (PyTorch users train copies).
      if (t.requires_grad()) it->second.set_requires_grad(true);
    }
    return it->second;
  }

 private:
  std::unordered_map<const c10::TensorImpl*, at::Tensor> copies_;
};

c10::IValue copyValue(const c10::IValue& value, TensorCopy mode, TensorMemo& memo) {
  if (mode == TensorCopy::Share) return value;
  if (value.isTensor()) return value.toTensor().defined() ? c10::IValue(memo.copy(value.toTensor())) : value;
  if (value.isObject()) return value;  // non-module script objects are shared, like Module::clone does
  return value.deepcopy();
}

bool isModuleValue(const c10::IValue& value) { return value.isObject() && value.toObject()->type()->is_module(); }

// Gives the values in a method graph that refer to modules (self, self.child, self.child.grandchild, ...)
// the types of the instances they refer to in `owner`'s tree.
void retypeModuleValues(torch::jit::Block* block, std::unordered_map<const torch::jit::Value*, Module>& modules) {
  for (torch::jit::Node* node : block->nodes()) {
    if (node->kind() == c10::prim::GetAttr) {
      const auto it = modules.find(node->input(0));
      const std::string& name = node->s(c10::attr::name);
      if (it != modules.end() && it->second.hasattr(name)) {
        const c10::IValue child = it->second.attr(name);
        if (isModuleValue(child)) {
          Module childModule(child.toObject());
          node->output()->setType(childModule.type());
          modules.emplace(node->output(), childModule);
        }
      }
    }
    for (torch::jit::Block* sub : node->blocks()) retypeModuleValues(sub, modules);
  }
}

torch::jit::Function* copyMethod(const torch::jit::Function& method, const Module& owner, const c10::ClassTypePtr& sourceType,
                                 torch::jit::CompilationUnit& unit) {
  std::shared_ptr<torch::jit::Graph> graph = torch::jit::toGraphFunction(method).graph()->copy();
  std::unordered_map<const torch::jit::Value*, Module> modules;
  graph->inputs().at(0)->setType(owner.type());
  modules.emplace(graph->inputs().at(0), owner);
  retypeModuleValues(graph->block(), modules);

  torch::jit::Function* copy = unit.create_function(c10::QualifiedName(*owner.type()->name(), method.name()), graph);
  const c10::ClassTypePtr ownerType = owner.type();
  torch::jit::toGraphFunction(*copy).setSchema(method.getSchema().cloneWithRemappedTypes(
      [&](c10::TypePtr t) -> c10::TypePtr { return t.get() == sourceType.get() ? c10::TypePtr(ownerType) : t; }));
  return copy;
}

Module cloneInstance(const Module& source, TensorCopy mode, TensorMemo& memo, const std::shared_ptr<torch::jit::CompilationUnit>& unit) {
  const c10::ClassTypePtr sourceType = source.type();
  // The class name is mangled where instances of one class meet in the copy's unit (a shared type made
  // into several), as tracing names them.
  Module copy(*sourceType->name(), unit, /*shouldMangle=*/true);
  const c10::ClassTypePtr type = copy.type();

  for (size_t slot = 0; slot < sourceType->numAttributes(); ++slot) {
    const std::string& name = sourceType->getAttributeName(slot);
    const c10::IValue value = source._ivalue()->getSlot(slot);
    if (isModuleValue(value)) {
      copy.register_module(name, cloneInstance(Module(value.toObject()), mode, memo, unit));
    } else {
      copy.register_attribute(name, sourceType->getAttribute(slot), copyValue(value, mode, memo), sourceType->is_parameter(slot),
                              sourceType->is_buffer(slot));
    }
  }
  for (size_t i = 0; i < sourceType->numConstants(); ++i) {
    type->addConstant(sourceType->getConstantName(i), sourceType->getConstant(i));
  }
  // Methods last: their graphs are retyped against the children registered above.
  for (const torch::jit::Function* method : sourceType->methods()) type->addMethod(copyMethod(*method, copy, sourceType, *unit));
  for (const auto& property : sourceType->properties()) {
    type->addProperty(property.name, copyMethod(*property.getter, copy, sourceType, *unit),
                      property.setter ? copyMethod(*property.setter, copy, sourceType, *unit) : nullptr);
  }
  for (const torch::jit::Function* hook : sourceType->getForwardPreHooks()) {
    type->addForwardPreHook(copyMethod(*hook, copy, sourceType, *unit));
  }
  for (const torch::jit::Function* hook : sourceType->getForwardHooks()) {
    type->addForwardHook(copyMethod(*hook, copy, sourceType, *unit));
  }
  return copy;
}

}  // namespace

std::mutex& typeRegistryMutex() {
  static std::mutex mutex;
  return mutex;
}

OwnTypesCopy cloneWithOwnTypes(const torch::jit::Module& module, TensorCopy tensors) {
  std::lock_guard<std::mutex> lock(typeRegistryMutex());
  TensorMemo memo;
  auto unit = std::make_shared<torch::jit::CompilationUnit>();
  Module copy = cloneInstance(module, tensors, memo, unit);
  return {copy, module._ivalue()->compilation_unit()};
}

}  // namespace vbp
