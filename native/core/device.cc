#include "core/device.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <regex>

#include "core/errors.h"

namespace vbp {

BuildInfo buildInfo() {
  BuildInfo info;
  info.torchVersion = TORCH_VERSION;
  // What was compiled and what is present, apart: at::hasCUDA() is false for a CUDA LibTorch on a machine
  // without a GPU. LibTorch's CUDA library registers its hooks when it loads, so the registry says whether
  // the CUDA kernels are linked in, without asking the driver.
  info.cudaBuild = compiledWithCuda() || at::CUDAHooksRegistry()->Has("CUDAHooks");
#ifdef VBP_CUDA_VERSION
  info.cudaVersion = VBP_CUDA_VERSION;
#endif
  info.cudaAvailable = info.cudaBuild && at::hasCUDA() && torch::cuda::is_available();
  info.cudaDeviceCount = info.cudaAvailable ? static_cast<int>(torch::cuda::device_count()) : 0;
  info.numThreads = at::get_num_threads();
  return info;
}

bool compiledWithCuda() {
#ifdef VBP_CUDA_VERSION
  return true;
#else
  return false;
#endif
}

c10::Device resolveDevice(const std::string& spec) {
  static const std::regex kPattern("^(cpu|cuda)(:([0-9]{1,4}))?$");
  std::smatch match;
  if (!std::regex_match(spec, match, kPattern) || (match[1] == "cpu" && match[2].matched)) {
    throw Error(code::kDevice, "invalid device '" + spec + "': expected 'cpu', 'cuda' or 'cuda:N'");
  }
  if (match[1] == "cpu") return c10::Device(c10::kCPU);

  const BuildInfo info = buildInfo();
  if (!info.cudaBuild) {
    throw Error(code::kDevice, "device '" + spec + "' asked for, but this LibTorch (" + info.torchVersion +
                                   ") was built without CUDA; rebuild torch-vbp against a CUDA LibTorch "
                                   "(see README, 'Building and LibTorch')");
  }
  if (!info.cudaAvailable) {
    throw Error(code::kDevice, "device '" + spec + "' asked for: this addon is built with CUDA " +
                                   (info.cudaVersion.empty() ? std::string("(version unknown)") : info.cudaVersion) +
                                   ", but no CUDA GPU is visible (no device, or no NVIDIA driver; see nvidia-smi)");
  }
  const int index = match[3].matched ? std::stoi(match[3].str()) : 0;
  if (index >= info.cudaDeviceCount) {
    throw Error(code::kDevice, "device '" + spec + "' does not exist: this machine has " + std::to_string(info.cudaDeviceCount) + " CUDA device(s)");
  }
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
}

std::string deviceName(const c10::Device& device) { return device.str(); }

}  // namespace vbp
