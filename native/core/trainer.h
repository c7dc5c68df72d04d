// Fine-tuning of a TorchScript model with LibTorch's autograd: AdamW, optional distillation from a
// teacher's logits, gradient clipping, a frozen subset. No Node.js here; the caller feeds one step at a time.
#pragma once

#include <torch/optim/adamw.h>
#include <torch/script.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/autocast.h"
#include "core/distributed.h"
#include "core/model.h"
#include "core/training_mode.h"

namespace vbp {

struct TrainerOptions {
  double weightDecay = 0.01;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  // loss = (1 - alpha) * CE(student, y) + alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T))
  double temperature = 1.0;
  double alpha = 0.0;
  double clipNorm = 0.0;               // 0: no clipping
  std::vector<std::string> trainable;  // parameter-name prefixes; empty: every parameter
  uint64_t seed = 0;                   // LibTorch's generator is seeded from (seed, step) before each step
  bool optimizeGraph = false;          // run through the graph executor's optimised (autodiff) plan
  // Data-parallel: rank 0's weights to every rank at the start (unless resuming), gradients averaged after each
  // backward, the step's loss and counts summed over ranks. Every rank must step the same number of times.
  std::shared_ptr<DistributedGroup> group;
  // Mixed precision: forward and loss under autocast (bf16; fp16 on CUDA with a dynamic loss scale, as
  // torch.cuda.amp.GradScaler: 2^16 to start, halved on Inf/NaN gradients (the step is skipped), doubled after
  // 2000 good steps); weights and AdamW's state stay float32.
  Precision precision = Precision::Float32;
};

struct StepResult {
  double loss = 0;
  double crossEntropy = 0;
  double distillation = 0;
  double gradNorm = 0;
  int64_t correct = 0;
  int64_t count = 0;
  double communicationMs = 0;  // time in collectives (data-parallel only)
  bool skipped = false;        // fp16: Inf/NaN gradients at this loss scale, no update
  double lossScale = 1;        // the loss scale the step used (fp16)
};

class Trainer {
 public:
  // Trains a deep copy of `student`; with `optimizerState` (bytes written by checkpoint()) continues it.
  Trainer(const TorchModel& student, TrainerOptions options, const std::string& optimizerState = "");

  // One step at learning rate `lr`. Throws NON_FINITE, and leaves the weights as they were, when the loss
  // or the gradient norm is NaN or Inf.
  // Data-parallel, `stop` (this rank was asked to stop) is shared: when any rank asks, every rank throws ABORTED
  // before the update, so that all keep the same weights.
  StepResult step(std::vector<c10::IValue> inputs, const at::Tensor& labels, const std::optional<at::Tensor>& teacherLogits, double lr,
                  int64_t stepIndex, bool stop = false);

  // A copy of the weights as they are now, in eval mode, without gradients.
  std::shared_ptr<TorchModel> snapshot() const;
  // Writes the model (eval mode) with `extras` and the optimizer's state (kOptimizerStateEntry) inside.
  void checkpoint(const std::string& path, torch::jit::ExtraFilesMap extras);

  const TrainingModeReport& mode() const { return mode_; }
  int64_t trainableCount() const { return trainableCount_; }
  int64_t parameterCount() const { return parameterCount_; }

 private:
  void loadOptimizerState(const std::string& bytes);

  std::shared_ptr<TorchModel> student_;
  TrainerOptions options_;
  TrainingModeReport mode_;
  std::vector<at::Tensor> parameters_;                           // the trainable ones, each tensor once
  std::vector<std::pair<std::string, bool>> inputRequiresGrad_;  // every parameter's flag in the given model
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  int64_t trainableCount_ = 0;
  int64_t parameterCount_ = 0;
  double lossScale_ = 1;  // fp16 only
  int64_t goodSteps_ = 0;
};

}  // namespace vbp
