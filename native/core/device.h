// Device strings ('cpu', 'cuda', 'cuda:N') and what this LibTorch build can run on.
#pragma once

#include <c10/core/Device.h>

#include <string>

namespace vbp {

struct BuildInfo {
  std::string torchVersion;  // of the headers the addon was compiled with
  bool cudaBuild;            // whether CUDA kernels are linked in (true without a GPU too)
  std::string cudaVersion;   // CUDA toolkit CMake found for a CUDA LibTorch ("" for CPU builds)
  bool cudaAvailable;        // whether a usable GPU is present (needs cudaBuild)
  int cudaDeviceCount;
  int numThreads;  // intra-op threads
};

BuildInfo buildInfo();

// Whether the addon was compiled against a CUDA LibTorch (without asking the driver anything).
bool compiledWithCuda();

// Parses and checks a device string; throws vbp::Error(DEVICE) with what to do instead.
c10::Device resolveDevice(const std::string& spec);

std::string deviceName(const c10::Device& device);

}  // namespace vbp
