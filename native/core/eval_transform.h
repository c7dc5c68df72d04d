// torchvision's evaluation transform of a JPEG file as its PIL path computes it: decode (libjpeg-turbo, as
// Pillow), Resize(shorter side, bicubic or bilinear), CenterCrop, ToTensor, Normalize, written straight into
// a float item [3, crop, crop]. Only the crop's pixels are resampled.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/pil_resample.h"

namespace vbp {

struct EvalTransform {
  int resize = 256;  // the shorter side after resizing
  int crop = 224;
  ResampleFilter filter = ResampleFilter::kBicubic;
  std::array<float, 3> mean{};
  std::array<float, 3> std{};
};

// Writes the transformed image into `out` (3 * crop * crop floats) and returns true, or returns false with
// `why` when the file is not a JPEG this path reproduces (the caller decodes it another way). A damaged JPEG
// throws Error(DATA).
bool evalTransformJpeg(const uint8_t* data, std::size_t size, const EvalTransform& transform, float* out, std::string& why);

}  // namespace vbp
