#include "core/zip_directory.h"

#include <algorithm>
#include <array>
#include <cstring>

namespace vbp {
namespace {

constexpr uint32_t kEndOfDirectory = 0x06054b50;
constexpr uint32_t kZip64Locator = 0x07064b50;
constexpr uint32_t kZip64EndOfDirectory = 0x06064b50;
constexpr uint32_t kDirectoryEntry = 0x02014b50;
constexpr uint32_t kLocalHeader = 0x04034b50;
constexpr size_t kEndOfDirectorySize = 22;
constexpr size_t kZip64LocatorSize = 20;
constexpr size_t kDirectoryEntrySize = 46;
constexpr size_t kLocalHeaderSize = 30;
// A directory larger than this is not a model's (PyTorch's have a few entries per tensor).
constexpr uint64_t kMaxDirectoryBytes = uint64_t{1} << 30;

uint64_t readLE(const unsigned char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

struct Directory {
  uint64_t entries = 0;
  uint64_t size = 0;
  uint64_t offset = 0;
};

// The end-of-central-directory record (and the ZIP64 one it may point to): where the directory is.
std::optional<Directory> findDirectory(ByteSource& in) {
  const uint64_t fileSize = in.size();
  const uint64_t tailSize = std::min<uint64_t>(fileSize, 65535 + kEndOfDirectorySize);
  if (tailSize < kEndOfDirectorySize) return std::nullopt;
  std::vector<unsigned char> tail(tailSize);
  if (!in.read(fileSize - tailSize, tail.data(), tailSize)) return std::nullopt;
  int64_t end = -1;
  for (int64_t i = static_cast<int64_t>(tailSize - kEndOfDirectorySize); i >= 0; --i) {
    if (readLE(&tail[i], 4) == kEndOfDirectory) {
      end = i;
      break;
    }
  }
  if (end < 0) return std::nullopt;
  Directory d{readLE(&tail[end + 10], 2), readLE(&tail[end + 12], 4), readLE(&tail[end + 16], 4)};
  const bool zip64 = d.entries == 0xFFFF || d.size == 0xFFFFFFFF || d.offset == 0xFFFFFFFF;
  if (zip64 && end >= static_cast<int64_t>(kZip64LocatorSize) && readLE(&tail[end - kZip64LocatorSize], 4) == kZip64Locator) {
    unsigned char record[56];
    if (!in.read(readLE(&tail[end - kZip64LocatorSize + 8], 8), record, sizeof(record)) || readLE(record, 4) != kZip64EndOfDirectory) {
      return std::nullopt;
    }
    d = {readLE(record + 32, 8), readLE(record + 40, 8), readLE(record + 48, 8)};
  }
  uint64_t directoryEnd = 0;
  if (!addWithin(d.offset, d.size, directoryEnd) || directoryEnd > fileSize || d.size > kMaxDirectoryBytes) return std::nullopt;
  // Each entry takes at least its fixed part: a count beyond that is a lie.
  if (d.entries > d.size / kDirectoryEntrySize) return std::nullopt;
  return d;
}

// The ZIP64 extra block of a directory entry: the 64-bit fields present are those whose 32-bit field is
// all ones, in order (size, compressed size, header offset). Reads stay within the block's own length and
// within the entry's extra field.
void applyZip64Extra(const unsigned char* extra, uint64_t extraLength, ZipEntry& entry) {
  for (uint64_t x = 0; x + 4 <= extraLength;) {
    const uint64_t id = readLE(extra + x, 2);
    const uint64_t length = readLE(extra + x + 2, 2);
    const uint64_t end = std::min<uint64_t>(x + 4 + length, extraLength);
    if (id == 0x0001) {
      uint64_t field = x + 4;
      const auto next = [&](uint64_t& value) {
        if (value != 0xFFFFFFFF) return;
        if (field + 8 <= end) value = readLE(extra + field, 8);
        field += 8;
      };
      next(entry.size);
      next(entry.compressedSize);
      next(entry.headerOffset);
    }
    x += 4 + length;
  }
}

// The directory's entries; nullopt when one is malformed.
std::optional<std::vector<ZipEntry>> parseEntries(const std::vector<unsigned char>& dir, uint64_t count) {
  std::vector<ZipEntry> result;
  result.reserve(count);
  uint64_t at = 0;
  for (uint64_t e = 0; e < count; ++e) {
    if (at + kDirectoryEntrySize > dir.size() || readLE(&dir[at], 4) != kDirectoryEntry) return std::nullopt;
    ZipEntry entry;
    entry.method = static_cast<uint16_t>(readLE(&dir[at + 10], 2));
    entry.crc32 = static_cast<uint32_t>(readLE(&dir[at + 16], 4));
    entry.compressedSize = readLE(&dir[at + 20], 4);
    entry.size = readLE(&dir[at + 24], 4);
    entry.headerOffset = readLE(&dir[at + 42], 4);
    const uint64_t nameLength = readLE(&dir[at + 28], 2);
    const uint64_t extraLength = readLE(&dir[at + 30], 2);
    const uint64_t commentLength = readLE(&dir[at + 32], 2);
    const uint64_t nameAt = at + kDirectoryEntrySize;
    if (nameAt + nameLength + extraLength + commentLength > dir.size()) return std::nullopt;
    applyZip64Extra(&dir[nameAt + nameLength], extraLength, entry);
    const std::string name(reinterpret_cast<const char*>(&dir[nameAt]), nameLength);
    const auto slash = name.find('/');
    entry.name = slash == std::string::npos ? name : name.substr(slash + 1);
    result.push_back(std::move(entry));
    at = nameAt + nameLength + extraLength + commentLength;
  }
  return result;
}

}  // namespace

FileSource::FileSource(const std::string& path) : in_(path, std::ios::binary) {
  if (!in_) return;
  in_.seekg(0, std::ios::end);
  const auto end = in_.tellg();
  size_ = end < 0 ? 0 : static_cast<uint64_t>(end);
}

bool FileSource::read(uint64_t offset, void* out, size_t n) {
  uint64_t end = 0;
  if (!addWithin(offset, n, end) || end > size_) return false;
  in_.clear();
  in_.seekg(static_cast<std::streamoff>(offset));
  in_.read(static_cast<char*>(out), static_cast<std::streamsize>(n));
  return static_cast<bool>(in_);
}

bool MemorySource::read(uint64_t offset, void* out, size_t n) {
  uint64_t end = 0;
  if (!addWithin(offset, n, end) || end > size_) return false;
  if (n > 0) std::memcpy(out, data_ + offset, n);
  return true;
}

std::optional<std::vector<ZipEntry>> readZipDirectory(ByteSource& in) {
  const auto directory = findDirectory(in);
  if (!directory) return std::nullopt;
  std::vector<unsigned char> bytes(directory->size);
  if (!in.read(directory->offset, bytes.data(), bytes.size())) return std::nullopt;
  return parseEntries(bytes, directory->entries);
}

std::optional<uint64_t> zipEntryDataOffset(ByteSource& in, const ZipEntry& entry) {
  unsigned char header[kLocalHeaderSize];
  if (!in.read(entry.headerOffset, header, sizeof(header)) || readLE(header, 4) != kLocalHeader) return std::nullopt;
  uint64_t start = 0;
  uint64_t end = 0;
  if (!addWithin(entry.headerOffset, kLocalHeaderSize + readLE(header + 26, 2) + readLE(header + 28, 2), start) ||
      !addWithin(start, entry.compressedSize, end) || end > in.size()) {
    return std::nullopt;
  }
  return start;
}

uint32_t crc32(const unsigned char* data, size_t n, uint32_t crc) {
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

}  // namespace vbp
