// JPEG decoding with the system's libjpeg-turbo, configured as Pillow configures it (islow DCT, fancy
// upsampling, RGB output), so that the pixels equal those torchvision's PIL path decodes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace vbp {

struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;  // height x width x 3
};

enum class JpegResult {
  kDecoded,
  // Not a JPEG this path reproduces (not a JPEG, CMYK, an EXIF orientation other than 1): the caller decodes
  // it another way; `why` says what it was.
  kUnsupported,
};

// Decodes `data`. A damaged or truncated JPEG throws Error(DATA) whose message says what libjpeg found.
JpegResult decodeJpeg(const uint8_t* data, std::size_t size, RgbImage& out, std::string& why);

// Whether `data` starts like a JPEG file (SOI marker).
bool looksLikeJpeg(const uint8_t* data, std::size_t size);

}  // namespace vbp
