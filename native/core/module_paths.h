// Finding submodules by dotted path, and which submodule a value in a method graph refers to.
#pragma once

#include <torch/script.h>

#include <optional>
#include <string>
#include <vector>

namespace vbp {

// The submodule at a dotted path ('' is the root); nullopt if there is none.
std::optional<torch::jit::Module> findSubmodule(const torch::jit::Module& root, const std::string& path);

// Like findSubmodule, but throws vbp::Error(errorCode) naming the path.
torch::jit::Module submoduleAt(const torch::jit::Module& root, const std::string& path, const char* errorCode);

std::string joinPath(const std::string& prefix, const std::string& name);

// The graph of a module's forward method.
std::shared_ptr<torch::jit::Graph> forwardGraph(const torch::jit::Module& module);

// If `value` is the result of a chain of prim::GetAttr starting at `self`, the attribute names of that
// chain (e.g. {"mlp", "fc1"} for self.mlp.fc1); nullopt otherwise.
std::optional<std::vector<std::string>> attributeChain(const torch::jit::Value* value, const torch::jit::Value* self);

// Whether `node` is `prim::CallMethod[name="forward"]`.
bool isForwardCall(const torch::jit::Node* node);

}  // namespace vbp
