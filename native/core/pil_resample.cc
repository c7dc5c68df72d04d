#include "core/pil_resample.h"

#include <algorithm>
#include <cmath>

namespace vbp {

namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;

double bilinear(double x) {
  if (x < 0.0) x = -x;
  if (x < 1.0) return 1.0 - x;
  return 0.0;
}

double bicubic(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

// Each output position's first source index, tap count and fixed-point weights (precompute_coeffs and
// normalize_coeffs_8bpc, with the same double arithmetic).
struct Coefficients {
  int taps = 0;            // the widest kernel (ksize)
  std::vector<int> first;  // per output position
  std::vector<int> count;
  std::vector<int32_t> weights;  // per output position, `taps` of them
};

Coefficients coefficients(int inSize, int outSize, ResampleFilter filter) {
  const double support0 = filter == ResampleFilter::kBicubic ? 2.0 : 1.0;
  double (*kernel)(double) = filter == ResampleFilter::kBicubic ? bicubic : bilinear;
  const float in0 = 0.0f;
  const float in1 = static_cast<float>(inSize);
  double scale = static_cast<double>(in1 - in0) / outSize;
  double filterScale = scale < 1.0 ? 1.0 : scale;
  const double support = support0 * filterScale;
  Coefficients c;
  c.taps = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.first.resize(outSize);
  c.count.resize(outSize);
  c.weights.assign(static_cast<std::size_t>(outSize) * c.taps, 0);
  std::vector<double> k(c.taps);
  for (int xx = 0; xx < outSize; ++xx) {
    const double center = in0 + (xx + 0.5) * scale;
    const double ss = 1.0 / filterScale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      const double w = kernel((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (int x = 0; x < xmax; ++x) {
      if (ww != 0.0) k[x] /= ww;
      const double scaled = k[x] * (1 << kPrecisionBits);
      c.weights[static_cast<std::size_t>(xx) * c.taps + x] = static_cast<int32_t>(k[x] < 0 ? -0.5 + scaled : 0.5 + scaled);
    }
    c.first[xx] = xmin;
    c.count[xx] = xmax;
  }
  return c;
}

inline uint8_t clip8(int32_t v) {
  const int32_t shifted = v >> kPrecisionBits;  // arithmetic shift: floor, as Pillow's lookup table
  return static_cast<uint8_t>(shifted < 0 ? 0 : shifted > 255 ? 255 : shifted);
}

}  // namespace

std::vector<uint8_t> resampleWindow(const uint8_t* pixels, int width, int height, ResampleFilter filter, const ResampleWindow& w) {
  const bool horizontal = w.outWidth != width;
  const bool vertical = w.outHeight != height;
  // The source rows the window's output rows read (all of them without a vertical pass).
  Coefficients rows;
  int firstRow = w.top;
  int lastRow = w.top + w.height;
  if (vertical) {
    rows = coefficients(height, w.outHeight, filter);
    firstRow = rows.first[w.top];
    lastRow = 0;
    for (int y = w.top; y < w.top + w.height; ++y) lastRow = std::max(lastRow, rows.first[y] + rows.count[y]);
  }
  // Horizontal pass over those rows, for the window's columns only (Pillow rounds its result to bytes).
  const int rowCount = lastRow - firstRow;
  std::vector<uint8_t> across(static_cast<std::size_t>(rowCount) * w.width * 3);
  if (horizontal) {
    const Coefficients cols = coefficients(width, w.outWidth, filter);
    for (int y = 0; y < rowCount; ++y) {
      const uint8_t* in = pixels + static_cast<std::size_t>(firstRow + y) * width * 3;
      uint8_t* out = across.data() + static_cast<std::size_t>(y) * w.width * 3;
      for (int x = 0; x < w.width; ++x) {
        const int xx = w.left + x;
        const int32_t* k = cols.weights.data() + static_cast<std::size_t>(xx) * cols.taps;
        const uint8_t* src = in + static_cast<std::size_t>(cols.first[xx]) * 3;
        // 32-bit sums as Pillow's: |weights| sum to under 2^23, so 255 times them stays below 2^31.
        int32_t s0 = 1 << (kPrecisionBits - 1), s1 = s0, s2 = s0;
        for (int t = 0; t < cols.count[xx]; ++t) {
          s0 += src[t * 3 + 0] * k[t];
          s1 += src[t * 3 + 1] * k[t];
          s2 += src[t * 3 + 2] * k[t];
        }
        out[x * 3 + 0] = clip8(s0);
        out[x * 3 + 1] = clip8(s1);
        out[x * 3 + 2] = clip8(s2);
      }
    }
  } else {
    for (int y = 0; y < rowCount; ++y)
      std::copy_n(pixels + (static_cast<std::size_t>(firstRow + y) * width + w.left) * 3, w.width * 3,
                  across.data() + static_cast<std::size_t>(y) * w.width * 3);
  }
  if (!vertical) return across;
  // Vertical pass for the window's rows: each output row sums whole source rows (a loop the compiler vectorises).
  const std::size_t rowBytes = static_cast<std::size_t>(w.width) * 3;
  std::vector<uint8_t> out(static_cast<std::size_t>(w.height) * rowBytes);
  std::vector<int32_t> sums(rowBytes);
  for (int y = 0; y < w.height; ++y) {
    const int yy = w.top + y;
    const int32_t* k = rows.weights.data() + static_cast<std::size_t>(yy) * rows.taps;
    const int first = rows.first[yy] - firstRow;
    std::fill(sums.begin(), sums.end(), 1 << (kPrecisionBits - 1));
    for (int t = 0; t < rows.count[yy]; ++t) {
      const uint8_t* src = across.data() + static_cast<std::size_t>(first + t) * rowBytes;
      const int32_t weight = k[t];
      for (std::size_t i = 0; i < rowBytes; ++i) sums[i] += src[i] * weight;
    }
    uint8_t* dst = out.data() + static_cast<std::size_t>(y) * rowBytes;
    for (std::size_t i = 0; i < rowBytes; ++i) dst[i] = clip8(sums[i]);
  }
  return out;
}

}  // namespace vbp
