// Reading the central directory of a zip archive (a TorchScript file is one), ZIP64 aware, and CRC-32.
// No LibTorch here: the archive checks run it before LibTorch parses anything, and the fuzzer runs it alone.
// Every offset and length read from the archive is checked against the archive's size without overflow.
#pragma once

#include <cstdint>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

namespace vbp {

// Random access to the bytes of an archive: a file, or an archive held in memory (one inside another).
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual uint64_t size() const = 0;
  // Reads exactly `n` bytes at `offset`; false when they are not all there.
  virtual bool read(uint64_t offset, void* out, size_t n) = 0;
};

class FileSource final : public ByteSource {
 public:
  explicit FileSource(const std::string& path);
  bool open() const { return static_cast<bool>(in_); }
  uint64_t size() const override { return size_; }
  bool read(uint64_t offset, void* out, size_t n) override;

 private:
  std::ifstream in_;
  uint64_t size_ = 0;
};

class MemorySource final : public ByteSource {
 public:
  MemorySource(const void* data, size_t size) : data_(static_cast<const unsigned char*>(data)), size_(size) {}
  uint64_t size() const override { return size_; }
  bool read(uint64_t offset, void* out, size_t n) override;

 private:
  const unsigned char* data_;
  uint64_t size_;
};

struct ZipEntry {
  std::string name;   // without the archive's top folder
  uint64_t size = 0;  // uncompressed
  uint64_t compressedSize = 0;
  uint32_t crc32 = 0;
  uint16_t method = 0;        // 0: stored (what PyTorch writes)
  uint64_t headerOffset = 0;  // of the local file header
};

// The entries of the archive's central directory; nullopt when it cannot be read (not a zip, or damaged).
std::optional<std::vector<ZipEntry>> readZipDirectory(ByteSource& in);

// Offset of an entry's data, from its local file header; nullopt when that header is not valid or the
// data (its compressed size) does not lie within the archive.
std::optional<uint64_t> zipEntryDataOffset(ByteSource& in, const ZipEntry& entry);

uint32_t crc32(const unsigned char* data, size_t n, uint32_t crc = 0);

// a + b and a * b without wrapping; false when the result does not fit.
inline bool addWithin(uint64_t a, uint64_t b, uint64_t& out) { return !__builtin_add_overflow(a, b, &out); }
inline bool mulWithin(uint64_t a, uint64_t b, uint64_t& out) { return !__builtin_mul_overflow(a, b, &out); }

}  // namespace vbp
