// Data-parallel training over a DistributedGroup, as PyTorch's DistributedDataParallel does it: module state
// broadcast from rank 0 at the start, and gradients averaged across ranks after each backward pass.
#pragma once

#include <ATen/ATen.h>
#include <torch/script.h>

#include <vector>

#include "core/distributed.h"

namespace vbp {

// Rank 0's parameters and buffers, copied into every rank's module (in place, names in the same order).
void broadcastModuleState(DistributedGroup& group, const torch::jit::Module& module);

// Every gradient replaced by its mean over ranks. Like DDP: each is scaled by 1 / world size while packed
// into flat buckets (in reverse parameter order, at most `bucketBytes` each, one dtype and device per bucket),
// each bucket all-reduced (sum), then unpacked. Parameters without a gradient take part with zeros, so that
// every rank sends the same buckets.
void averageGradients(DistributedGroup& group, const std::vector<at::Tensor>& parameters, int64_t bucketBytes = 25 << 20);

}  // namespace vbp
