#include "core/gradient_sync.h"

#include <algorithm>
#include <iterator>
#include <utility>

namespace vbp {

void broadcastModuleState(DistributedGroup& group, const torch::jit::Module& module) {
  torch::NoGradGuard noGrad;
  std::vector<at::Tensor> state;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) state.push_back(item.value);
  for (const auto& item : module.named_buffers(/*recurse=*/true)) state.push_back(item.value);
  if (state.empty()) return;
  // One flat tensor per dtype keeps it to a few collectives.
  std::vector<std::pair<at::ScalarType, std::vector<at::Tensor>>> byType;
  for (const auto& t : state) {
    auto found = std::find_if(byType.begin(), byType.end(), [&](const auto& entry) { return entry.first == t.scalar_type(); });
    if (found == byType.end()) {
      byType.emplace_back(t.scalar_type(), std::vector<at::Tensor>{});
      found = std::prev(byType.end());
    }
    found->second.push_back(t);
  }
  for (auto& [type, tensors] : byType) {
    std::vector<at::Tensor> flat{at::cat(c10::fmap(tensors, [](const at::Tensor& t) { return t.detach().reshape(-1).to(at::kCPU); }))};
    group.broadcast(flat, 0);
    int64_t offset = 0;
    for (auto& t : tensors) {
      t.detach().copy_(flat[0].narrow(0, offset, t.numel()).view(t.sizes()));
      offset += t.numel();
    }
  }
}

void averageGradients(DistributedGroup& group, const std::vector<at::Tensor>& parameters, int64_t bucketBytes) {
  torch::NoGradGuard noGrad;
  const double scale = 1.0 / static_cast<double>(group.worldSize());
  // Buckets in reverse order, as DDP fills them (the last layers' gradients are ready first).
  std::vector<std::vector<at::Tensor>> buckets;
  int64_t bytes = 0;
  for (auto it = parameters.rbegin(); it != parameters.rend(); ++it) {
    const at::Tensor& p = *it;
    const bool fits = !buckets.empty() && bytes + p.numel() * p.element_size() <= bucketBytes &&
                      buckets.back().front().scalar_type() == p.scalar_type() && buckets.back().front().device() == p.device();
    if (!fits) {
      buckets.emplace_back();
      bytes = 0;
    }
    buckets.back().push_back(p);
    bytes += p.numel() * p.element_size();
  }
  for (auto& bucket : buckets) {
    std::vector<at::Tensor> parts;
    for (auto& p : bucket) {
      if (!p.grad().defined()) p.mutable_grad() = at::zeros_like(p);
      parts.push_back(p.grad().reshape(-1) * scale);  // DDP multiplies by 1 / world size while filling its buckets
    }
    std::vector<at::Tensor> flat{at::cat(parts)};
    group.allreduceSum(flat);
    int64_t offset = 0;
    for (auto& p : bucket) {
      p.grad().copy_(flat[0].narrow(0, offset, p.numel()).view(p.sizes()));
      offset += p.numel();
    }
  }
}

}  // namespace vbp
