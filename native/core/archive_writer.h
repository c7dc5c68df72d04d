// Writing a TorchScript archive to a file so that a failing disk is an error, not an abort. LibTorch's
// own file writer throws from its zip writer's destructor when a write fails (a full disk: "unexpected
// pos"), which terminates the process.
#pragma once

#include <torch/script.h>

#include <string>

namespace vbp {

// Writes `module` (with `extras` as extra files) to `path`. Throws vbp::Error(IO) naming the file and the
// system's reason when it cannot be written; the file may then be partial (the caller writes to a
// temporary name and removes it).
void writeModuleFile(const torch::jit::Module& module, const std::string& path, const torch::jit::ExtraFilesMap& extras);

}  // namespace vbp
