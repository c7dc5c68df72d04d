#include "core/running_stats.h"

#include <ATen/Parallel.h>

#include <atomic>
#include <cmath>
#include <vector>

#include "core/errors.h"
#include "core/gram.h"

namespace vbp {
namespace {

struct BatchMoments {
  at::Tensor mean;       // [hidden] float64
  at::Tensor m2;         // [hidden] float64
  at::Tensor nonFinite;  // int64 scalar
};

// CPU float32: two passes over the activations, accumulating in float64 per neuron, without the float64
// copies and temporaries that the ATen expression needs (those cost as much memory traffic as a layer).
BatchMoments cpuFloatMoments(const at::Tensor& x) {
  const int64_t rows = x.size(0);
  const int64_t cols = x.size(1);
  const float* data = x.data_ptr<float>();
  at::Tensor mean = at::zeros({cols}, at::TensorOptions().dtype(at::kDouble));
  at::Tensor m2 = at::zeros({cols}, at::TensorOptions().dtype(at::kDouble));
  double* meanData = mean.data_ptr<double>();
  double* m2Data = m2.data_ptr<double>();
  std::atomic<int64_t> nonFinite{0};
  // Column blocks: each task owns its accumulators; rows are read in order, so access stays sequential.
  at::parallel_for(0, cols, 256, [&](int64_t begin, int64_t end) {
    int64_t bad = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = data + r * cols;
      for (int64_t c = begin; c < end; ++c) {
        const float v = row[c];
        if (!std::isfinite(v)) ++bad;
        meanData[c] += v;
      }
    }
    for (int64_t c = begin; c < end; ++c) meanData[c] /= static_cast<double>(rows);
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = data + r * cols;
      for (int64_t c = begin; c < end; ++c) {
        const double d = static_cast<double>(row[c]) - meanData[c];
        m2Data[c] += d * d;
      }
    }
    nonFinite += bad;
  });
  return {mean, m2, at::scalar_tensor(static_cast<int64_t>(nonFinite.load()), at::TensorOptions().dtype(at::kLong))};
}

// Any device and dtype: the same two-pass statistics with ATen ops, in float64 on the tensor's device.
BatchMoments genericMoments(const at::Tensor& activations) {
  const at::Tensor x = activations.to(at::kDouble);
  const at::Tensor mean = x.mean(0);
  return {mean, (x - mean).square_().sum(0), at::logical_not(at::isfinite(x)).sum()};
}

// The rows' deviations from `reference`, in `productType` (float64 arithmetic first for float64 products).
at::Tensor centred(const at::Tensor& x, const at::Tensor& reference, at::ScalarType productType) {
  if (productType == at::kDouble) return x.to(at::kDouble) - reference;
  return x.to(productType) - reference.to(productType);
}

// Rows [first, first + n) of the stream that a covariance sampling `share` keeps: those whose position
// hashes (splitmix64) below the share.
std::vector<int64_t> sampledRows(int64_t first, int64_t n, double share) {
  std::vector<int64_t> rows;
  for (int64_t r = 0; r < n; ++r) {
    uint64_t z = static_cast<uint64_t>(first + r) + 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    if (static_cast<double>(z >> 11) * 0x1.0p-53 < share) rows.push_back(r);
  }
  return rows;
}

}  // namespace

void RunningStats::addToCovariance(const at::Tensor& x, const at::Tensor& batchMean) {
  if (!scatter_.defined()) {
    reference_ = batchMean;
    scatter_ = at::zeros({hidden_, hidden_}, batchMean.options());
    covarianceSum_ = at::zeros({hidden_}, batchMean.options());
  }
  at::Tensor rows = x;
  if (covariance_.sampling < 1.0) {
    const std::vector<int64_t> kept = sampledRows(count_, x.size(0), covariance_.sampling);
    if (kept.empty()) return;
    rows = x.index_select(0, at::tensor(kept, at::TensorOptions().dtype(at::kLong)).to(x.device()));
  }
  addGram(scatter_, centred(rows, reference_, covariance_.productType));
  covarianceSum_.add_(at::sum(rows, {0}, false, at::kDouble) - reference_ * static_cast<double>(rows.size(0)));
  covarianceCount_ += rows.size(0);
}

void RunningStats::add(const at::Tensor& activations) {
  if (activations.dim() == 0 || activations.size(-1) != hidden_) {
    throw Error(code::kStats, "statistics tap expected activations with " + std::to_string(hidden_) + " features in the last dimension, got shape " +
                                  c10::str(activations.sizes()));
  }
  const at::Tensor x = activations.reshape({-1, hidden_});
  const int64_t n = x.size(0);
  if (n == 0) return;
  // Two-pass statistics of the batch in float64, then Chan's merge with the running totals.
  const bool fastPath = x.device().is_cpu() && x.scalar_type() == at::kFloat;
  const BatchMoments batch = fastPath ? cpuFloatMoments(x.contiguous()) : genericMoments(x);
  const at::Tensor& batchMean = batch.mean;
  const at::Tensor& batchM2 = batch.m2;
  const at::Tensor& batchNonFinite = batch.nonFinite;

  std::lock_guard<std::mutex> lock(mutex_);
  if (covariance_.enabled) addToCovariance(x, batchMean);
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
  const auto cpuDouble = at::TensorOptions().dtype(at::kDouble);
  if (count_ == 0) {
    s.mean = at::zeros({hidden_}, cpuDouble);
    s.m2 = at::zeros({hidden_}, cpuDouble);
    if (covariance_.enabled) {
      s.comoment = at::zeros({hidden_, hidden_}, cpuDouble);
      s.covarianceMean = at::zeros({hidden_}, cpuDouble);
    }
    return s;
  }
  s.mean = mean_.to(at::kCPU).contiguous();
  s.m2 = m2_.to(at::kCPU).contiguous();
  if (covariance_.enabled) {
    s.covarianceCount = covarianceCount_;
    if (covarianceCount_ == 0) {
      s.comoment = at::zeros({hidden_, hidden_}, cpuDouble);
      s.covarianceMean = at::zeros({hidden_}, cpuDouble);
    } else {
      // The co-moment about the samples' own mean: scatter - n (mean - c)(mean - c)^T.
      const at::Tensor shift = covarianceSum_ / static_cast<double>(covarianceCount_);
      s.comoment = symmetricFromUpper(scatter_).addr_(shift, shift, 1.0, -static_cast<double>(covarianceCount_)).to(at::kCPU).contiguous();
      s.covarianceMean = (reference_ + shift).to(at::kCPU).contiguous();
    }
  }
  s.nonFinite = nonFinite_.item<int64_t>();
  return s;
}

}  // namespace vbp
