#include "core/training_mode.h"

#include <optional>
#include <sstream>

#include "core/errors.h"

namespace vbp {
namespace {

// Ops whose behaviour depends on the mode, and the position of their mode flag.
struct ModeOp {
  const char* kind;
  size_t flagInput;
  std::optional<size_t> probabilityInput;
};

const ModeOp kModeOps[] = {
    {"aten::dropout", 2, 1},
    {"aten::dropout_", 2, 1},
    {"aten::feature_dropout", 2, 1},
    {"aten::feature_dropout_", 2, 1},
    {"aten::alpha_dropout", 2, 1},
    {"aten::alpha_dropout_", 2, 1},
    {"aten::feature_alpha_dropout", 2, 1},
    {"aten::feature_alpha_dropout_", 2, 1},
    {"aten::batch_norm", 5, std::nullopt},
    {"aten::instance_norm", 5, std::nullopt},
};

// Random ops a traced graph keeps only when it was traced in train mode (timm's drop-path, for one).
const char* const kRandomOps[] = {"aten::bernoulli", "aten::bernoulli_", "aten::rand", "aten::rand_like"};

std::optional<c10::IValue> constantInput(const torch::jit::Node* node, size_t index) {
  if (index >= node->inputs().size()) return std::nullopt;
  return torch::jit::toIValue(node->input(index));
}

void inspectBlock(const torch::jit::Block* block, const std::string& where, TrainingModeReport& report, bool& readsTraining,
                  std::vector<std::string>& randomOps) {
  for (const torch::jit::Node* node : block->nodes()) {
    for (const torch::jit::Block* inner : node->blocks()) inspectBlock(inner, where, report, readsTraining, randomOps);
    const std::string kind = node->kind().toQualString();
    if (node->kind() == c10::prim::GetAttr && node->s(c10::attr::name) == "training") readsTraining = true;
    for (const char* random : kRandomOps) {
      if (kind == random) randomOps.push_back(where + ": " + kind);
    }
    for (const ModeOp& op : kModeOps) {
      if (kind != op.kind) continue;
      const auto flag = constantInput(node, op.flagInput);
      if (!flag || !flag->isBool()) break;  // read at run time: honours train()
      std::ostringstream text;
      text << where << ": " << kind << "(";
      if (op.probabilityInput) {
        const auto p = constantInput(node, *op.probabilityInput);
        if (p && p->isDouble() && p->toDouble() == 0.0) break;  // the same in both modes
        if (p && p->isDouble()) text << "p=" << p->toDouble() << ", ";
      }
      text << "train=" << (flag->toBool() ? "true" : "false") << ")";
      (flag->toBool() ? report.frozenOn : report.frozenOff).push_back(text.str());
      break;
    }
  }
}

}  // namespace

TrainingModeReport inspectTrainingMode(const torch::jit::Module& module) {
  TrainingModeReport report;
  bool readsTraining = false;
  std::vector<std::string> randomOps;
  for (const auto& item : module.named_modules()) {
    const std::string where = item.name.empty() ? "<root>" : item.name;
    for (const auto& method : item.value.get_methods()) {
      inspectBlock(method.graph()->block(), where, report, readsTraining, randomOps);
    }
  }
  report.honoursTrainMode = readsTraining;
  // Without any read of `training` the random ops cannot be switched off: they were traced in train mode.
  if (!readsTraining) report.frozenOn.insert(report.frozenOn.end(), randomOps.begin(), randomOps.end());
  return report;
}

void requireTrainable(const TrainingModeReport& report) {
  if (report.frozenOn.empty()) return;
  std::string list;
  for (size_t i = 0; i < report.frozenOn.size() && i < 3; ++i) list += (i ? "; " : "") + report.frozenOn[i];
  if (report.frozenOn.size() > 3) list += "; and " + std::to_string(report.frozenOn.size() - 3) + " more";
  throw Error(code::kNotTrainable, "this model's graph has dropout or other train-mode behaviour frozen on (" + list +
                                       "): it was traced in train mode, so it also drops activations at inference. Export it again with "
                                       "torch.jit.script, or trace it after model.eval()");
}

}  // namespace vbp
