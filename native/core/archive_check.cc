#include "core/archive_check.h"

#include <c10/core/ScalarType.h>
#include <torch/csrc/jit/ir/constants.h>

#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/errors.h"
#include "core/pickle_scan.h"

namespace vbp {
namespace {

bool isTensorRecord(const std::string& name) { return name.rfind("data/", 0) == 0 || name.rfind("constants/", 0) == 0; }
// The pickles that can hold tensors (data.pkl, constants.pkl); code's .debug_pkl files hold source ranges.
bool isScannedPickle(const std::string& name) { return name.size() > 4 && name.compare(name.size() - 4, 4, ".pkl") == 0; }

// torch.<Name>Storage -> the scalar type LibTorch's unpickler gives it, for every type this LibTorch has.
int64_t storageScalarType(const std::string& name) {
  static const auto* const types = [] {
    auto* map = new std::unordered_map<std::string, int64_t>();
    for (int i = 0; i < static_cast<int>(c10::ScalarType::NumOptions); ++i) {
      const auto type = static_cast<c10::ScalarType>(i);
      (*map)[std::string(c10::toString(type)) + "Storage"] = i;
    }
    return map;
  }();
  const auto found = types->find(name);
  return found == types->end() ? -1 : found->second;
}

uint64_t elementSize(int64_t scalarType) {
  if (scalarType < 0 || scalarType >= static_cast<int64_t>(c10::ScalarType::NumOptions)) return 1;
  return c10::elementSize(static_cast<c10::ScalarType>(scalarType));
}

// Reads a record's bytes in chunks and compares their CRC-32 with the directory's, with no buffer the size
// of the record (a damaged directory may claim gigabytes).
bool checksumMatches(ByteSource& in, uint64_t start, const ZipEntry& entry) {
  std::vector<unsigned char> chunk(std::min<uint64_t>(entry.size, 1 << 20));
  uint32_t crc = 0;
  for (uint64_t done = 0; done < entry.size;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(chunk.size(), entry.size - done));
    if (!in.read(start + done, chunk.data(), n)) return false;
    crc = crc32(chunk.data(), n, crc);
    done += n;
  }
  return crc == entry.crc32;
}

std::string readRecord(ByteSource& in, uint64_t start, const ZipEntry& entry) {
  std::string bytes(entry.size, '\0');
  if (!in.read(start, bytes.data(), bytes.size())) return {};
  return bytes;
}

// The record a storage's data lives in: data.pkl's storages in data/, constants.pkl's in constants/, and
// those of a pickle elsewhere (torch.save's archive/data.pkl) beside it.
std::string recordPrefix(const std::string& pickle) {
  if (pickle == "constants.pkl") return "constants/";
  const auto slash = pickle.rfind('/');
  return (slash == std::string::npos ? std::string() : pickle.substr(0, slash + 1)) + "data/";
}

// Whether every element of `t` lies within its storage: the lowest and highest byte its sizes and strides
// reach, computed without overflow.
bool coversChecked(const at::Tensor& t) {
  if (!t.defined() || t.numel() == 0) return true;
  if (!t.has_storage()) return false;
  const c10::Storage& storage = t.storage();
  if (storage.data() == nullptr && storage.nbytes() > 0) return false;
  int64_t low = t.storage_offset();
  int64_t high = t.storage_offset();
  if (low < 0) return false;
  for (int64_t d = 0; d < t.dim(); ++d) {
    int64_t reach = 0;
    if (__builtin_mul_overflow(t.size(d) - 1, t.stride(d), &reach)) return false;
    if (reach < 0 ? __builtin_add_overflow(low, reach, &low) : __builtin_add_overflow(high, reach, &high)) return false;
  }
  int64_t endByte = 0;
  if (low < 0 || __builtin_add_overflow(high, 1, &high) || __builtin_mul_overflow(high, static_cast<int64_t>(t.element_size()), &endByte)) {
    return false;
  }
  return endByte <= static_cast<int64_t>(storage.nbytes()) && storage.data() != nullptr;
}

// Walks a value and everything it holds; `visit` sees each tensor with a path for messages.
class TensorWalk {
 public:
  explicit TensorWalk(const std::function<void(const at::Tensor&, const std::string&)>& visit) : visit_(visit) {}

  void value(const c10::IValue& v, const std::string& where) {
    if (v.isTensor()) {
      visit_(v.toTensor(), where);
    } else if (v.isTuple()) {
      const auto& items = v.toTupleRef().elements();
      for (size_t i = 0; i < items.size(); ++i) value(items[i], where + "[" + std::to_string(i) + "]");
    } else if (v.isList()) {
      const auto list = v.toList();
      for (size_t i = 0; i < list.size(); ++i) value(list.get(i), where + "[" + std::to_string(i) + "]");
    } else if (v.isGenericDict()) {
      for (const auto& entry : v.toGenericDict()) {
        value(entry.key(), where + " (a key)");
        value(entry.value(), where + "[...]");
      }
    } else if (v.isObject()) {
      const auto object = v.toObject();
      if (!objects_.insert(object.get()).second) return;  // shared or cyclic
      const auto type = object->type();
      for (size_t slot = 0; slot < object->slots().size(); ++slot) {
        const std::string name = slot < type->numAttributes() ? type->getAttributeName(slot) : std::to_string(slot);
        value(object->getSlot(slot), where.empty() ? name : where + "." + name);
      }
    }
  }

 private:
  const std::function<void(const at::Tensor&, const std::string&)>& visit_;
  std::unordered_set<const c10::ivalue::Object*> objects_;
};

}  // namespace

bool storageCoversTensor(const at::Tensor& t) { return coversChecked(t); }

void checkArchiveRecords(ByteSource& in, const std::string& where) {
  const auto damaged = [&](const std::string& what) { throw Error(code::kModelLoad, where + " is damaged: " + what); };
  const auto entries = readZipDirectory(in);
  if (!entries) return;  // not a zip archive: LibTorch's reader gives the error
  std::unordered_map<std::string, uint64_t> recordSizes;
  std::vector<std::pair<std::string, std::string>> pickles;  // name, bytes
  for (const ZipEntry& entry : *entries) {
    const auto start = zipEntryDataOffset(in, entry);
    if (!start) damaged("record '" + entry.name + "' has no valid header or does not lie within the file");
    const bool scanned = isTensorRecord(entry.name) || isScannedPickle(entry.name);
    if (entry.method != 0 && scanned) {
      // PyTorch stores tensor data and pickles uncompressed (only code is deflated), and their sizes are checked here.
      damaged("record '" + entry.name + "' is compressed (method " + std::to_string(entry.method) +
              "); PyTorch writes it uncompressed: save the model again with torch.jit.save");
    }
    if (entry.method == 0 && entry.compressedSize != entry.size) damaged("record '" + entry.name + "' is stored with two different sizes");
    recordSizes[entry.name] = entry.size;
    // Tensor data is too large to read twice; deflated records are checked by LibTorch's zip reader as it inflates them.
    if (isTensorRecord(entry.name) || entry.method != 0) continue;
    if (!checksumMatches(in, *start, entry)) damaged("record '" + entry.name + "' fails its checksum");
    if (isScannedPickle(entry.name)) pickles.emplace_back(entry.name, readRecord(in, *start, entry));
  }
  for (const auto& [name, bytes] : pickles) {
    std::vector<StorageReference> references;
    try {
      references = scanStorageReferences(bytes, &storageScalarType);
    } catch (const PickleScanError& e) {
      damaged("record '" + name + "' is not a pickle LibTorch can read (" + e.what() + ")");
    }
    const std::string prefix = recordPrefix(name);
    for (const StorageReference& ref : references) {
      if (ref.numel < 0) damaged("a storage of '" + name + "' has " + std::to_string(ref.numel) + " elements");
      if (ref.numel == 0) continue;  // LibTorch reads no record for it
      uint64_t bytesNeeded = 0;
      if (!mulWithin(static_cast<uint64_t>(ref.numel), elementSize(ref.scalarType), bytesNeeded) || bytesNeeded > static_cast<uint64_t>(INT64_MAX)) {
        damaged("storage '" + ref.key + "' claims " + std::to_string(ref.numel) + " elements, more bytes than a file can hold");
      }
      const auto record = recordSizes.find(prefix + ref.key);
      if (record == recordSizes.end()) damaged("storage '" + ref.key + "' has no record '" + prefix + ref.key + "'");
      if (bytesNeeded > record->second) {
        damaged("storage '" + ref.key + "' needs " + std::to_string(bytesNeeded) + " bytes but its record holds " + std::to_string(record->second));
      }
    }
  }
}

void checkArchiveTensors(const std::string& where, const torch::jit::Module& module) {
  const auto damaged = [&](const std::string& what) { throw Error(code::kModelLoad, where + " is damaged: " + what); };
  const std::function<void(const at::Tensor&, const std::string&)> check = [&](const at::Tensor& t, const std::string& path) {
    if (!coversChecked(t)) damaged("tensor '" + path + "' reaches outside the data stored for it");
  };
  TensorWalk walk(check);
  walk.value(module._ivalue(), "");
  for (const auto& sub : module.modules()) {
    for (const auto& method : sub.get_methods()) {
      for (const torch::jit::Node* node : method.graph()->nodes()) {
        if (node->kind() != c10::prim::Constant || node->outputs().size() != 1) continue;
        const auto value = torch::jit::toIValue(node->output());
        if (value) walk.value(*value, "a constant of " + method.name());
      }
    }
  }
}

}  // namespace vbp
