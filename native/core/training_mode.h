// How a TorchScript graph reacts to train(): scripted modules read their `training` attribute, traced ones
// had the mode of dropout and batch norm frozen in as constants when they were traced.
#pragma once

#include <torch/script.h>

#include <string>
#include <vector>

namespace vbp {

struct TrainingModeReport {
  // True when some graph reads a module's `training` attribute (scripted code): train() takes effect.
  bool honoursTrainMode = false;
  // Mode-dependent ops whose mode is a constant, e.g. "blocks.0.attn: aten::dropout(p=0.1, train=false)".
  std::vector<std::string> frozenOff;
  std::vector<std::string> frozenOn;
};

// Walks every method of every submodule. Ops with p = 0 are ignored: they do the same in either mode.
TrainingModeReport inspectTrainingMode(const torch::jit::Module& module);

// Throws NOT_TRAINABLE when training would run ops frozen in train mode (dropout that also runs at
// inference): the graph was traced in train mode and must be exported again.
void requireTrainable(const TrainingModeReport& report);

}  // namespace vbp
