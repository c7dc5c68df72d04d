// Pillow's resampling (Resample.c: separable passes, the filter widened by the downscaling factor, 22-bit
// fixed-point weights, a rounding to whole grey levels after each pass), computed only for a window of the
// output: a resize followed by a crop gives the same pixels as Pillow's resize and crop, without the rows and
// columns the crop drops.
#pragma once

#include <cstdint>
#include <vector>

namespace vbp {

enum class ResampleFilter { kBilinear, kBicubic };

struct ResampleWindow {
  int outWidth = 0;  // the whole resized image
  int outHeight = 0;
  int left = 0;  // the window of it to compute
  int top = 0;
  int width = 0;
  int height = 0;
};

// Resamples an RGB image (height x width x 3 bytes) to `window`'s output size and returns the window's
// pixels (window.height x window.width x 3 bytes).
std::vector<uint8_t> resampleWindow(const uint8_t* pixels, int width, int height, ResampleFilter filter, const ResampleWindow& window);

}  // namespace vbp
