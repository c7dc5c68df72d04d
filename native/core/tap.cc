#include "core/tap.h"

#include <torch/library.h>

#include <cstdio>
#include <mutex>
#include <random>
#include <unordered_map>

#include "core/errors.h"
#include "core/graph_mode.h"
#include "core/module_paths.h"
#include "core/own_types.h"

namespace vbp {
namespace {

// What a tap feeds: one block's statistics, and the session's slot for the first failure (an error raised
// inside the TorchScript interpreter reaches the caller only as the interpreter's own message).
struct TapTarget {
  std::shared_ptr<RunningStats> stats;
  std::shared_ptr<TapFailure> failure;
};

// Live tap targets by id. Ids are random 62-bit numbers, never reused: a graph (or a model's own code) can
// neither guess one nor write into another session's statistics with a stale one.
class TapRegistry {
 public:
  static TapRegistry& instance() {
    static auto* registry = new TapRegistry();  // never destroyed: pool threads may still tap at exit
    return *registry;
  }

  int64_t add(TapTarget target) {
    std::lock_guard<std::mutex> lock(mutex_);
    int64_t id = 0;
    do {
      id = static_cast<int64_t>(random_() >> 2);
    } while (id == 0 || live_.count(id) != 0);
    live_.emplace(id, std::move(target));
    return id;
  }

  void remove(int64_t id) {
    std::lock_guard<std::mutex> lock(mutex_);
    live_.erase(id);
  }

  std::optional<TapTarget> find(int64_t id) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = live_.find(id);
    if (it == live_.end()) return std::nullopt;
    return it->second;
  }

 private:
  TapRegistry() : random_(std::random_device{}()) {}
  std::mutex mutex_;
  std::mt19937_64 random_;
  std::unordered_map<int64_t, TapTarget> live_;
};

at::Tensor tap(const at::Tensor& x, int64_t id) {
  const auto target = TapRegistry::instance().find(id);
  if (!target) return x;
  // The statistics' own work (the covariance product) is not the model's: the MAC counter skips it.
  MacCountPause notTheModels;
  try {
    target->stats->add(x);
  } catch (const Error& e) {
    target->failure->record(e.code(), e.what());
    throw;
  }
  return x;
}

// Never destroyed: destroying a Library removes its operators, which graphs of live sessions use (the
// sanitizer suite's leak check knows this function: test/support/lsan.supp).
__attribute__((noinline)) void registerTapLibrary(const std::string& ns) {
  auto* library = new torch::Library(torch::Library::DEF, ns, c10::nullopt, __FILE__, __LINE__);
  // CONSERVATIVE: the op has a side effect (it records), so the JIT must neither drop nor reorder it.
  library->def(torch::schema((ns + "::tap(Tensor x, int id) -> Tensor").c_str(), c10::AliasAnalysisKind::CONSERVATIVE), &tap);
}

// The tap operator, registered when first needed under a namespace of this copy of the addon alone
// ("vbp_" and a random suffix). Two copies of the addon in one process (two versions in nested
// node_modules) each register their own, and model code cannot name it.
c10::Symbol tapSymbol() {
  static const c10::Symbol symbol = [] {
    std::random_device seed;
    char suffix[17];
    std::snprintf(suffix, sizeof(suffix), "%08x%08x", seed(), seed());
    const std::string ns = std::string("vbp_") + suffix;
    try {
      registerTapLibrary(ns);
    } catch (const std::exception& e) {
      throw Error(code::kInternal, std::string("cannot register the statistics tap operator: ") + e.what());
    }
    return c10::Symbol::fromQualString(ns + "::tap");
  }();
  return symbol;
}

// Inserts `x = tap(x, id)` at the top of fc2's forward, so every call sees the hidden activations
// (fc2's input, i.e. after the activation function) whatever the calling graph looks like.
void insertTap(torch::jit::Module& fc2, int64_t id) {
  const auto graph = forwardGraph(fc2);
  torch::jit::Value* input = graph->inputs().at(1);
  torch::jit::WithInsertPoint insertPoint(graph->block()->nodes().front());
  torch::jit::Value* tapped = graph->insert(tapSymbol(), {input, id});
  input->replaceAllUsesAfterNodeWith(tapped->node(), tapped);
}

}  // namespace

void TapFailure::record(const std::string& code, const std::string& message) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!failed_) {
    failed_ = true;
    code_ = code;
    message_ = message;
  }
}

void TapFailure::rethrowIfFailed() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!failed_) return;
  failed_ = false;
  throw Error(code_, message_);
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
      const int64_t id = TapRegistry::instance().add({stats, failure_});
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
  std::optional<MacCounter> counter;
  if (countMacs) counter.emplace();
  try {
    instrumented_->run(std::move(inputs));
  } catch (...) {
    failure_->rethrowIfFailed();  // the tap's own error (STATS, ...), not the interpreter's wrapping of it
    throw;
  }
  if (!counter) return std::nullopt;
  return counter->count();
}

std::vector<StatsSnapshot> StatsSession::snapshot() const {
  std::vector<StatsSnapshot> result;
  for (const auto& stats : stats_) result.push_back(stats->snapshot());
  return result;
}

}  // namespace vbp
