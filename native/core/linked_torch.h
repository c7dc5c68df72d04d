// The LibTorch the process actually loaded, against the one the addon was compiled with. A prebuilt addon
// found a different LibTorch on the library path would otherwise fail on a missing symbol at best and
// crash on a changed class layout at worst; this check turns that into a coded error at load.
#pragma once

#include <string>

namespace vbp {

struct LinkedTorch {
  std::string version;  // TORCH_VERSION of the loaded library's build settings ("" when not stated)
  bool cuda = false;    // USE_CUDA of those build settings
};

// Reads TORCH_VERSION and USE_CUDA from a LibTorch build-settings text (at::show_config()).
LinkedTorch parseBuildSettings(const std::string& config);

// The loaded library's version and CUDA use.
LinkedTorch linkedTorch();

// "" when `linked` fits an addon compiled against `compiledVersion` (same major.minor, CUDA when compiled
// with CUDA); otherwise what differs and what to do.
std::string linkedTorchMismatch(const LinkedTorch& linked, const std::string& compiledVersion, bool compiledWithCuda);

}  // namespace vbp
