// Which neurons to remove when least squares will compensate them: greedily, globally, the neurons whose
// removal adds the least output error once the kept neurons take over their part.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/model.h"

namespace vbp {

struct SelectionBlock {
  at::Tensor covariance;  // [hidden, hidden] float64, population covariance of the hidden activations
  at::Tensor fc2Weight;   // [out, hidden] float64
};

// Removes `count` neurons in all, at most hidden - 1 per block, in steps of about count / 1000 neurons. A
// neuron's cost is ||W2'[:, j]||^2 / P_jj, where P = (C_KK + lambda I)^-1 is the precision of the kept
// neurons and W2' fc2 after compensating the neurons removed so far; both are updated exactly after each
// step (Schur complement). lambda = ridge * mean(diag C). Returns the removed indices per block, ascending.
// Throws vbp::Error(PLAN) when a block's covariance plus ridge is not positive definite.
std::vector<std::vector<int64_t>> compensatedRemovals(const std::vector<SelectionBlock>& blocks, int64_t count, double ridge);

// The blocks of `model` whose fc2 layers are at `fc2Paths`, with the given covariances ([hidden * hidden] each).
std::vector<SelectionBlock> selectionBlocks(const TorchModel& model, const std::vector<std::string>& fc2Paths,
                                            const std::vector<std::vector<double>>& covariances);

}  // namespace vbp
