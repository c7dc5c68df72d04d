// Multiply-accumulate count of one forward, measured by watching the ops LibTorch dispatches
// (linear, matmul, bmm, convolution, attention). Counts the outermost such op only, so that linear ->
// matmul -> mm is counted once.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/model.h"

namespace vbp {

struct MacCount {
  double total = 0;
  std::map<std::string, double> byKind;  // linear, matmul, conv, attention
};

// Runs one forward of `inputs` and counts its multiply-accumulates.
MacCount countMacs(TorchModel& model, std::vector<c10::IValue> inputs);

}  // namespace vbp
