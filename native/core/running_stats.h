// Per-neuron count, mean and M2 (sum of squared deviations) in float64, merged batch by batch with Chan's
// parallel formula. Mergeable across shards exactly as across batches.
#pragma once

#include <ATen/ATen.h>

#include <mutex>

namespace vbp {

struct StatsSnapshot {
  int64_t count = 0;       // samples per neuron (every token of every image is one sample)
  int64_t nonFinite = 0;   // NaN/Inf values seen in the hidden activations
  at::Tensor mean;         // [hidden] float64, CPU
  at::Tensor m2;           // [hidden] float64, CPU
};

class RunningStats {
 public:
  explicit RunningStats(int64_t hidden) : hidden_(hidden) {}

  // Adds a batch of hidden activations [..., hidden] (on any device; the sums stay on that device). How many
  // items (images) they came from is not known here: the layout may be [B, T, H], [T, B, H] or [B * T, H].
  void add(const at::Tensor& activations);

  StatsSnapshot snapshot() const;
  int64_t hidden() const { return hidden_; }

 private:
  const int64_t hidden_;
  mutable std::mutex mutex_;
  int64_t count_ = 0;
  at::Tensor mean_;       // float64 on the activations' device
  at::Tensor m2_;
  at::Tensor nonFinite_;  // int64 scalar on the same device: counting there avoids a sync per batch
};

}  // namespace vbp
