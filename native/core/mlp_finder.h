// Finds transformer MLP blocks by graph structure: a Linear whose output reaches a second Linear only
// through element-wise ops (activation, dropout, identity). Names play no part.
#pragma once

#include <torch/script.h>

#include <string>
#include <vector>

namespace vbp {

struct MlpBlock {
  std::string owner;  // module whose forward calls both layers ('' for the root)
  std::string fc1;    // dotted paths from the root
  std::string fc2;
  int64_t inFeatures = 0;   // fc1 input width
  int64_t hidden = 0;       // fc1 output = fc2 input width: the neurons that VBP prunes
  int64_t outFeatures = 0;  // fc2 output width
  std::string activation;   // gelu, gelu_tanh, relu, silu, ... ; 'identity' if none; 'elementwise' if custom
};

// All MLP blocks, in the order their fc1 appears in the module tree. A Linear called more than once in
// the model (shared weights) is never part of a block: slicing it would change its other uses.
std::vector<MlpBlock> findMlps(const torch::jit::Module& root);

// Checks user-given (fc1, fc2) pairs against the model's structure and fills in widths and activations.
// Throws vbp::Error(MLP_SPEC) naming the pair that does not form an MLP block.
std::vector<MlpBlock> resolveMlps(const torch::jit::Module& root, const std::vector<std::pair<std::string, std::string>>& pairs);

// Whether a module is Linear-like: a 2-D `weight` parameter and a forward that returns
// aten::linear(input, self.weight, self.bias or None).
bool isLinearModule(const torch::jit::Module& module);

}  // namespace vbp
