// What takes the place of the removed hidden neurons in fc2: nothing, their calibration means (VBP's mean
// shift), or the best linear prediction of them from the kept neurons (least squares, ridge-regularised).
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace vbp {

enum class CompensationKind { None, Mean, LeastSquares };

struct Compensation {
  CompensationKind kind = CompensationKind::Mean;
  // LeastSquares: lambda = ridge * mean(diag C[K, K]) is added to the diagonal of C[K, K].
  double ridge = 0;
};

// fc2's new weight (columns K only) and bias, in float64 on fc2's device.
struct Fc2Update {
  at::Tensor weight;
  at::Tensor bias;  // undefined when fc2 has none and nothing is folded into one
};

struct CompensationInputs {
  const std::vector<int64_t>& keep;        // K, ascending
  const std::vector<int64_t>& pruned;      // P, ascending
  const std::vector<double>& prunedMeans;  // mu[P] (Mean)
  const std::vector<double>& means;        // mu, every neuron (LeastSquares)
  const std::vector<double>& covariance;   // C or any positive multiple (the co-moment), [hidden, hidden] row-major (LeastSquares)
};

// Mean:  W2[:, K], b2 + W2[:, P] mu[P].
// LeastSquares: A = C[P, K] (C[K, K] + lambda I)^-1 by Cholesky in float64;
//               W2[:, K] + W2[:, P] A, b2 + W2[:, P] (mu[P] - A mu[K]).
// Throws vbp::Error(PRUNE) naming `where` when C[K, K] + lambda I is not positive definite.
Fc2Update compensateFc2(const at::Tensor& weight, const at::Tensor& bias, const CompensationInputs& inputs, const Compensation& compensation,
                        const std::string& where);

}  // namespace vbp
