// How TorchScript runs a graph on this thread. The graph executor's optimisation switch is thread-local:
// off, a method runs op by op through the interpreter (no profiling runs, no specialisation, autograd as in
// eager mode); on (LibTorch's default), the profiling executor first runs the graph instrumented for a few
// calls, then an optimised plan.
#pragma once

#include <torch/csrc/jit/python/update_graph_executor_opt.h>

namespace vbp {

// Sets the switch for one scope on this thread.
class GraphOptimization {
 public:
  explicit GraphOptimization(bool enabled) : previous_(torch::jit::getGraphExecutorOptimize()) { torch::jit::setGraphExecutorOptimize(enabled); }
  ~GraphOptimization() { torch::jit::setGraphExecutorOptimize(previous_); }
  GraphOptimization(const GraphOptimization&) = delete;
  GraphOptimization& operator=(const GraphOptimization&) = delete;

 private:
  bool previous_;
};

}  // namespace vbp
