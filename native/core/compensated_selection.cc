#include "core/compensated_selection.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>

#include "core/errors.h"
#include "core/mlp_finder.h"
#include "core/module_paths.h"

namespace vbp {
namespace {

// One block during the selection. Its matrices keep removed neurons' rows and columns (exactly zero after
// their removal) until enough are gone to be worth compacting away; `neuron` maps matrix positions to the
// block's neuron indices.
struct BlockState {
  std::vector<int64_t> neuron;
  std::vector<bool> alive;
  int64_t aliveCount = 0;
  at::Tensor precision;  // [m, m]
  at::Tensor fc2T;       // [m, out]: fc2 transposed (a neuron's column is a contiguous row), compensated for what was removed
  at::Tensor cost;       // [m]: the cost of each alive position, +inf for removed ones
  std::vector<int64_t> removed;
};

void updateCost(BlockState& block) {
  // ||W2'[:, j]||^2, a reduction along contiguous rows, over the precision's diagonal.
  at::Tensor cost =
      at::linalg_vector_norm(block.fc2T, 2, at::IntArrayRef{1}, false, c10::nullopt).square_().div_(block.precision.diagonal()).contiguous();
  double* c = cost.data_ptr<double>();
  for (size_t p = 0; p < block.alive.size(); ++p) {
    if (!block.alive[p]) c[p] = std::numeric_limits<double>::infinity();
  }
  block.cost = cost;
}

BlockState initialState(const SelectionBlock& block, double ridge, size_t index) {
  const int64_t hidden = block.covariance.size(0);
  at::Tensor regularised = block.covariance.clone();
  const double scale = regularised.diagonal().mean().item<double>();
  regularised.diagonal().add_(ridge * (scale > 0 ? scale : 1.0));
  const auto [factor, info] = at::linalg_cholesky_ex(regularised);
  if (info.item<int64_t>() != 0) {
    throw Error(code::kPlan, "MLP block " + std::to_string(index) +
                                 ": its covariance is singular (constant or collinear "
                                 "neurons); compensated selection needs a ridge > 0");
  }
  BlockState state;
  state.neuron.resize(hidden);
  for (int64_t j = 0; j < hidden; ++j) state.neuron[j] = j;
  state.alive.assign(hidden, true);
  state.aliveCount = hidden;
  state.precision = at::cholesky_inverse(factor);
  state.fc2T = block.fc2Weight.t().contiguous();
  updateCost(state);
  return state;
}

// Drops the rows and columns of removed neurons from the matrices (a copy of what is left).
void compact(BlockState& block) {
  std::vector<int64_t> positions;
  std::vector<int64_t> neurons;
  for (size_t p = 0; p < block.alive.size(); ++p) {
    if (!block.alive[p]) continue;
    positions.push_back(static_cast<int64_t>(p));
    neurons.push_back(block.neuron[p]);
  }
  const at::Tensor index = at::tensor(positions, at::TensorOptions().dtype(at::kLong));
  block.precision = block.precision.index_select(0, index).index_select(1, index);
  block.fc2T = block.fc2T.index_select(0, index);
  block.neuron = std::move(neurons);
  block.alive.assign(block.neuron.size(), true);
}

// Removes matrix positions `positions`: their fc2 columns move onto the others through the prediction of h_S
// from them, -P_SS^-1 P_S. h, and the precision becomes the Schur complement; both updated in place by a
// rank-|S| product, which leaves the removed rows and columns zero.
void removePositions(BlockState& block, const std::vector<int64_t>& positions) {
  const at::Tensor s = at::tensor(positions, at::TensorOptions().dtype(at::kLong));
  const at::Tensor m = at::linalg_solve(block.precision.index_select(0, s).index_select(1, s), block.precision.index_select(0, s));  // [s, m]
  block.fc2T.addmm_(m.t(), block.fc2T.index_select(0, s), 1.0, -1.0);
  block.precision.addmm_(block.precision.index_select(1, s), m, 1.0, -1.0);
  for (const int64_t p : positions) {
    block.alive[p] = false;
    block.removed.push_back(block.neuron[p]);
  }
  block.aliveCount -= static_cast<int64_t>(positions.size());
  if (block.aliveCount <= 3 * static_cast<int64_t>(block.alive.size()) / 4) compact(block);
  updateCost(block);
}

}  // namespace

std::vector<std::vector<int64_t>> compensatedRemovals(const std::vector<SelectionBlock>& blocks, int64_t count, double ridge) {
  std::vector<BlockState> states;
  for (size_t b = 0; b < blocks.size(); ++b) states.push_back(initialState(blocks[b], ridge, b));
  // One neuron at a time is the exact greedy; steps of count / 1000 keep large models (DeiT-B: 18,432 of
  // 36,864 neurons) to about a thousand updates, measured to cost little accuracy on the bundled model.
  const int64_t step = std::max<int64_t>(1, (count + 999) / 1000);
  for (int64_t removed = 0; removed < count;) {
    // Every removable neuron's cost, cheapest first (ties by block, then neuron index).
    std::vector<std::tuple<double, size_t, int64_t, int64_t>> candidates;
    for (size_t b = 0; b < states.size(); ++b) {
      if (states[b].aliveCount <= 1) continue;
      const double* c = states[b].cost.data_ptr<double>();
      for (int64_t p = 0; p < states[b].cost.numel(); ++p) {
        if (states[b].alive[p]) candidates.emplace_back(c[p], b, states[b].neuron[p], p);
      }
    }
    if (candidates.empty()) break;
    // Only the cheapest few are needed: the step, plus room for candidates skipped to keep a neuron per block.
    const size_t needed = std::min(candidates.size(), static_cast<size_t>(2 * step) + 2 * states.size());
    std::partial_sort(candidates.begin(), candidates.begin() + static_cast<std::ptrdiff_t>(needed), candidates.end());
    candidates.resize(needed);
    std::vector<std::vector<int64_t>> picks(states.size());
    int64_t taken = 0;
    for (const auto& [cost, b, neuron, p] : candidates) {
      if (taken == std::min(step, count - removed)) break;
      if (states[b].aliveCount - static_cast<int64_t>(picks[b].size()) <= 1) continue;  // every block keeps one
      picks[b].push_back(p);
      ++taken;
    }
    if (taken == 0) break;
    for (size_t b = 0; b < states.size(); ++b) {
      if (picks[b].empty()) continue;
      std::sort(picks[b].begin(), picks[b].end());
      removePositions(states[b], picks[b]);
    }
    removed += taken;
  }
  std::vector<std::vector<int64_t>> result;
  for (auto& state : states) {
    std::sort(state.removed.begin(), state.removed.end());
    result.push_back(std::move(state.removed));
  }
  return result;
}

std::vector<SelectionBlock> selectionBlocks(const TorchModel& model, const std::vector<std::string>& fc2Paths,
                                            const std::vector<std::vector<double>>& covariances) {
  std::vector<SelectionBlock> blocks;
  for (size_t i = 0; i < fc2Paths.size(); ++i) {
    const torch::jit::Module fc2 = submoduleAt(model.module(), fc2Paths[i], code::kPlan);
    if (!isLinearModule(fc2)) throw Error(code::kPlan, "'" + fc2Paths[i] + "' is not a Linear layer of this model");
    const at::Tensor weight = fc2.attr("weight").toTensor().detach().to(at::kCPU, at::kDouble);
    const int64_t hidden = weight.size(1);
    if (static_cast<int64_t>(covariances[i].size()) != hidden * hidden) {
      throw Error(code::kStats, "the covariance of '" + fc2Paths[i] + "' has " + std::to_string(covariances[i].size()) + " entries for " +
                                    std::to_string(hidden) + " neurons");
    }
    // A view of the vector, which lives until the selection ends (initialState copies what it changes).
    const at::Tensor covariance = at::from_blob(const_cast<double*>(covariances[i].data()), {hidden, hidden}, at::TensorOptions().dtype(at::kDouble));
    blocks.push_back({covariance, weight});
  }
  return blocks;
}

}  // namespace vbp
