// TorchScript gives all instances of a scripted class one shared ClassType, with one graph per method.
// Pruning changes per-instance metadata (in_features/out_features constants, a new fc2 bias) and the
// statistics tap is inserted per instance, so both work on a copy in which every module instance has a
// ClassType and method graphs of its own (what tracing produces anyway).
#pragma once

#include <torch/script.h>

#include <mutex>

namespace vbp {

enum class TensorCopy { Share, Deep };

// Held while new types and functions are added to a compilation unit. Copies of one model (clone(),
// instrumented copies, pruned models) share the source's compilation unit, whose registries are not
// thread-safe, and calls on different models run in parallel.
std::mutex& typeRegistryMutex();

// A copy of `module` with a fresh ClassType per module instance. Tensors are shared with the source
// (TensorCopy::Share, cheap: for instrumented copies that never change weights) or deep-copied.
torch::jit::Module cloneWithOwnTypes(const torch::jit::Module& module, TensorCopy tensors);

}  // namespace vbp
