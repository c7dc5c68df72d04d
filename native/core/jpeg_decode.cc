#include "core/jpeg_decode.h"

#include <csetjmp>
#include <cstdio>
#include <cstring>

#include "core/errors.h"

#if VBP_WITH_JPEG
#include <jpeglib.h>
// jerror.h after jpeglib.h: the warning codes (JWRN_JPEG_EOF).
#include <jerror.h>
#endif

namespace vbp {

bool looksLikeJpeg(const uint8_t* data, std::size_t size) { return size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF; }

#if !VBP_WITH_JPEG

JpegResult decodeJpeg(const uint8_t*, std::size_t, RgbImage&, std::string& why) {
  why = "this build has no libjpeg";
  return JpegResult::kUnsupported;
}

#else

namespace {

// libjpeg reports errors through error_exit, which must not return: it jumps back to decodeJpeg's setjmp.
// Nothing between the setjmp and the jump has a destructor to run (only libjpeg's C frames are left).
struct ErrorManager {
  jpeg_error_mgr base;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  bool truncated;
};

void onError(j_common_ptr info) {
  auto* manager = reinterpret_cast<ErrorManager*>(info->err);
  (*info->err->format_message)(info, manager->message);
  std::longjmp(manager->jump, 1);
}

// Warnings are ignored as Pillow ignores them, except the end of the data before the image's end: Pillow
// refuses a truncated file ("image file is truncated"), so this does too.
void onMessage(j_common_ptr info, int level) {
  auto* manager = reinterpret_cast<ErrorManager*>(info->err);
  if (level < 0 && info->err->msg_code == JWRN_JPEG_EOF) manager->truncated = true;
}

uint16_t read16(const uint8_t* p, bool little) {
  return little ? static_cast<uint16_t>(p[0] | (p[1] << 8)) : static_cast<uint16_t>((p[0] << 8) | p[1]);
}

// The EXIF orientation (tag 0x0112 of IFD0) in an APP1 marker, 1 when there is none.
int exifOrientation(const jpeg_saved_marker_ptr markers) {
  for (jpeg_saved_marker_ptr m = markers; m != nullptr; m = m->next) {
    if (m->marker != JPEG_APP0 + 1 || m->data_length < 14 || std::memcmp(m->data, "Exif\0\0", 6) != 0) continue;
    const uint8_t* tiff = m->data + 6;
    const std::size_t size = m->data_length - 6;
    const bool little = tiff[0] == 'I' && tiff[1] == 'I';
    if (!little && !(tiff[0] == 'M' && tiff[1] == 'M')) continue;
    const uint32_t ifd = little ? (tiff[4] | (tiff[5] << 8) | (tiff[6] << 16) | (static_cast<uint32_t>(tiff[7]) << 24))
                                : ((static_cast<uint32_t>(tiff[4]) << 24) | (tiff[5] << 16) | (tiff[6] << 8) | tiff[7]);
    if (static_cast<std::size_t>(ifd) + 2 > size) continue;  // in size_t: an offset near 2^32 must not wrap
    const uint16_t entries = read16(tiff + ifd, little);
    for (uint16_t e = 0; e < entries; ++e) {
      const std::size_t at = static_cast<std::size_t>(ifd) + 2 + 12u * static_cast<std::size_t>(e);
      if (at + 12 > size) break;
      if (read16(tiff + at, little) == 0x0112) return read16(tiff + at + 8, little);
    }
  }
  return 1;
}

}  // namespace

JpegResult decodeJpeg(const uint8_t* data, std::size_t size, RgbImage& out, std::string& why) {
  if (!looksLikeJpeg(data, size)) {
    why = "not a JPEG file";
    return JpegResult::kUnsupported;
  }
  jpeg_decompress_struct info;
  ErrorManager errors;
  info.err = jpeg_std_error(&errors.base);
  errors.base.error_exit = onError;
  errors.base.emit_message = onMessage;
  errors.truncated = false;
  errors.message[0] = '\0';
  JpegResult result = JpegResult::kDecoded;
  if (setjmp(errors.jump) != 0) {
    jpeg_destroy_decompress(&info);
    throw Error(code::kData, std::string("damaged JPEG data: ") + errors.message);
  }
  jpeg_create_decompress(&info);
  jpeg_mem_src(&info, data, static_cast<unsigned long>(size));
  jpeg_save_markers(&info, JPEG_APP0 + 1, 0xFFFF);
  jpeg_read_header(&info, TRUE);
  // Pillow refuses more than twice its MAX_IMAGE_PIXELS (DecompressionBombError): so does this, before allocating.
  constexpr uint64_t kMaxPixels = 2ull * 89478485ull;
  const uint64_t pixels = static_cast<uint64_t>(info.image_width) * info.image_height;
  if (pixels > kMaxPixels) {
    jpeg_destroy_decompress(&info);
    throw Error(code::kData, "a JPEG of " + std::to_string(info.image_width) + " x " + std::to_string(info.image_height) + " pixels, more than the " +
                                 std::to_string(kMaxPixels) + " Pillow decodes (a decompression bomb)");
  }
  const int orientation = exifOrientation(info.marker_list);
  if (info.jpeg_color_space == JCS_CMYK || info.jpeg_color_space == JCS_YCCK) {
    why = "a CMYK JPEG";
    result = JpegResult::kUnsupported;
  } else if (orientation != 1) {
    why = "a JPEG with EXIF orientation " + std::to_string(orientation);
    result = JpegResult::kUnsupported;
  }
  if (result == JpegResult::kUnsupported) {
    jpeg_destroy_decompress(&info);
    return result;
  }
  info.out_color_space = JCS_RGB;  // greyscale JPEGs too: each grey value three times, as PIL's convert('RGB')
  info.dct_method = JDCT_ISLOW;
  info.do_fancy_upsampling = TRUE;
  jpeg_start_decompress(&info);
  out.width = static_cast<int>(info.output_width);
  out.height = static_cast<int>(info.output_height);
  out.pixels.resize(static_cast<std::size_t>(out.width) * out.height * 3);
  while (info.output_scanline < info.output_height) {
    JSAMPROW row = out.pixels.data() + static_cast<std::size_t>(info.output_scanline) * out.width * 3;
    jpeg_read_scanlines(&info, &row, 1);
  }
  jpeg_finish_decompress(&info);
  jpeg_destroy_decompress(&info);
  if (errors.truncated) throw Error(code::kData, "the JPEG data ends before the image does (a truncated file)");
  return JpegResult::kDecoded;
}

#endif  // VBP_WITH_JPEG

}  // namespace vbp
