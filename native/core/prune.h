// Structured pruning of MLP hidden neurons: slice fc1's rows and fc2's columns, with what takes the removed
// neurons' place folded into fc2 (core/compensation.h).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/compensation.h"
#include "core/mlp_finder.h"
#include "core/model.h"

namespace vbp {

struct LayerCut {
  std::string fc1;
  std::string fc2;
  std::vector<int64_t> keep;        // neurons kept: ascending, unique, at least one
  std::vector<double> prunedMeans;  // calibration means of the removed neurons, ascending index order (Mean)
  std::vector<double> means;        // calibration means of every neuron (LeastSquares)
  std::vector<double> covariance;   // covariance of the neurons or any positive multiple (the co-moment), [hidden, hidden] row-major (LeastSquares)
};

// A new, smaller model; `source` is not modified. Compensation is computed in float64 and cast to fc2's
// dtype; a bias is created where fc2 has none and something is folded into it.
std::shared_ptr<TorchModel> pruneModel(const TorchModel& source, const std::vector<LayerCut>& cuts, Compensation compensation);

// Squared L2 norms per hidden neuron, in float64 on the CPU: fc1's row plus its bias entry, and fc2's column.
struct NeuronNorms {
  at::Tensor fc1RowSq;
  at::Tensor fc2ColSq;
};
std::vector<NeuronNorms> neuronNorms(const TorchModel& model, const std::vector<MlpBlock>& mlps);

}  // namespace vbp
