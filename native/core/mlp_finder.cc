#include "core/mlp_finder.h"

#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/ir/constants.h>

#include <map>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "core/errors.h"
#include "core/module_paths.h"

namespace vbp {
namespace {

using torch::jit::Block;
using torch::jit::Module;
using torch::jit::Node;
using torch::jit::Value;

// Ops that act on each element independently, so neuron j of the output depends only on neuron j of the
// input. Values map to the activation name reported to users; "" marks ops that are not activations.
const std::unordered_map<std::string, std::string>& elementwiseOps() {
  static const std::unordered_map<std::string, std::string> ops = {
      {"aten::gelu", "gelu"},
      {"aten::gelu_", "gelu"},
      {"aten::relu", "relu"},
      {"aten::relu_", "relu"},
      {"aten::relu6", "relu6"},
      {"aten::silu", "silu"},
      {"aten::silu_", "silu"},
      {"aten::sigmoid", "sigmoid"},
      {"aten::sigmoid_", "sigmoid"},
      {"aten::tanh", "tanh"},
      {"aten::tanh_", "tanh"},
      {"aten::hardtanh", "hardtanh"},
      {"aten::hardtanh_", "hardtanh"},
      {"aten::hardswish", "hardswish"},
      {"aten::hardswish_", "hardswish"},
      {"aten::hardsigmoid", "hardsigmoid"},
      {"aten::hardsigmoid_", "hardsigmoid"},
      {"aten::leaky_relu", "leaky_relu"},
      {"aten::leaky_relu_", "leaky_relu"},
      {"aten::elu", "elu"},
      {"aten::elu_", "elu"},
      {"aten::selu", "selu"},
      {"aten::selu_", "selu"},
      {"aten::celu", "celu"},
      {"aten::celu_", "celu"},
      {"aten::softplus", "softplus"},
      {"aten::mish", "mish"},
      {"aten::mish_", "mish"},
      // Not activations by themselves: dropout, copies, and arithmetic (hand-written activations).
      {"aten::dropout", ""},
      {"aten::dropout_", ""},
      {"aten::feature_dropout", ""},
      {"aten::feature_dropout_", ""},
      {"aten::alpha_dropout", ""},
      {"aten::alpha_dropout_", ""},
      {"aten::feature_alpha_dropout", ""},
      {"aten::contiguous", ""},
      {"aten::clone", ""},
      {"aten::detach", ""},
      {"aten::to", ""},
      {"aten::mul", ""},
      {"aten::mul_", ""},
      {"aten::add", ""},
      {"aten::add_", ""},
      {"aten::sub", ""},
      {"aten::sub_", ""},
      {"aten::div", ""},
      {"aten::div_", ""},
      {"aten::rsub", ""},
      {"aten::pow", ""},
      {"aten::erf", ""},
      {"aten::exp", ""},
      {"aten::neg", ""},
      {"aten::abs", ""},
      {"aten::sqrt", ""},
      {"aten::square", ""},
      {"aten::clamp", ""},
      {"aten::clamp_", ""},
      {"aten::clamp_min", ""},
      {"aten::clamp_max", ""},
  };
  return ops;
}

// Uses of a value that read only its shape: harmless for neuron-wise slicing.
bool isShapeQuery(const Node* node) {
  static const std::unordered_set<std::string> kinds = {
      "aten::size", "aten::dim", "aten::numel", "aten::len", "prim::shape", "aten::is_floating_point", "prim::dtype", "prim::device"};
  return kinds.count(node->kind().toQualString()) > 0;
}

bool isTensorValue(const Value* value) { return value->type()->cast<c10::TensorType>() != nullptr; }

// What the element-wise path between two Linears does, for the `activation` field.
struct PathNotes {
  std::vector<std::string> activations;
  bool mixesDerivedValues = false;  // e.g. x * sigmoid(x): a hand-written activation

  std::string describe() const {
    // Branches of one activation (relu vs relu_ for inplace=True) name it twice: count distinct names.
    const std::unordered_set<std::string> distinct(activations.begin(), activations.end());
    if (mixesDerivedValues || distinct.size() > 1) return "elementwise";
    return distinct.empty() ? "identity" : *distinct.begin();
  }
};

std::optional<c10::IValue> constantOrAttribute(const Value* value, const Module& owner, const Value* self) {
  if (auto constant = torch::jit::toIValue(value)) return constant;
  if (auto chain = attributeChain(value, self); chain && chain->size() == 1 && owner.hasattr(chain->front())) {
    return owner.attr(chain->front());
  }
  return std::nullopt;
}

// Whether `node` maps derived tensors element-wise; on success notes what activation it is.
bool acceptElementwise(const Node* node, const std::unordered_set<const Value*>& derived, const Module& owner, const Value* self, PathNotes& notes) {
  const auto& ops = elementwiseOps();
  const auto op = ops.find(node->kind().toQualString());
  if (op == ops.end() || node->outputs().size() != 1 || !isTensorValue(node->output())) return false;
  int derivedInputs = 0;
  for (const Value* input : node->inputs()) {
    if (!isTensorValue(input)) continue;
    if (!derived.count(input)) return false;  // mixing in another tensor (a parameter, a residual) breaks slicing
    ++derivedInputs;
  }
  if (derivedInputs == 0) return false;
  if (derivedInputs > 1) notes.mixesDerivedValues = true;
  std::string name = op->second;
  if (name == "gelu" && node->inputs().size() > 1) {
    const auto approximate = constantOrAttribute(node->input(1), owner, self);
    if (approximate && approximate->isString() && approximate->toStringRef() == "tanh") name = "gelu_tanh";
  }
  if (!name.empty()) notes.activations.push_back(name);
  return true;
}

bool propagateElementwise(const Block* block, std::unordered_set<const Value*>& derived, const Module& owner, const Value* self, PathNotes& notes);

// prim::CallFunction of a TorchScript function (e.g. F.dropout inside nn.Dropout): element-wise if the
// function's result is an element-wise function of the derived arguments and of nothing else tensor-valued.
bool acceptFunctionCall(const Node* node, const std::unordered_set<const Value*>& derived, const Module& owner, PathNotes& notes) {
  if (node->kind() != c10::prim::CallFunction || node->outputs().size() != 1 || !isTensorValue(node->output())) return false;
  const auto functionType = node->input(0)->type()->cast<c10::FunctionType>();
  if (!functionType) return false;
  const auto graph = torch::jit::toGraphFunction(*functionType->function()).graph();
  if (graph->inputs().size() + 1 != node->inputs().size() || graph->outputs().size() != 1) return false;
  std::unordered_set<const Value*> inner;
  for (size_t i = 1; i < node->inputs().size(); ++i) {
    if (!isTensorValue(node->input(i))) continue;
    if (!derived.count(node->input(i))) return false;
    inner.insert(graph->inputs()[i - 1]);
  }
  if (inner.empty()) return false;
  PathNotes local;
  if (!propagateElementwise(graph->block(), inner, owner, nullptr, local) || !inner.count(graph->outputs()[0])) return false;
  notes.activations.insert(notes.activations.end(), local.activations.begin(), local.activations.end());
  notes.mixesDerivedValues |= local.mixesDerivedValues;
  return true;
}

// Walks `block` in order, growing `derived` through element-wise nodes and prim::If nodes whose every
// branch is element-wise. Fails on any other use of a derived value.
bool propagateElementwise(const Block* block, std::unordered_set<const Value*>& derived, const Module& owner, const Value* self, PathNotes& notes) {
  for (const Node* node : block->nodes()) {
    bool usesDerived = false;
    for (const Value* input : node->inputs()) usesDerived |= derived.count(input) > 0;
    if (node->kind() == c10::prim::If) {
      for (const Block* branch : node->blocks()) {
        if (!propagateElementwise(branch, derived, owner, self, notes)) return false;
      }
      for (size_t i = 0; i < node->outputs().size(); ++i) {
        bool allBranches = true;
        for (const Block* branch : node->blocks()) allBranches &= derived.count(branch->outputs()[i]) > 0;
        if (allBranches) derived.insert(node->outputs()[i]);
      }
      continue;
    }
    if (!usesDerived) continue;
    if (isShapeQuery(node)) continue;
    if (!acceptElementwise(node, derived, owner, self, notes) && !acceptFunctionCall(node, derived, owner, notes)) {
      return false;
    }
    derived.insert(node->output());
  }
  return true;
}

// An activation/dropout/identity module: forward(self, x) returns an element-wise function of x.
bool isElementwiseModule(const Module& module, PathNotes& notes) {
  const auto method = module.find_method("forward");
  if (!method) return false;
  const auto graph = method->graph();
  if (graph->inputs().size() != 2 || graph->outputs().size() != 1 || !isTensorValue(graph->inputs()[1])) return false;
  std::unordered_set<const Value*> derived = {graph->inputs()[1]};
  PathNotes local;
  if (!propagateElementwise(graph->block(), derived, module, graph->inputs()[0], local)) return false;
  if (!derived.count(graph->outputs()[0])) return false;
  notes.activations.insert(notes.activations.end(), local.activations.begin(), local.activations.end());
  notes.mixesDerivedValues |= local.mixesDerivedValues;
  return true;
}

std::optional<Module> calledModule(const Node* call, const Module& owner, const Value* self, std::string* relativePath) {
  const auto chain = attributeChain(call->input(0), self);
  if (!chain || chain->empty()) return std::nullopt;
  std::string path;
  for (const auto& name : *chain) path = joinPath(path, name);
  if (relativePath) *relativePath = path;
  return findSubmodule(owner, path);
}

// Where the hidden values of one fc1 call go: the single Linear they reach (fc2) through element-wise
// nodes, the values derived on the way and the nodes accepted; `ok` is false on any other use.
struct HiddenPath {
  bool ok = true;
  const Node* fc2Call = nullptr;
  std::string fc2Path;
  std::unordered_set<const Value*> derived;
  std::unordered_set<const Node*> accepted;
  PathNotes notes;
};

// One node that reads hidden values: the fc2 call, an element-wise op or module, or a shape query.
bool acceptHiddenUse(const Node* node, const Module& owner, const Value* self, HiddenPath& path) {
  if (isShapeQuery(node)) return true;  // reads only the shape
  if (!isForwardCall(node)) {
    if (!acceptElementwise(node, path.derived, owner, self, path.notes) && !acceptFunctionCall(node, path.derived, owner, path.notes)) return false;
    path.derived.insert(node->output());
    return true;
  }
  std::string calleePath;
  const auto callee = calledModule(node, owner, self, &calleePath);
  const bool singleArgument = node->inputs().size() == 2 && path.derived.count(node->input(1)) && !path.derived.count(node->input(0));
  if (!callee || !singleArgument) return false;
  if (isLinearModule(*callee)) {
    if (path.fc2Call) return false;  // the hidden values feed two Linears: not a plain MLP
    path.fc2Call = node;
    path.fc2Path = calleePath;
    return true;
  }
  if (!isElementwiseModule(*callee, path.notes)) return false;
  path.derived.insert(node->output());
  return true;
}

// Follows the output of `fc1Call` through the rest of the graph.
HiddenPath followHiddenValues(const Node* fc1Call, const Module& owner, const torch::jit::Graph& graph) {
  const Value* self = graph.inputs()[0];
  HiddenPath path;
  path.derived.insert(fc1Call->output());
  for (const Node* node = fc1Call->next(); path.ok && node != graph.return_node(); node = node->next()) {
    bool usesDerived = false;
    for (const Value* input : node->inputs()) usesDerived |= path.derived.count(input) > 0;
    if (!usesDerived) continue;
    path.ok = acceptHiddenUse(node, owner, self, path);
    if (path.ok) path.accepted.insert(node);
  }
  if (!path.ok || !path.fc2Call) {
    path.ok = false;
    return path;
  }
  // Every use of the hidden values must be one of the nodes accepted above (not the method's return value,
  // not a node inside a branch or loop).
  for (const Value* value : path.derived) {
    for (const auto& use : value->uses()) path.ok &= path.accepted.count(use.user) > 0;
  }
  return path;
}

// In one method graph of `owner`: every Linear call whose output reaches exactly one other Linear call
// through element-wise nodes only, and nowhere else.
void findInGraph(const Module& owner, const std::string& ownerPath, const torch::jit::Graph& graph, std::vector<MlpBlock>& found) {
  const Value* self = graph.inputs()[0];
  for (const Node* fc1Call : graph.nodes()) {
    if (!isForwardCall(fc1Call)) continue;
    std::string fc1Path;
    const auto fc1 = calledModule(fc1Call, owner, self, &fc1Path);
    if (!fc1 || !isLinearModule(*fc1)) continue;
    const HiddenPath path = followHiddenValues(fc1Call, owner, graph);
    if (!path.ok) continue;
    const Module fc2 = *findSubmodule(owner, path.fc2Path);
    const at::Tensor w1 = fc1->attr("weight").toTensor();
    const at::Tensor w2 = fc2.attr("weight").toTensor();
    if (w2.size(1) != w1.size(0)) continue;
    MlpBlock block;
    block.owner = ownerPath;
    block.fc1 = joinPath(ownerPath, fc1Path);
    block.fc2 = joinPath(ownerPath, path.fc2Path);
    block.inFeatures = w1.size(1);
    block.hidden = w1.size(0);
    block.outFeatures = w2.size(0);
    block.activation = path.notes.describe();
    found.push_back(block);
  }
}

// How often each Linear is called across all method graphs of the model.
void countLinearCalls(const Module& owner, const std::string& ownerPath, const torch::jit::Graph& graph, std::map<std::string, int>& calls) {
  const Value* self = graph.inputs()[0];
  std::vector<const Block*> blocks = {graph.block()};
  while (!blocks.empty()) {
    const Block* block = blocks.back();
    blocks.pop_back();
    for (const Node* node : block->nodes()) {
      for (const Block* sub : node->blocks()) blocks.push_back(sub);
      if (!isForwardCall(node)) continue;
      std::string path;
      if (const auto callee = calledModule(node, owner, self, &path); callee && isLinearModule(*callee)) {
        ++calls[joinPath(ownerPath, path)];
      }
    }
  }
}

}  // namespace

bool isLinearModule(const Module& module) {
  if (!module.hasattr("weight")) return false;
  const c10::IValue weight = module.attr("weight");
  if (!weight.isTensor() || weight.toTensor().dim() != 2) return false;
  const auto method = module.find_method("forward");
  if (!method) return false;
  const auto graph = method->graph();
  if (graph->inputs().size() != 2 || graph->outputs().size() != 1) return false;
  const Node* producer = graph->outputs()[0]->node();
  if (producer->kind() != c10::aten::linear) return false;
  const Value* self = graph->inputs()[0];
  if (producer->input(0) != graph->inputs()[1]) return false;
  const auto weightChain = attributeChain(producer->input(1), self);
  if (!weightChain || *weightChain != std::vector<std::string>{"weight"}) return false;
  const Value* bias = producer->input(2);
  const auto biasChain = attributeChain(bias, self);
  const bool biasIsNone = bias->type()->kind() == c10::TypeKind::NoneType;
  return biasIsNone || (biasChain && *biasChain == std::vector<std::string>{"bias"});
}

std::vector<MlpBlock> findMlps(const Module& root) {
  std::vector<MlpBlock> found;
  std::map<std::string, int> linearCalls;
  std::map<std::string, size_t> order;
  for (const auto& item : root.named_modules()) {
    order.emplace(item.name, order.size());
    for (const torch::jit::Function* method : item.value.type()->methods()) {
      const auto& graph = *torch::jit::toGraphFunction(*method).graph();
      findInGraph(item.value, item.name, graph, found);
      countLinearCalls(item.value, item.name, graph, linearCalls);
    }
  }
  std::vector<MlpBlock> blocks;
  std::unordered_set<std::string> seen;
  for (const auto& block : found) {
    if (linearCalls[block.fc1] != 1 || linearCalls[block.fc2] != 1) continue;
    if (!seen.insert(block.fc1 + "\n" + block.fc2).second) continue;
    blocks.push_back(block);
  }
  std::stable_sort(blocks.begin(), blocks.end(), [&](const MlpBlock& a, const MlpBlock& b) { return order.at(a.fc1) < order.at(b.fc1); });
  return blocks;
}

std::vector<MlpBlock> resolveMlps(const Module& root, const std::vector<std::pair<std::string, std::string>>& pairs) {
  const std::vector<MlpBlock> discovered = findMlps(root);
  std::vector<MlpBlock> blocks;
  std::unordered_set<std::string> used;
  for (const auto& [fc1Path, fc2Path] : pairs) {
    const std::string what = "MLP (" + fc1Path + " -> " + fc2Path + ")";
    if (!used.insert(fc1Path).second || !used.insert(fc2Path).second) {
      throw Error(code::kMlpSpec, what + ": a layer appears in more than one MLP block");
    }
    auto match = std::find_if(discovered.begin(), discovered.end(), [&](const MlpBlock& b) { return b.fc1 == fc1Path && b.fc2 == fc2Path; });
    if (match != discovered.end()) {
      blocks.push_back(*match);
      continue;
    }
    // Not found by structure: accept two Linear layers of matching width, on the user's word that only
    // element-wise ops sit between them.
    const auto fc1 = findSubmodule(root, fc1Path);
    const auto fc2 = findSubmodule(root, fc2Path);
    if (!fc1 || !fc2) throw Error(code::kMlpSpec, what + ": the model has no submodule '" + (fc1 ? fc2Path : fc1Path) + "'");
    if (!isLinearModule(*fc1) || !isLinearModule(*fc2)) {
      throw Error(code::kMlpSpec,
                  what + ": '" + (isLinearModule(*fc1) ? fc2Path : fc1Path) + "' is not a Linear layer (a 2-D weight used by aten::linear)");
    }
    const at::Tensor w1 = fc1->attr("weight").toTensor();
    const at::Tensor w2 = fc2->attr("weight").toTensor();
    if (w1.size(0) != w2.size(1)) {
      throw Error(code::kMlpSpec, what + ": widths do not match (fc1 has " + std::to_string(w1.size(0)) + " outputs, fc2 takes " +
                                      std::to_string(w2.size(1)) + " inputs)");
    }
    MlpBlock block;
    block.fc1 = fc1Path;
    block.fc2 = fc2Path;
    block.inFeatures = w1.size(1);
    block.hidden = w1.size(0);
    block.outFeatures = w2.size(0);
    block.activation = "unverified";
    blocks.push_back(block);
  }
  return blocks;
}

}  // namespace vbp
