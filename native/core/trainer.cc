#include "core/trainer.h"

#include <ATen/Context.h>
#include <c10/core/DeviceGuard.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/serialize.h>

#include <chrono>
#include <cmath>
#include <mutex>
#include <sstream>
#include <unordered_set>

#include "core/archive_check.h"
#include "core/archive_writer.h"
#include "core/errors.h"
#include "core/gradient_sync.h"
#include "core/graph_mode.h"
#include "core/own_types.h"

namespace vbp {
namespace {

bool matchesPrefix(const std::string& name, const std::vector<std::string>& prefixes) {
  if (prefixes.empty()) return true;
  for (const auto& prefix : prefixes) {
    if (name == prefix || (name.rfind(prefix, 0) == 0 && name.size() > prefix.size() && name[prefix.size()] == '.')) return true;
  }
  return false;
}

at::Tensor logitsOf(const c10::IValue& output) {
  if (output.isTensor() && output.toTensor().dim() == 2) return output.toTensor();
  throw Error(code::kNotTrainable, "fine-tuning needs a model whose forward returns one [batch, classes] tensor of logits; this one returns " +
                                       (output.isTensor() ? "a tensor of shape " + c10::str(output.toTensor().sizes()) : output.tagKind()));
}

// Dropout in TorchScript code draws from the device's default generator; nothing lets a script module use
// another. So a step's forward holds it alone (one trainer at a time), seeded from (seed, step) as the
// PyTorch reference seeds it, and gives it back in the state it had: random ops elsewhere in the process
// continue their own sequence as if no step had run.
class StepRandomness {
 public:
  StepRandomness(const c10::Device& device, uint64_t seed) : lock_(mutex()), generator_(at::globalContext().defaultGenerator(device)) {
    std::lock_guard<std::mutex> generatorLock(generator_.mutex());
    saved_ = generator_.get_state();
    generator_.set_current_seed(seed);
  }
  ~StepRandomness() {
    std::lock_guard<std::mutex> generatorLock(generator_.mutex());
    generator_.set_state(saved_);
  }
  StepRandomness(const StepRandomness&) = delete;
  StepRandomness& operator=(const StepRandomness&) = delete;

 private:
  static std::mutex& mutex() {
    static auto* instance = new std::mutex();  // never destroyed: a pool thread may hold it at exit
    return *instance;
  }
  std::lock_guard<std::mutex> lock_;
  at::Generator generator_;
  at::Tensor saved_;
};

// A guard that makes the model's GPU the current one (no-op on CPU), for work on a pool thread.
c10::OptionalDeviceGuard deviceGuardFor(const c10::Device& device) {
  return device.is_cuda() ? c10::OptionalDeviceGuard(device) : c10::OptionalDeviceGuard();
}

// The loss of a step: cross-entropy with the labels and, given a teacher's logits, the distillation term
// alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)), KL summed over classes and averaged over
// the batch ('batchmean'), as PyTorch's reference computes it.
struct StepLoss {
  at::Tensor total;
  at::Tensor crossEntropy;
  at::Tensor distillation;  // undefined without a teacher
};

StepLoss stepLoss(const at::Tensor& logits, const at::Tensor& target, const std::optional<at::Tensor>& teacherLogits, double temperature,
                  double alpha) {
  // The logits as the forward gave them: under autocast (bf16) the ops here round as PyTorch's do under
  // torch.autocast (cross-entropy and KL in float32, the division and log-softmax in bfloat16).
  const at::Tensor& student = logits;
  StepLoss loss;
  loss.crossEntropy = at::cross_entropy_loss(student, target);
  loss.total = loss.crossEntropy;
  if (!teacherLogits) return loss;
  const at::Tensor teacher = teacherLogits->to(logits.device(), at::kFloat);
  if (!teacher.sizes().equals(logits.sizes())) {
    throw Error(code::kInputShape, "teacher logits have shape " + c10::str(teacher.sizes()) + ", the student's " + c10::str(logits.sizes()));
  }
  const double t = temperature;
  loss.distillation = at::kl_div(at::log_softmax(student / t, 1), at::log_softmax(teacher / t, 1), at::Reduction::Sum, /*log_target=*/true) /
                      static_cast<double>(logits.size(0)) * (t * t);
  loss.total = loss.crossEntropy * (1.0 - alpha) + loss.distillation * alpha;
  return loss;
}

// The global L2 norm of the parameters' gradients in float64, as clip_grad_norm_ measures it; with clipNorm > 0
// the gradients are clipped to it too.
double gradientNorm(const std::vector<at::Tensor>& parameters, double clipNorm) {
  if (clipNorm > 0) return torch::nn::utils::clip_grad_norm_(parameters, clipNorm);
  if (parameters.empty()) return 0.0;
  at::Tensor squares = at::zeros({}, at::TensorOptions().dtype(at::kDouble).device(parameters.front().device()));
  for (const auto& p : parameters) {
    if (p.grad().defined()) squares += p.grad().to(at::kDouble).pow(2).sum();
  }
  return std::sqrt(squares.item<double>());
}

std::string numberText(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  return std::to_string(value);
}

}  // namespace

Trainer::Trainer(const TorchModel& student, TrainerOptions options, const std::string& optimizerState) : options_(std::move(options)) {
  mode_ = inspectTrainingMode(student.module());
  requireTrainable(mode_);
  const auto guard = deviceGuardFor(student.device());
  {
    // A copy outside InferenceMode: tensors made under it (by pruning, say) cannot take part in autograd.
    torch::NoGradGuard noGrad;
    student_ = student.derived(cloneWithOwnTypes(student.module(), TensorCopy::Deep));
  }
  // One tensor may be reachable under several names (tied weights): it is one parameter, trained once and
  // counted once, under its first name, as torch.nn.Module.parameters() lists it.
  std::unordered_set<const c10::TensorImpl*> seen;
  for (const auto& item : student_->module().named_parameters(/*recurse=*/true)) {
    if (!seen.insert(item.value.unsafeGetTensorImpl()).second) continue;
    inputRequiresGrad_.emplace_back(item.name, item.value.requires_grad());
    const bool train = matchesPrefix(item.name, options_.trainable);
    item.value.requires_grad_(train);
    parameterCount_ += item.value.numel();
    if (!train) continue;
    if (item.value.is_floating_point() && item.value.scalar_type() != at::kFloat && item.value.scalar_type() != at::kDouble) {
      throw Error(code::kNotTrainable, "parameter '" + item.name + "' is " + c10::toString(item.value.scalar_type()) +
                                           ": fine-tuning needs float32 weights (AdamW on half-precision weights loses small updates "
                                           "and writes Inf/NaN); convert the model to float32 first, or freeze it with `trainable`");
    }
    parameters_.push_back(item.value);
    trainableCount_ += item.value.numel();
  }
  if (parameters_.empty()) {
    throw Error(options_.trainable.empty() ? code::kNotTrainable : code::kInvalidArgument,
                options_.trainable.empty()
                    ? "the model has no parameters to train (a frozen or optimised-for-inference module inlines them as constants)"
                    : "no parameter name starts with the given trainable prefixes");
  }
  checkPrecisionForDevice(options_.precision, student.device().type());
  if (options_.precision == Precision::Float16) lossScale_ = 65536.0;
  optimizer_ = std::make_unique<torch::optim::AdamW>(
      parameters_,
      torch::optim::AdamWOptions(1e-3).betas(std::make_tuple(options_.beta1, options_.beta2)).eps(options_.eps).weight_decay(options_.weightDecay));
  if (!optimizerState.empty()) loadOptimizerState(optimizerState);
  // Resumed ranks all read the same checkpoint; fresh ones start from rank 0's weights, as DDP does.
  if (options_.group && optimizerState.empty()) broadcastModuleState(*options_.group, student_->module());
  student_->module().train(true);
}

void Trainer::loadOptimizerState(const std::string& bytes) {
  const std::string where = "the optimizer state inside the checkpoint (" + std::string(kOptimizerStateEntry) + ")";
  MemorySource source(bytes.data(), bytes.size());
  checkArchiveRecords(source, where);
  try {
    std::istringstream stream(bytes);
    torch::serialize::InputArchive archive;
    archive.load_from(stream, student_->device());
    optimizer_->load(archive);
  } catch (const Error&) {
    throw;
  } catch (const std::exception&) {
    const ErrorInfo info = describeCurrentException(code::kModelLoad);
    throw Error(code::kModelLoad, where + " cannot be read: " + info.message);
  }
  for (const auto& entry : optimizer_->state()) {
    const auto& state = static_cast<const torch::optim::AdamWParamState&>(*entry.second);
    for (const at::Tensor* t : {&state.exp_avg(), &state.exp_avg_sq(), &state.max_exp_avg_sq()}) {
      if (!storageCoversTensor(*t)) throw Error(code::kModelLoad, where + " is damaged: a moment tensor reaches outside its data");
    }
  }
}

StepResult Trainer::step(std::vector<c10::IValue> inputs, const at::Tensor& labels, const std::optional<at::Tensor>& teacherLogits, double lr,
                         int64_t stepIndex, bool stop) {
  torch::AutoGradMode gradMode(true);
  GraphOptimization optimization(options_.optimizeGraph);
  const c10::Device device = student_->device();
  const auto guard = deviceGuardFor(device);
  for (auto& input : inputs) input = valueToDevice(input, device);
  const at::Tensor target = labels.to(device, at::kLong);

  at::Tensor logits;
  // Forward and loss under autocast, backward outside it, as PyTorch's recipe has it.
  std::optional<AutocastScope> autocast;
  autocast.emplace(device.type(), options_.precision);
  try {
    StepRandomness randomness(device, options_.seed * 1000003ULL + static_cast<uint64_t>(stepIndex));
    logits = logitsOf(student_->module().forward(std::move(inputs)));
  } catch (const Error&) {
    throw;
  } catch (const std::exception&) {
    const ErrorInfo info = describeCurrentException(code::kForward);
    throw Error(info.code, "forward failed while fine-tuning: " + info.message);
  }
  if (target.dim() != 1 || target.size(0) != logits.size(0)) {
    throw Error(code::kInputShape, "labels: expected " + std::to_string(logits.size(0)) + " class indices, got shape " + c10::str(target.sizes()));
  }
  const int64_t classes = logits.size(1);
  if (target.numel() > 0 && (target.min().item<int64_t>() < 0 || target.max().item<int64_t>() >= classes)) {
    throw Error(code::kInvalidArgument, "labels must be class indices in [0, " + std::to_string(classes) + ")");
  }
  const StepLoss loss = stepLoss(logits, target, teacherLogits, options_.temperature, options_.alpha);
  autocast.reset();
  StepResult result;
  result.loss = loss.total.item<double>();
  result.crossEntropy = loss.crossEntropy.item<double>();
  result.distillation = loss.distillation.defined() ? loss.distillation.item<double>() : 0.0;
  result.count = logits.size(0);
  result.correct = logits.argmax(1).eq(target).sum().item<int64_t>();
  using Clock = std::chrono::steady_clock;
  int nonFiniteRanks = std::isfinite(result.loss) ? 0 : 1;
  if (options_.group) {
    // Every rank reaches every collective: a rank's NaN is shared before any rank leaves the step.
    const auto started = Clock::now();
    std::vector<at::Tensor> shared{
        at::tensor({result.loss * result.count, result.crossEntropy * result.count, result.distillation * result.count,
                    static_cast<double>(result.correct), static_cast<double>(result.count), static_cast<double>(nonFiniteRanks), stop ? 1.0 : 0.0},
                   at::kDouble)};
    options_.group->allreduceSum(shared);
    const auto* sums = shared[0].data_ptr<double>();
    if (sums[6] > 0) {
      throw Error(code::kAborted, "fine-tuning was cancelled (on " + std::to_string(static_cast<int>(sums[6])) + " of " +
                                      std::to_string(options_.group->worldSize()) + " ranks) after " + std::to_string(stepIndex) + " steps");
    }
    nonFiniteRanks = static_cast<int>(sums[5]);
    if (nonFiniteRanks == 0) {
      result.loss = sums[0] / sums[4];
      result.crossEntropy = sums[1] / sums[4];
      result.distillation = sums[2] / sums[4];
    }
    result.correct = static_cast<int64_t>(sums[3]);
    result.count = static_cast<int64_t>(sums[4]);
    result.communicationMs += std::chrono::duration<double, std::milli>(Clock::now() - started).count();
  }
  if (nonFiniteRanks > 0) {
    const std::string where =
        options_.group ? " on " + std::to_string(nonFiniteRanks) + " of " + std::to_string(options_.group->worldSize()) + " ranks" : "";
    throw Error(code::kNonFinite, "the loss is " + (std::isfinite(result.loss) ? std::string("not finite") : numberText(result.loss)) + where +
                                      " at step " + std::to_string(stepIndex + 1) + "; the weights before this step are kept");
  }
  optimizer_->zero_grad();
  const bool scaled = options_.precision == Precision::Float16;
  result.lossScale = scaled ? lossScale_ : 1.0;
  (scaled ? loss.total * lossScale_ : loss.total).backward();
  if (options_.group) {
    const auto started = Clock::now();
    averageGradients(*options_.group, parameters_);
    result.communicationMs += std::chrono::duration<double, std::milli>(Clock::now() - started).count();
  }
  if (scaled) {
    torch::NoGradGuard noGrad;
    for (auto& p : parameters_) {
      if (p.grad().defined()) p.grad().mul_(1.0 / lossScale_);
    }
  }
  result.gradNorm = gradientNorm(parameters_, options_.clipNorm);
  if (scaled && !std::isfinite(result.gradNorm)) {
    // GradScaler's rule: skip this step, halve the scale (the same on every rank: the gradients were averaged).
    optimizer_->zero_grad();
    lossScale_ *= 0.5;
    goodSteps_ = 0;
    result.skipped = true;
    return result;
  }
  if (scaled && ++goodSteps_ == 2000) {
    lossScale_ *= 2;
    goodSteps_ = 0;
  }
  if (!std::isfinite(result.gradNorm)) {
    optimizer_->zero_grad();
    throw Error(code::kNonFinite, "the gradient norm is " + numberText(result.gradNorm) + " at step " + std::to_string(stepIndex + 1) +
                                      "; the weights before this step are kept");
  }
  for (auto& group : optimizer_->param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
  optimizer_->step();
  return result;
}

std::shared_ptr<TorchModel> Trainer::snapshot() const {
  torch::NoGradGuard noGrad;
  const auto guard = deviceGuardFor(student_->device());
  auto copy = student_->derived(cloneWithOwnTypes(student_->module(), TensorCopy::Deep));
  // requires_grad as in the model that was given to fine-tune, so that PyTorch can train the result further.
  std::unordered_map<std::string, bool> requiresGrad(inputRequiresGrad_.begin(), inputRequiresGrad_.end());
  for (const auto& item : copy->module().named_parameters(/*recurse=*/true)) {
    const auto found = requiresGrad.find(item.name);
    item.value.requires_grad_(found != requiresGrad.end() && found->second);
  }
  copy->module().eval();
  return copy;
}

void Trainer::checkpoint(const std::string& path, torch::jit::ExtraFilesMap extras) {
  std::ostringstream stream;
  torch::serialize::OutputArchive archive;
  optimizer_->save(archive);
  archive.save_to(stream);
  extras[kOptimizerStateEntry] = stream.str();
  // Saved in eval mode, so that torch.jit.load gives an inference-ready model; no copy of the weights.
  student_->module().eval();
  try {
    writeModuleFile(student_->module(), path, extras);
  } catch (const Error& e) {
    student_->module().train(true);
    throw Error(e.code(), "cannot write checkpoint '" + path + "': " + e.what());
  } catch (const std::exception&) {
    student_->module().train(true);
    const ErrorInfo info = describeCurrentException(code::kModelSave);
    throw Error(code::kModelSave, "cannot write checkpoint '" + path + "': " + info.message);
  }
  student_->module().train(true);
}

}  // namespace vbp
