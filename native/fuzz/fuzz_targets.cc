#include "fuzz/fuzz_targets.h"

#include <map>

#include "core/pickle_scan.h"
#include "core/zip_directory.h"

namespace vbp::fuzz {

int64_t storageScalarType(const std::string& name) {
  static const std::map<std::string, int64_t> types = {
      {"ByteStorage", 0}, {"CharStorage", 1},  {"ShortStorage", 2},  {"IntStorage", 3},   {"LongStorage", 4},
      {"HalfStorage", 5}, {"FloatStorage", 6}, {"DoubleStorage", 7}, {"BoolStorage", 11}, {"BFloat16Storage", 15},
  };
  const auto found = types.find(name);
  return found == types.end() ? -1 : found->second;
}

void scanPickle(const uint8_t* data, size_t size) {
  try {
    const auto refs = scanStorageReferences(std::string(reinterpret_cast<const char*>(data), size), &storageScalarType);
    uint64_t bytes = 0;
    for (const auto& ref : refs) (void)mulWithin(static_cast<uint64_t>(ref.numel), 8, bytes);
  } catch (const PickleScanError&) {
    // refused: fine
  }
}

void checkArchive(const uint8_t* data, size_t size) {
  MemorySource source(data, size);
  const auto entries = readZipDirectory(source);
  if (!entries) return;
  for (const ZipEntry& entry : *entries) {
    const auto start = zipEntryDataOffset(source, entry);
    if (!start || entry.method != 0 || entry.size > (1 << 24)) continue;
    std::string bytes(entry.size, '\0');
    if (!source.read(*start, bytes.data(), bytes.size())) continue;
    (void)crc32(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
    if (entry.name.size() > 4 && entry.name.compare(entry.name.size() - 4, 4, ".pkl") == 0) {
      scanPickle(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    }
  }
}

}  // namespace vbp::fuzz
