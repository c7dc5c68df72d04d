#include "core/running_stats.h"

#include "core/errors.h"

namespace vbp {

void RunningStats::add(const at::Tensor& activations) {
  if (activations.dim() == 0 || activations.size(-1) != hidden_) {
    throw Error(code::kStats, "statistics tap expected activations with " + std::to_string(hidden_) +
                                  " features in the last dimension, got shape " + c10::str(activations.sizes()));
  }
  const at::Tensor x = activations.reshape({-1, hidden_}).to(at::kDouble);
  const int64_t n = x.size(0);
  if (n == 0) return;
  // Two-pass statistics of the batch in float64, then Chan's merge with the running totals.
  const at::Tensor batchMean = x.mean(0);
  const at::Tensor batchM2 = (x - batchMean).square_().sum(0);
  const at::Tensor batchNonFinite = at::logical_not(at::isfinite(x)).sum();

  std::lock_guard<std::mutex> lock(mutex_);
  items_ += activations.dim() >= 2 ? activations.size(0) : 1;
  if (count_ == 0) {
    mean_ = batchMean;
    m2_ = batchM2;
    nonFinite_ = batchNonFinite;
    count_ = n;
    return;
  }
  const double na = static_cast<double>(count_);
  const double nb = static_cast<double>(n);
  const double total = na + nb;
  const at::Tensor delta = batchMean - mean_;
  mean_ = mean_ + delta * (nb / total);
  m2_ = m2_ + batchM2 + delta.square() * (na * nb / total);
  nonFinite_ = nonFinite_ + batchNonFinite;
  count_ += n;
}

StatsSnapshot RunningStats::snapshot() const {
  std::lock_guard<std::mutex> lock(mutex_);
  StatsSnapshot s;
  s.count = count_;
  s.items = items_;
  const auto cpuDouble = at::TensorOptions().dtype(at::kDouble);
  if (count_ == 0) {
    s.mean = at::zeros({hidden_}, cpuDouble);
    s.m2 = at::zeros({hidden_}, cpuDouble);
    return s;
  }
  s.mean = mean_.to(at::kCPU).contiguous();
  s.m2 = m2_.to(at::kCPU).contiguous();
  s.nonFinite = nonFinite_.item<int64_t>();
  return s;
}

}  // namespace vbp
