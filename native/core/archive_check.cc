#include "core/archive_check.h"

#include <torch/csrc/jit/ir/constants.h>

#include <array>
#include <cstring>
#include <fstream>
#include <optional>
#include <unordered_map>
#include <vector>

#include "core/errors.h"
#include "core/zip_directory.h"

namespace vbp {
namespace {

bool isTensorRecord(const std::string& name) { return name.rfind("data/", 0) == 0 || name.rfind("constants/", 0) == 0; }

// Whether a tensor's storage holds every element its sizes and strides reach.
bool storageCoversTensor(const at::Tensor& t) {
  if (!t.defined() || t.numel() == 0) return true;
  if (!t.has_storage() || t.storage().data() == nullptr) return false;
  int64_t last = t.storage_offset();
  for (int64_t d = 0; d < t.dim(); ++d) last += (t.size(d) - 1) * t.stride(d);
  return t.storage_offset() >= 0 &&
         (last + 1) * static_cast<int64_t>(t.element_size()) <= static_cast<int64_t>(t.storage().nbytes());
}

// Bytes of the distinct storages behind `tensors`.
uint64_t storageBytes(const std::vector<at::Tensor>& tensors) {
  std::unordered_map<const void*, uint64_t> storages;
  for (const at::Tensor& t : tensors) {
    if (t.defined() && t.has_storage() && t.storage().data() != nullptr) storages[t.storage().data()] = t.storage().nbytes();
  }
  uint64_t total = 0;
  for (const auto& [ptr, bytes] : storages) total += bytes;
  return total;
}

}  // namespace

void checkArchiveTensors(const std::string& path, const torch::jit::Module& module) {
  const auto damaged = [&](const std::string& what) {
    throw Error(code::kModelLoad, "'" + path + "' is damaged: " + what);
  };
  std::vector<at::Tensor> attributes;
  for (const auto& item : module.named_attributes(/*recurse=*/true)) {
    if (!item.value.isTensor()) continue;
    if (!storageCoversTensor(item.value.toTensor())) damaged("tensor '" + item.name + "' is larger than the data stored for it");
    attributes.push_back(item.value.toTensor());
  }
  std::vector<at::Tensor> constants;
  for (const auto& sub : module.modules()) {
    for (const auto& method : sub.get_methods()) {
      for (const torch::jit::Node* node : method.graph()->nodes()) {
        if (node->kind() != c10::prim::Constant || node->outputs().size() != 1) continue;
        if (!node->output()->type()->cast<c10::TensorType>()) continue;
        const auto value = torch::jit::toIValue(node->output());
        if (!value || !value->isTensor()) continue;
        if (!storageCoversTensor(value->toTensor())) damaged("a tensor constant of " + method.name() + " is larger than its data");
        constants.push_back(value->toTensor());
      }
    }
  }
  // Storage sizes come from the pickles; the bytes really read come from the records. A shortened record
  // leaves a storage pointing past the end of its buffer, which only the totals reveal.
  std::ifstream in(path, std::ios::binary);
  const auto entries = readZipDirectory(in);
  if (!entries) return;
  uint64_t dataBytes = 0;
  uint64_t constantBytes = 0;
  for (const ZipEntry& entry : *entries) {
    if (entry.name.rfind("data/", 0) == 0) dataBytes += entry.size;
    if (entry.name.rfind("constants/", 0) == 0) constantBytes += entry.size;
  }
  if (storageBytes(attributes) > dataBytes) {
    damaged("its tensors need " + std::to_string(storageBytes(attributes)) + " bytes but its data records hold " + std::to_string(dataBytes));
  }
  if (storageBytes(constants) > constantBytes) {
    damaged("its code constants need " + std::to_string(storageBytes(constants)) + " bytes but its constant records hold " +
            std::to_string(constantBytes));
  }
}

void checkArchiveChecksums(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const auto entries = readZipDirectory(in);
  if (!entries) return;  // not a zip archive: LibTorch's reader gives the error
  std::vector<unsigned char> buffer;
  for (const ZipEntry& entry : *entries) {
    if (isTensorRecord(entry.name) || entry.method != 0 || entry.size > (uint64_t{1} << 31)) continue;
    const auto start = zipEntryDataOffset(in, entry);
    if (!start) throw Error(code::kModelLoad, "'" + path + "' is damaged: record '" + entry.name + "' has no valid header");
    buffer.resize(entry.size);
    in.clear();
    in.seekg(static_cast<std::streamoff>(*start));
    in.read(reinterpret_cast<char*>(buffer.data()), static_cast<std::streamsize>(entry.size));
    if (!in || crc32(buffer.data(), buffer.size()) != entry.crc32) {
      throw Error(code::kModelLoad, "'" + path + "' is damaged: record '" + entry.name + "' fails its checksum");
    }
  }
}

}  // namespace vbp
