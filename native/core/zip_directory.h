// Reading the central directory of a zip archive (a TorchScript file is one), ZIP64 aware, and CRC-32.
// No LibTorch here: the archive checks use it before LibTorch parses anything.
#pragma once

#include <cstdint>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

namespace vbp {

struct ZipEntry {
  std::string name;           // without the archive's top folder
  uint64_t size = 0;          // uncompressed
  uint32_t crc32 = 0;
  uint16_t method = 0;        // 0: stored (what PyTorch writes)
  uint64_t headerOffset = 0;  // of the local file header
};

// The entries of the archive's central directory; nullopt when it cannot be read (not a zip, or damaged).
std::optional<std::vector<ZipEntry>> readZipDirectory(std::ifstream& in);

// Offset of an entry's data, from its local file header; nullopt when that header is not valid.
std::optional<uint64_t> zipEntryDataOffset(std::ifstream& in, const ZipEntry& entry);

uint32_t crc32(const unsigned char* data, size_t n, uint32_t crc = 0);

}  // namespace vbp
