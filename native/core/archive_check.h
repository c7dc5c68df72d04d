// Checks that a loaded TorchScript archive holds the data its tensors claim. LibTorch trusts the sizes in
// the archive's pickles: a damaged file can give a tensor a storage shorter than the tensor (even none),
// which loads without complaint and crashes the process at the first forward.
#pragma once

#include <torch/script.h>

#include <string>

namespace vbp {

// Before loading: throws vbp::Error(MODEL_LOAD) naming `path` when a record other than tensor data (the
// pickles and the code, which LibTorch parses) fails its zip checksum. LibTorch does not check them, and
// a flipped byte in a pickle can make its unpickler allocate and read for minutes before failing.
void checkArchiveChecksums(const std::string& path);

// After loading: throws vbp::Error(MODEL_LOAD) naming `path` when a tensor of `module` (attribute, parameter, buffer or
// code constant) reaches past its storage, or when the storages need more bytes than the archive's
// tensor records hold.
void checkArchiveTensors(const std::string& path, const torch::jit::Module& module);

}  // namespace vbp
