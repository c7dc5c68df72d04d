// Multiply-accumulate count of one forward, measured by watching the ops LibTorch dispatches
// (linear, matmul, bmm, convolution, attention). Counts the outermost such op only, so that linear ->
// matmul -> mm is counted once.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/model.h"

namespace vbp {

struct MacCount {
  double total = 0;
  std::map<std::string, double> byKind;  // linear, matmul, conv, attention
};

// Counts the multiply-accumulates of the ops this thread runs while it lives (one at a time per thread).
class MacCounter {
 public:
  MacCounter();
  ~MacCounter();
  MacCounter(const MacCounter&) = delete;
  MacCounter& operator=(const MacCounter&) = delete;
  const MacCount& count() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Stops this thread's counter while it lives: work of our own inside a forward (the statistics tap's
// covariance product) is not the model's.
class MacCountPause {
 public:
  MacCountPause();
  ~MacCountPause();
  MacCountPause(const MacCountPause&) = delete;
  MacCountPause& operator=(const MacCountPause&) = delete;

 private:
  void* paused_;
};

// Runs one forward of `inputs` and counts its multiply-accumulates.
MacCount countMacs(TorchModel& model, std::vector<c10::IValue> inputs);

}  // namespace vbp
