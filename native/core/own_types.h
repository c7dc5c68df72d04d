// TorchScript gives all instances of a scripted class one shared ClassType, with one graph per method.
// Pruning changes per-instance metadata (in_features/out_features constants, a new fc2 bias) and the
// statistics tap is inserted per instance, so both work on a copy in which every module instance has a
// ClassType and method graphs of its own (what tracing produces anyway).
#pragma once

#include <torch/script.h>

#include <mutex>

namespace vbp {

enum class TensorCopy { Share, Deep };

// Held while the JIT's type registries are read for copying: calls on different models (a model and its
// copies share function objects and class types) run in parallel on the thread pool.
std::mutex& typeRegistryMutex();

struct OwnTypesCopy {
  torch::jit::Module module;
  // The source's compilation unit, which the copy's graphs still refer to (free functions such as
  // F.dropout, non-module classes): it must live as long as the copy.
  std::shared_ptr<torch::jit::CompilationUnit> sourceUnit;
};

// A copy of `module` with a fresh ClassType per module instance, in a compilation unit of its own, so
// that everything the copy adds is freed with it (adding to the source's unit would grow it with every
// copy for as long as the source lives). Tensors are shared with the source (TensorCopy::Share, cheap:
// for instrumented copies that never change weights) or deep-copied.
OwnTypesCopy cloneWithOwnTypes(const torch::jit::Module& module, TensorCopy tensors);

}  // namespace vbp
