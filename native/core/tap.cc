#include "core/tap.h"

#include <torch/library.h>

#include <atomic>
#include <mutex>
#include <unordered_map>

#include "core/errors.h"
#include "core/graph_mode.h"
#include "core/module_paths.h"
#include "core/own_types.h"

namespace vbp {
namespace {

// Live RunningStats by tap id. Ids are never reused, so a stray tapped graph can never write into
// another session's statistics.
class TapRegistry {
 public:
  static TapRegistry& instance() {
    static TapRegistry registry;
    return registry;
  }

  int64_t add(std::shared_ptr<RunningStats> stats) {
    std::lock_guard<std::mutex> lock(mutex_);
    const int64_t id = nextId_++;
    live_.emplace(id, std::move(stats));
    return id;
  }

  void remove(int64_t id) {
    std::lock_guard<std::mutex> lock(mutex_);
    live_.erase(id);
  }

  std::shared_ptr<RunningStats> find(int64_t id) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = live_.find(id);
    return it == live_.end() ? nullptr : it->second;
  }

 private:
  std::mutex mutex_;
  int64_t nextId_ = 1;
  std::unordered_map<int64_t, std::shared_ptr<RunningStats>> live_;
};

at::Tensor tap(const at::Tensor& x, int64_t id) {
  if (auto stats = TapRegistry::instance().find(id)) stats->add(x);
  return x;
}

// Inserts `x = vbp::tap(x, id)` at the top of fc2's forward, so every call sees the hidden activations
// (fc2's input, i.e. after the activation function) whatever the calling graph looks like.
void insertTap(torch::jit::Module& fc2, int64_t id) {
  const auto graph = forwardGraph(fc2);
  torch::jit::Value* input = graph->inputs().at(1);
  torch::jit::WithInsertPoint insertPoint(graph->block()->nodes().front());
  torch::jit::Value* tapped = graph->insert(c10::Symbol::fromQualString("vbp::tap"), {input, id});
  input->replaceAllUsesAfterNodeWith(tapped->node(), tapped);
}

}  // namespace

TORCH_LIBRARY(vbp, m) {
  // CONSERVATIVE: the op has a side effect (it records), so the JIT must neither drop nor reorder it.
  m.def(torch::schema("vbp::tap(Tensor x, int id) -> Tensor", c10::AliasAnalysisKind::CONSERVATIVE), &tap);
}

StatsSession::StatsSession(const TorchModel& source, std::vector<MlpBlock> mlps, CovarianceOptions covariance, bool optimizeGraph)
    : mlps_(std::move(mlps)), optimizeGraph_(optimizeGraph) {
  if (mlps_.empty()) throw Error(code::kNoMlp, "no MLP blocks to gather statistics for");
  torch::NoGradGuard noGrad;
  OwnTypesCopy owned = cloneWithOwnTypes(source.module(), TensorCopy::Share);
  torch::jit::Module copy = owned.module;
  try {
    for (const MlpBlock& block : mlps_) {
      torch::jit::Module fc2 = submoduleAt(copy, block.fc2, code::kMlpSpec);
      auto stats = std::make_shared<RunningStats>(block.hidden, covariance);
      const int64_t id = TapRegistry::instance().add(stats);
      ids_.push_back(id);
      stats_.push_back(stats);
      insertTap(fc2, id);
    }
  } catch (...) {
    for (const int64_t id : ids_) TapRegistry::instance().remove(id);
    throw;
  }
  instrumented_ = source.derived(std::move(owned));
}

StatsSession::~StatsSession() {
  for (const int64_t id : ids_) TapRegistry::instance().remove(id);
}

std::optional<MacCount> StatsSession::run(std::vector<c10::IValue> inputs, bool countMacs) {
  // Op by op: the profiling executor's first calls on a new graph run instrumented and slow, and a
  // calibration is a handful of batches (see the README's Performance section for the measurements).
  GraphOptimization mode(optimizeGraph_);
  if (!countMacs) {
    instrumented_->run(std::move(inputs));
    return std::nullopt;
  }
  MacCounter counter;
  instrumented_->run(std::move(inputs));
  return counter.count();
}

std::vector<StatsSnapshot> StatsSession::snapshot() const {
  std::vector<StatsSnapshot> result;
  for (const auto& stats : stats_) result.push_back(stats->snapshot());
  return result;
}

}  // namespace vbp
