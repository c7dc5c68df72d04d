#include "core/archive_check.h"

#include <torch/csrc/jit/ir/constants.h>

#include <array>
#include <cstring>
#include <fstream>
#include <optional>
#include <unordered_map>
#include <vector>

#include "core/errors.h"

namespace vbp {
namespace {

uint64_t readLE(const unsigned char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

struct ZipEntry {
  std::string name;          // without the archive's top folder
  uint64_t size = 0;         // uncompressed
  uint32_t crc32 = 0;
  uint16_t method = 0;       // 0: stored (what PyTorch writes)
  uint64_t headerOffset = 0; // of the local file header
};

// The zip central directory (ZIP64 aware); nullopt when it cannot be read.
std::optional<std::vector<ZipEntry>> readZipDirectory(std::ifstream& in) {
  in.seekg(0, std::ios::end);
  const uint64_t fileSize = static_cast<uint64_t>(in.tellg());
  const uint64_t tailSize = std::min<uint64_t>(fileSize, 65536 + 22);
  std::vector<unsigned char> tail(tailSize);
  in.seekg(static_cast<std::streamoff>(fileSize - tailSize));
  in.read(reinterpret_cast<char*>(tail.data()), static_cast<std::streamsize>(tailSize));
  if (!in) return std::nullopt;
  int64_t eocd = -1;
  for (int64_t i = static_cast<int64_t>(tailSize) - 22; i >= 0; --i) {
    if (readLE(&tail[i], 4) == 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) return std::nullopt;
  uint64_t entries = readLE(&tail[eocd + 10], 2);
  uint64_t dirSize = readLE(&tail[eocd + 12], 4);
  uint64_t dirOffset = readLE(&tail[eocd + 16], 4);
  if ((entries == 0xFFFF || dirSize == 0xFFFFFFFF || dirOffset == 0xFFFFFFFF) && eocd >= 20 &&
      readLE(&tail[eocd - 20], 4) == 0x07064b50) {
    const uint64_t zip64Eocd = readLE(&tail[eocd - 20 + 8], 8);
    unsigned char record[56];
    in.seekg(static_cast<std::streamoff>(zip64Eocd));
    in.read(reinterpret_cast<char*>(record), sizeof(record));
    if (!in || readLE(record, 4) != 0x06064b50) return std::nullopt;
    entries = readLE(record + 32, 8);
    dirSize = readLE(record + 40, 8);
    dirOffset = readLE(record + 48, 8);
  }
  if (dirOffset + dirSize > fileSize || dirSize > (uint64_t{1} << 30)) return std::nullopt;
  std::vector<unsigned char> dir(dirSize);
  in.seekg(static_cast<std::streamoff>(dirOffset));
  in.read(reinterpret_cast<char*>(dir.data()), static_cast<std::streamsize>(dirSize));
  if (!in) return std::nullopt;

  std::vector<ZipEntry> result;
  uint64_t at = 0;
  for (uint64_t e = 0; e < entries; ++e) {
    if (at + 46 > dirSize || readLE(&dir[at], 4) != 0x02014b50) return std::nullopt;
    ZipEntry entry;
    entry.method = static_cast<uint16_t>(readLE(&dir[at + 10], 2));
    entry.crc32 = static_cast<uint32_t>(readLE(&dir[at + 16], 4));
    entry.size = readLE(&dir[at + 24], 4);
    const uint64_t nameLength = readLE(&dir[at + 28], 2);
    const uint64_t extraLength = readLE(&dir[at + 30], 2);
    const uint64_t commentLength = readLE(&dir[at + 32], 2);
    entry.headerOffset = readLE(&dir[at + 42], 4);
    if (at + 46 + nameLength + extraLength > dirSize) return std::nullopt;
    const std::string name(reinterpret_cast<const char*>(&dir[at + 46]), nameLength);
    // ZIP64 extra block: the 64-bit fields present are those whose 32-bit field is all ones, in order.
    for (uint64_t x = at + 46 + nameLength; x + 4 <= at + 46 + nameLength + extraLength;) {
      const uint64_t id = readLE(&dir[x], 2);
      const uint64_t length = readLE(&dir[x + 2], 2);
      if (id == 0x0001) {
        uint64_t field = x + 4;
        if (entry.size == 0xFFFFFFFF && field + 8 <= x + 4 + length) entry.size = readLE(&dir[field], 8), field += 8;
        if (readLE(&dir[at + 20], 4) == 0xFFFFFFFF && field + 8 <= x + 4 + length) field += 8;
        if (entry.headerOffset == 0xFFFFFFFF && field + 8 <= x + 4 + length) entry.headerOffset = readLE(&dir[field], 8);
      }
      x += 4 + length;
    }
    const auto slash = name.find('/');
    entry.name = slash == std::string::npos ? name : name.substr(slash + 1);
    result.push_back(entry);
    at += 46 + nameLength + extraLength + commentLength;
  }
  return result;
}

uint32_t crc32(const unsigned char* data, size_t n, uint32_t crc = 0) {
  static const auto table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ data[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

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
    unsigned char header[30];
    in.seekg(static_cast<std::streamoff>(entry.headerOffset));
    in.read(reinterpret_cast<char*>(header), sizeof(header));
    if (!in || readLE(header, 4) != 0x04034b50) {
      throw Error(code::kModelLoad, "'" + path + "' is damaged: record '" + entry.name + "' has no valid header");
    }
    const uint64_t start = entry.headerOffset + 30 + readLE(header + 26, 2) + readLE(header + 28, 2);
    buffer.resize(entry.size);
    in.seekg(static_cast<std::streamoff>(start));
    in.read(reinterpret_cast<char*>(buffer.data()), static_cast<std::streamsize>(entry.size));
    if (!in || crc32(buffer.data(), buffer.size()) != entry.crc32) {
      throw Error(code::kModelLoad, "'" + path + "' is damaged: record '" + entry.name + "' fails its checksum");
    }
  }
}

}  // namespace vbp
