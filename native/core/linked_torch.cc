#include "core/linked_torch.h"

#include <ATen/Version.h>

#include <regex>

namespace vbp {
namespace {

std::string majorMinor(const std::string& version) {
  static const std::regex kPattern("^([0-9]+)\\.([0-9]+)");
  std::smatch match;
  return std::regex_search(version, match, kPattern) ? match[1].str() + "." + match[2].str() : version;
}

}  // namespace

LinkedTorch parseBuildSettings(const std::string& config) {
  LinkedTorch linked;
  std::smatch match;
  static const std::regex kVersion("TORCH_VERSION=([0-9][0-9A-Za-z.+_-]*)");
  static const std::regex kCuda("USE_CUDA=(ON|OFF|1|0)");
  if (std::regex_search(config, match, kVersion)) linked.version = match[1].str();
  if (std::regex_search(config, match, kCuda)) linked.cuda = match[1].str() == "ON" || match[1].str() == "1";
  return linked;
}

LinkedTorch linkedTorch() { return parseBuildSettings(at::show_config()); }

std::string linkedTorchMismatch(const LinkedTorch& linked, const std::string& compiledVersion, bool compiledWithCuda) {
  const std::string rebuild =
      "; rebuild torch-vbp against it (npm run build:native, README 'Building and LibTorch') or put the LibTorch it was built with on the library "
      "path";
  if (!linked.version.empty() && majorMinor(linked.version) != majorMinor(compiledVersion)) {
    return "torch-vbp was built against LibTorch " + compiledVersion + " but the process loaded LibTorch " + linked.version + rebuild;
  }
  if (compiledWithCuda && !linked.cuda) {
    return "torch-vbp was built against a CUDA LibTorch " + compiledVersion + " but the process loaded a CPU-only LibTorch " + linked.version +
           rebuild;
  }
  return "";
}

}  // namespace vbp
