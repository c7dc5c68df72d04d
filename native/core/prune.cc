#include "core/prune.h"

#include <cmath>
#include <unordered_set>

#include "core/errors.h"
#include "core/module_paths.h"
#include "core/own_types.h"

namespace vbp {
namespace {

using torch::jit::Module;

struct LinearLayer {
  Module module;
  at::Tensor weight;
  at::Tensor bias;  // undefined when the layer has none
};

LinearLayer linearAt(const Module& root, const std::string& path) {
  const auto module = findSubmodule(root, path);
  if (!module || !isLinearModule(*module)) {
    throw Error(code::kPlan, "the plan names '" + path +
                                 "', which is not a Linear layer of this model "
                                 "(was the plan made for another model?)");
  }
  LinearLayer layer{*module, module->attr("weight").toTensor(), at::Tensor()};
  if (module->hasattr("bias") && module->attr("bias").isTensor()) layer.bias = module->attr("bias").toTensor();
  return layer;
}

void checkCut(const LayerCut& cut, int64_t hidden, const Compensation& compensation) {
  const std::string where = "plan for MLP (" + cut.fc1 + " -> " + cut.fc2 + ")";
  if (cut.keep.empty()) throw Error(code::kPlan, where + " keeps no neuron; at least one must stay");
  for (size_t i = 0; i < cut.keep.size(); ++i) {
    const int64_t index = cut.keep[i];
    if (index < 0 || index >= hidden) {
      throw Error(code::kPlan, where + ": neuron index " + std::to_string(index) + " is out of range [0, " + std::to_string(hidden) + ")");
    }
    if (i > 0 && index <= cut.keep[i - 1]) throw Error(code::kPlan, where + ": kept indices must be ascending and unique");
  }
  for (const double mean : cut.prunedMeans) {
    if (!std::isfinite(mean)) throw Error(code::kPlan, where + ": a mean of a removed neuron is NaN or infinite");
  }
  const size_t removed = static_cast<size_t>(hidden) - cut.keep.size();
  if (compensation.kind == CompensationKind::Mean && cut.prunedMeans.size() != removed) {
    throw Error(code::kPlan, where + ": mean compensation needs " + std::to_string(removed) + " means of removed neurons, the plan has " +
                                 std::to_string(cut.prunedMeans.size()));
  }
  if (compensation.kind == CompensationKind::LeastSquares &&
      (cut.means.size() != static_cast<size_t>(hidden) || cut.covariance.size() != static_cast<size_t>(hidden * hidden))) {
    throw Error(code::kStats, where + ": least-squares compensation needs the means of all " + std::to_string(hidden) + " neurons and their " +
                                  std::to_string(hidden) + "x" + std::to_string(hidden) + " covariance");
  }
}

// A parameter replacing `old`, with the same requires_grad flag (stock PyTorch keeps it on reload).
at::Tensor asParameter(at::Tensor value, const at::Tensor& old) {
  value = value.contiguous();
  if (old.defined() && old.requires_grad()) value.set_requires_grad(true);
  return value;
}

// Updates a Linear's width metadata: a TorchScript constant (scripted nn.Linear) or an int attribute.
void setWidth(Module& module, const std::string& name, int64_t value) {
  const c10::ClassTypePtr type = module.type();
  if (type->hasConstant(name)) {
    type->unsafeRemoveConstant(name);
    type->addConstant(name, value);
  } else if (type->hasAttribute(name) && module.attr(name).isInt()) {
    module.setattr(name, value);
  }
}

// Gives fc2 a bias parameter. A Linear built with bias=False has a None attribute (scripted) or a None
// constant in its graph (traced), so the attribute is retyped and the graph made to read it.
void setBias(LinearLayer& layer, const at::Tensor& bias) {
  if (layer.bias.defined()) {
    layer.module.register_parameter("bias", asParameter(bias, layer.weight), false);
    return;
  }
  const c10::ClassTypePtr type = layer.module.type();
  if (type->hasAttribute("bias")) {
    layer.module._ivalue()->unsafeRemoveAttr("bias");
    type->unsafeRemoveAttribute("bias");
  }
  layer.module.register_parameter("bias", asParameter(bias, layer.weight), false);
  const auto graph = forwardGraph(layer.module);
  torch::jit::Node* linear = graph->outputs()[0]->node();
  torch::jit::WithInsertPoint insertPoint(linear);
  torch::jit::Value* read = graph->insertGetAttr(graph->inputs()[0], "bias");
  linear->replaceInput(2, read);
}

// Each layer may be cut once: a second cut of the same layer would slice already-sliced weights.
void checkDistinctLayers(const std::vector<LayerCut>& cuts) {
  std::unordered_set<std::string> seen;
  for (const LayerCut& cut : cuts) {
    for (const std::string* layer : {&cut.fc1, &cut.fc2}) {
      if (!seen.insert(*layer).second) throw Error(code::kPlan, "the plan cuts '" + *layer + "' more than once");
    }
  }
}

}  // namespace

std::shared_ptr<TorchModel> pruneModel(const TorchModel& source, const std::vector<LayerCut>& cuts, Compensation compensation) {
  torch::NoGradGuard noGrad;
  // Validate everything against the source before copying anything.
  checkDistinctLayers(cuts);
  for (const LayerCut& cut : cuts) {
    const LinearLayer fc1 = linearAt(source.module(), cut.fc1);
    const LinearLayer fc2 = linearAt(source.module(), cut.fc2);
    if (fc1.weight.size(0) != fc2.weight.size(1)) {
      throw Error(code::kPlan, "'" + cut.fc1 + "' has " + std::to_string(fc1.weight.size(0)) + " outputs but '" + cut.fc2 + "' takes " +
                                   std::to_string(fc2.weight.size(1)) + " inputs: not an MLP pair of this model");
    }
    checkCut(cut, fc1.weight.size(0), compensation);
  }

  OwnTypesCopy owned = cloneWithOwnTypes(source.module(), TensorCopy::Deep);
  Module copy = owned.module;
  for (const LayerCut& cut : cuts) {
    LinearLayer fc1 = linearAt(copy, cut.fc1);
    LinearLayer fc2 = linearAt(copy, cut.fc2);
    const int64_t hidden = fc1.weight.size(0);
    const at::Tensor keep = at::tensor(cut.keep, at::TensorOptions().dtype(at::kLong)).to(fc1.weight.device());
    std::vector<int64_t> pruned;
    for (int64_t j = 0, k = 0; j < hidden; ++j) {
      if (k < static_cast<int64_t>(cut.keep.size()) && cut.keep[k] == j) {
        ++k;
      } else {
        pruned.push_back(j);
      }
    }
    const Fc2Update fc2Update = compensateFc2(fc2.weight, fc2.bias, {cut.keep, pruned, cut.prunedMeans, cut.means, cut.covariance}, compensation,
                                              "MLP (" + cut.fc1 + " -> " + cut.fc2 + ")");
    if (fc2Update.bias.defined()) setBias(fc2, fc2Update.bias.to(fc2.weight.scalar_type()));
    fc1.module.register_parameter("weight", asParameter(fc1.weight.index_select(0, keep), fc1.weight), false);
    if (fc1.bias.defined()) {
      fc1.module.register_parameter("bias", asParameter(fc1.bias.index_select(0, keep), fc1.bias), false);
    }
    fc2.module.register_parameter("weight", asParameter(fc2Update.weight.to(fc2.weight.scalar_type()), fc2.weight), false);
    setWidth(fc1.module, "out_features", static_cast<int64_t>(cut.keep.size()));
    setWidth(fc2.module, "in_features", static_cast<int64_t>(cut.keep.size()));
  }
  return source.derived(std::move(owned));
}

std::vector<NeuronNorms> neuronNorms(const TorchModel& model, const std::vector<MlpBlock>& mlps) {
  torch::NoGradGuard noGrad;
  std::vector<NeuronNorms> result;
  for (const MlpBlock& block : mlps) {
    const LinearLayer fc1 = linearAt(model.module(), block.fc1);
    const LinearLayer fc2 = linearAt(model.module(), block.fc2);
    at::Tensor rows = fc1.weight.to(at::kDouble).square().sum(1);
    if (fc1.bias.defined()) rows = rows + fc1.bias.to(at::kDouble).square();
    const at::Tensor cols = fc2.weight.to(at::kDouble).square().sum(0);
    result.push_back({rows.to(at::kCPU).contiguous(), cols.to(at::kCPU).contiguous()});
  }
  return result;
}

}  // namespace vbp
