// The storages a TorchScript archive's pickle (data.pkl, constants.pkl) asks LibTorch to create, found by
// running the pickle on a shadow of LibTorch's own unpickler: the same opcodes and the same stack effects,
// with values reduced to what decides a storage (integers, strings, tuples) and everything else opaque.
// LibTorch trusts these sizes (numel x element size, computed without an overflow check) and builds each
// storage over whatever bytes its record has; checking them first keeps a damaged file from reading past
// a buffer. No LibTorch here, so the fuzzer runs it alone.
#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace vbp {

struct StorageReference {
  int64_t scalarType = -1;  // c10::ScalarType's value, as the pickle names it (torch.FloatStorage -> 6)
  std::string key;          // the record is <prefix>/<key>
  std::string location;     // 'cpu', 'cuda:0', ...
  int64_t numel = 0;
};

// A pickle that is malformed or uses what LibTorch's unpickler does not read.
class PickleScanError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Every persistent storage reference in `pickle`, in order. `storageScalarType` maps a storage class name
// of the module `torch` ('FloatStorage') to its scalar type, or -1 for a name that is not a storage.
std::vector<StorageReference> scanStorageReferences(const std::string& pickle, const std::function<int64_t(const std::string&)>& storageScalarType);

}  // namespace vbp
