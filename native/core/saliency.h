// SNIP's connection sensitivity (Lee et al. 2019) per MLP neuron, for the paper's ablation: the sum over a
// neuron's fc1 row, weights and bias, of |w * dL/dw|, L the mean cross-entropy of a labelled batch, added up
// over batches (a sum of per-batch scores, so that shards and ranks merge by addition). On a private copy of
// the model in eval mode; only the fc1 weights take gradients. No Node.js here.
#pragma once

#include <torch/script.h>

#include <memory>
#include <vector>

#include "core/mlp_finder.h"
#include "core/model.h"

namespace vbp {

class SaliencySession {
 public:
  SaliencySession(const TorchModel& source, std::vector<MlpBlock> mlps);

  // One labelled batch: forward, cross-entropy with `labels`, backward, scores added.
  void run(std::vector<c10::IValue> inputs, const at::Tensor& labels);

  // Per block, float64 [hidden]: the scores summed over the batches run so far.
  std::vector<at::Tensor> scores() const;
  int64_t batches() const { return batches_; }

 private:
  std::shared_ptr<TorchModel> model_;
  std::vector<MlpBlock> mlps_;
  std::vector<std::pair<at::Tensor, at::Tensor>> fc1_;  // weight, bias (undefined without one) per block
  std::vector<at::Tensor> scores_;
  int64_t batches_ = 0;
};

}  // namespace vbp
