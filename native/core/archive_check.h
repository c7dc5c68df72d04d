// Checks that a TorchScript archive holds the data its tensors claim. LibTorch trusts the sizes in the
// archive's pickles: a damaged file can give a tensor a storage shorter than the tensor (even none), which
// loads without complaint and crashes the process at the first forward.
#pragma once

#include <torch/script.h>

#include <string>

#include "core/zip_directory.h"

namespace vbp {

// Before loading: throws vbp::Error(MODEL_LOAD) naming `where` when the archive's records do not lie
// within it, when tensor data or a pickle is compressed (PyTorch stores them), when a stored record other
// than tensor data fails its zip checksum (LibTorch checks none of those), or when a storage its pickles ask for
// needs more bytes than its record holds (or a size that overflows).
void checkArchiveRecords(ByteSource& archive, const std::string& where);

// After loading: throws vbp::Error(MODEL_LOAD) naming `where` when a tensor reachable from `module`
// (attributes and what they hold: lists, tuples, dicts, objects; code constants) reaches outside its storage.
void checkArchiveTensors(const std::string& where, const torch::jit::Module& module);

// The same check for one tensor (false: it reaches outside its storage), with overflow-checked arithmetic.
bool storageCoversTensor(const at::Tensor& t);

}  // namespace vbp
