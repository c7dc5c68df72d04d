#include "core/module_paths.h"

#include <sstream>

#include "core/errors.h"

namespace vbp {

std::optional<torch::jit::Module> findSubmodule(const torch::jit::Module& root, const std::string& path) {
  torch::jit::Module current = root;
  if (path.empty()) return current;
  std::stringstream parts(path);
  std::string name;
  while (std::getline(parts, name, '.')) {
    if (!current.hasattr(name)) return std::nullopt;
    const c10::IValue value = current.attr(name);
    if (!value.isObject() || !value.toObject()->type()->is_module()) return std::nullopt;
    current = torch::jit::Module(value.toObject());
  }
  return current;
}

torch::jit::Module submoduleAt(const torch::jit::Module& root, const std::string& path, const char* errorCode) {
  auto found = findSubmodule(root, path);
  if (!found) throw Error(errorCode, "the model has no submodule '" + path + "'");
  return *found;
}

std::string joinPath(const std::string& prefix, const std::string& name) { return prefix.empty() ? name : prefix + "." + name; }

std::shared_ptr<torch::jit::Graph> forwardGraph(const torch::jit::Module& module) { return module.get_method("forward").graph(); }

std::optional<std::vector<std::string>> attributeChain(const torch::jit::Value* value, const torch::jit::Value* self) {
  std::vector<std::string> chain;
  while (value != self) {
    const torch::jit::Node* node = value->node();
    if (node->kind() != c10::prim::GetAttr) return std::nullopt;
    chain.insert(chain.begin(), node->s(c10::attr::name));
    value = node->input(0);
  }
  return chain;
}

bool isForwardCall(const torch::jit::Node* node) { return node->kind() == c10::prim::CallMethod && node->s(c10::attr::name) == "forward"; }

}  // namespace vbp
