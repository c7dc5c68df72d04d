#include "core/saliency.h"

#include <unordered_map>

#include "core/errors.h"
#include "core/own_types.h"

namespace vbp {

SaliencySession::SaliencySession(const TorchModel& source, std::vector<MlpBlock> mlps) : mlps_(std::move(mlps)) {
  {
    // A copy outside InferenceMode, so that its weights can take part in autograd.
    torch::NoGradGuard noGrad;
    model_ = source.derived(cloneWithOwnTypes(source.module(), TensorCopy::Deep));
  }
  model_->module().eval();
  std::unordered_map<std::string, at::Tensor> parameters;
  for (const auto& item : model_->module().named_parameters(/*recurse=*/true)) {
    item.value.requires_grad_(false);
    parameters.emplace(item.name, item.value);
  }
  for (const auto& block : mlps_) {
    const auto weight = parameters.find(block.fc1 + ".weight");
    if (weight == parameters.end()) throw Error(code::kMlpSpec, "SNIP: '" + block.fc1 + "' has no weight parameter");
    const auto bias = parameters.find(block.fc1 + ".bias");
    weight->second.requires_grad_(true);
    if (bias != parameters.end()) bias->second.requires_grad_(true);
    fc1_.emplace_back(weight->second, bias != parameters.end() ? bias->second : at::Tensor());
    scores_.push_back(at::zeros({block.hidden}, at::TensorOptions().dtype(at::kDouble).device(model_->device())));
  }
}

void SaliencySession::run(std::vector<c10::IValue> inputs, const at::Tensor& labels) {
  torch::AutoGradMode gradMode(true);
  const c10::Device device = model_->device();
  for (auto& input : inputs) input = valueToDevice(input, device);
  c10::IValue output;
  try {
    output = model_->module().forward(std::move(inputs));
  } catch (const std::exception&) {
    const ErrorInfo info = describeCurrentException(code::kForward);
    throw Error(info.code, "forward failed while scoring SNIP: " + info.message);
  }
  if (!output.isTensor() || output.toTensor().dim() != 2) {
    throw Error(code::kNotTrainable, "SNIP needs a model whose forward returns [batch, classes] logits");
  }
  const at::Tensor logits = output.toTensor();
  const at::Tensor target = labels.to(device, at::kLong);
  if (target.dim() != 1 || target.size(0) != logits.size(0)) {
    throw Error(code::kInputShape, "SNIP: expected " + std::to_string(logits.size(0)) + " labels, got shape " + c10::str(target.sizes()));
  }
  if (target.numel() > 0 && (target.min().item<int64_t>() < 0 || target.max().item<int64_t>() >= logits.size(1))) {
    throw Error(code::kInvalidArgument, "SNIP: labels must be class indices in [0, " + std::to_string(logits.size(1)) + ")");
  }
  at::cross_entropy_loss(logits, target).backward();
  torch::NoGradGuard noGrad;
  for (size_t b = 0; b < fc1_.size(); ++b) {
    auto& [weight, bias] = fc1_[b];
    at::Tensor score = (weight * weight.grad()).abs().sum(1).to(at::kDouble);
    if (bias.defined()) score += (bias * bias.grad()).abs().to(at::kDouble);
    scores_[b] += score;
    weight.mutable_grad() = at::Tensor();
    if (bias.defined()) bias.mutable_grad() = at::Tensor();
  }
  ++batches_;
}

std::vector<at::Tensor> SaliencySession::scores() const {
  std::vector<at::Tensor> result;
  for (const auto& s : scores_) result.push_back(s.to(at::kCPU).clone());
  return result;
}

}  // namespace vbp
