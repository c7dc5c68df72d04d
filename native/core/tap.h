// The statistics tap: an identity operator `tap(x, id)` (in a namespace of its own, see tap.cc) that feeds x into the RunningStats registered
// under `id`, inserted at the input of each fc2 in an instrumented copy of the model.
#pragma once

#include <torch/script.h>

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/macs.h"
#include "core/mlp_finder.h"
#include "core/model.h"
#include "core/running_stats.h"

namespace vbp {

// The first error a tap raised during a batch, kept for the caller (see tap.cc).
class TapFailure {
 public:
  void record(const std::string& code, const std::string& message);
  // Throws the recorded error as a vbp::Error with its own code, and clears it; nothing when there is none.
  void rethrowIfFailed();

 private:
  std::mutex mutex_;
  bool failed_ = false;
  std::string code_;
  std::string message_;
};

// One calibration run: a private, instrumented copy of the model (the user's model is never touched)
// and one RunningStats per MLP block.
class StatsSession {
 public:
  // `optimizeGraph`: run batches through the graph executor's optimised plan instead of op by op.
  StatsSession(const TorchModel& source, std::vector<MlpBlock> mlps, CovarianceOptions covariance = {}, bool optimizeGraph = false);
  ~StatsSession();
  StatsSession(const StatsSession&) = delete;
  StatsSession& operator=(const StatsSession&) = delete;

  // Runs one calibration batch through the instrumented model; with `countMacs`, also returns the
  // multiply-accumulates of that forward (so that no separate forward is needed to count them).
  std::optional<MacCount> run(std::vector<c10::IValue> inputs, bool countMacs = false);

  std::vector<StatsSnapshot> snapshot() const;
  const std::vector<MlpBlock>& mlps() const { return mlps_; }

 private:
  std::vector<MlpBlock> mlps_;
  std::vector<int64_t> ids_;
  std::vector<std::shared_ptr<RunningStats>> stats_;
  std::shared_ptr<TorchModel> instrumented_;
  std::shared_ptr<TapFailure> failure_ = std::make_shared<TapFailure>();
  bool optimizeGraph_ = false;
};

}  // namespace vbp
