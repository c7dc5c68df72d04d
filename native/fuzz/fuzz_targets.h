// What the fuzzers exercise: the archive checks that run before LibTorch parses a file (the zip directory,
// the record bounds, the pickles' storage references), with no LibTorch linked in.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace vbp::fuzz {

// torch.<Name>Storage -> a scalar type number, as archive_check.cc gets it from c10 (a fixed table here).
int64_t storageScalarType(const std::string& name);

// Reads `data` as an archive: its directory, every entry's bounds, and the storages of its pickles.
void checkArchive(const uint8_t* data, size_t size);

// Reads `data` as one pickle.
void scanPickle(const uint8_t* data, size_t size);

}  // namespace vbp::fuzz
