#include "core/eval_transform.h"

#include <cmath>

#include "core/errors.h"
#include "core/jpeg_decode.h"

namespace vbp {

bool evalTransformJpeg(const uint8_t* data, std::size_t size, const EvalTransform& t, float* out, std::string& why) {
  RgbImage image;
  if (decodeJpeg(data, size, image, why) != JpegResult::kDecoded) return false;
  // torchvision's Resize(int): the shorter side becomes `resize`, the longer int(resize * long / short).
  const bool portrait = image.width <= image.height;
  const int shortSide = portrait ? image.width : image.height;
  const int longSide = portrait ? image.height : image.width;
  const int longOut = static_cast<int>(static_cast<double>(static_cast<int64_t>(t.resize) * longSide) / shortSide);
  ResampleWindow window;
  window.outWidth = portrait ? t.resize : longOut;
  window.outHeight = portrait ? longOut : t.resize;
  if (window.outWidth < t.crop || window.outHeight < t.crop)
    throw Error(code::kInvalidArgument, "resize " + std::to_string(t.resize) + " is smaller than crop " + std::to_string(t.crop));
  // CenterCrop's offsets: Python's round(), half to even (nearbyint in the default rounding mode).
  window.left = static_cast<int>(std::nearbyint((window.outWidth - t.crop) / 2.0));
  window.top = static_cast<int>(std::nearbyint((window.outHeight - t.crop) / 2.0));
  window.width = t.crop;
  window.height = t.crop;
  const std::vector<uint8_t> pixels = resampleWindow(image.pixels.data(), image.width, image.height, t.filter, window);
  // ToTensor and Normalize in float32, one operation at a time, as torchvision: (x / 255 - mean) / std.
  const std::size_t plane = static_cast<std::size_t>(t.crop) * t.crop;
  for (int c = 0; c < 3; ++c) {
    const float mean = t.mean[c];
    const float std = t.std[c];
    float* dst = out + c * plane;
    for (std::size_t i = 0; i < plane; ++i) {
      const float scaled = static_cast<float>(pixels[i * 3 + c]) / 255.0f;
      dst[i] = (scaled - mean) / std;
    }
  }
  return true;
}

}  // namespace vbp
