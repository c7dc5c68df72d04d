// Per-neuron count, mean and M2 (sum of squared deviations) in float64, merged batch by batch with Chan's
// parallel formula; optionally the co-moment matrix too (sum of outer products of deviations, whose
// diagonal is M2). Mergeable across shards exactly as across batches.
#pragma once

#include <ATen/ATen.h>

#include <mutex>

namespace vbp {

struct CovarianceOptions {
  bool enabled = false;
  // Element type of the per-batch product Xc^T Xc of centred activations; the running sum is float64
  // either way. Float32 halves the time of the product on CPU at a measured cost in accuracy.
  at::ScalarType productType = at::kDouble;
  // Share of the samples (rows) the covariance uses, chosen by a hash of each row's position in the stream
  // (deterministic, and spread over items and tokens whatever the layout). 1: every row.
  double sampling = 1.0;
};

struct StatsSnapshot {
  int64_t count = 0;            // samples per neuron (every token of every image is one sample)
  int64_t nonFinite = 0;        // NaN/Inf values seen in the hidden activations
  at::Tensor mean;              // [hidden] float64, CPU
  at::Tensor m2;                // [hidden] float64, CPU
  at::Tensor comoment;          // [hidden, hidden] float64, CPU; undefined without covariance
  int64_t covarianceCount = 0;  // samples the co-moment is of (count, unless sampled)
  at::Tensor covarianceMean;    // [hidden] float64, CPU: their mean (mean, unless sampled)
};

class RunningStats {
 public:
  explicit RunningStats(int64_t hidden, CovarianceOptions covariance = {}) : hidden_(hidden), covariance_(covariance) {}

  // Adds a batch of hidden activations [..., hidden] (on any device; the sums stay on that device). How many
  // items (images) they came from is not known here: the layout may be [B, T, H], [T, B, H] or [B * T, H].
  void add(const at::Tensor& activations);

  StatsSnapshot snapshot() const;
  int64_t hidden() const { return hidden_; }

 private:
  // Adds the covariance's share of a batch (call with the mutex held, before count_ is updated).
  void addToCovariance(const at::Tensor& x, const at::Tensor& batchMean);

  const int64_t hidden_;
  const CovarianceOptions covariance_;
  mutable std::mutex mutex_;
  int64_t count_ = 0;
  at::Tensor mean_;  // float64 on the activations' device
  at::Tensor m2_;
  // With covariance: sum over samples of (x - c)(x - c)^T about a fixed reference c (the first batch's mean),
  // float64 on the activations' device, upper triangle kept. The co-moment about the mean is
  // scatter - n (mean - c)(mean - c)^T: summing about a fixed point lets each batch add in place.
  at::Tensor reference_;
  at::Tensor scatter_;
  at::Tensor covarianceSum_;  // sum over the covariance's samples of (x - c), float64
  int64_t covarianceCount_ = 0;
  at::Tensor nonFinite_;  // int64 scalar on the same device: counting there avoids a sync per batch
};

}  // namespace vbp
