#include "core/autocast.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include "core/errors.h"

// LibTorch 2.4 replaced the per-device functions (set_cpu_enabled, ...) by ones that take the device type.
#define VBP_AUTOCAST_BY_DEVICE (TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4))

namespace vbp {

namespace {

bool autocastEnabled(c10::DeviceType device) {
#if VBP_AUTOCAST_BY_DEVICE
  return at::autocast::is_autocast_enabled(device);
#else
  return device == c10::DeviceType::CPU ? at::autocast::is_cpu_enabled() : at::autocast::is_enabled();
#endif
}

void setAutocastEnabled(c10::DeviceType device, bool enabled) {
#if VBP_AUTOCAST_BY_DEVICE
  at::autocast::set_autocast_enabled(device, enabled);
#else
  if (device == c10::DeviceType::CPU) {
    at::autocast::set_cpu_enabled(enabled);
  } else {
    at::autocast::set_enabled(enabled);
  }
#endif
}

c10::ScalarType autocastDtype(c10::DeviceType device) {
#if VBP_AUTOCAST_BY_DEVICE
  return at::autocast::get_autocast_dtype(device);
#else
  return device == c10::DeviceType::CPU ? at::autocast::get_autocast_cpu_dtype() : at::autocast::get_autocast_gpu_dtype();
#endif
}

void setAutocastDtype(c10::DeviceType device, c10::ScalarType dtype) {
#if VBP_AUTOCAST_BY_DEVICE
  at::autocast::set_autocast_dtype(device, dtype);
#else
  if (device == c10::DeviceType::CPU) {
    at::autocast::set_autocast_cpu_dtype(dtype);
  } else {
    at::autocast::set_autocast_gpu_dtype(dtype);
  }
#endif
}

}  // namespace

Precision parsePrecision(const std::string& text) {
  if (text == "fp32") return Precision::Float32;
  if (text == "bf16") return Precision::BFloat16;
  if (text == "fp16") return Precision::Float16;
  throw Error(code::kInvalidArgument, "precision must be 'fp32', 'bf16' or 'fp16', got '" + text + "'");
}

const char* precisionName(Precision precision) {
  switch (precision) {
    case Precision::BFloat16:
      return "bf16";
    case Precision::Float16:
      return "fp16";
    default:
      return "fp32";
  }
}

void checkPrecisionForDevice(Precision precision, c10::DeviceType device) {
  if (precision == Precision::Float16 && device != c10::DeviceType::CUDA) {
    throw Error(code::kInvalidArgument, "precision 'fp16' is for CUDA devices (with a dynamic loss scale); on the CPU use 'bf16'");
  }
}

AutocastScope::AutocastScope(c10::DeviceType device, Precision precision) : device_(device) {
  if (precision == Precision::Float32) return;
  checkPrecisionForDevice(precision, device);
  // What torch.autocast's __enter__ does: remember, enable with the dtype, count the nesting, cache weight casts.
  wasEnabled_ = autocastEnabled(device);
  previousDtype_ = autocastDtype(device);
  wasCaching_ = at::autocast::is_autocast_cache_enabled();
  setAutocastEnabled(device, true);
  setAutocastDtype(device, precision == Precision::BFloat16 ? c10::ScalarType::BFloat16 : c10::ScalarType::Half);
  at::autocast::increment_nesting();
  at::autocast::set_autocast_cache_enabled(true);
  active_ = true;
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  // And its __exit__: the cast cache lives until the outermost scope ends.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  setAutocastEnabled(device_, wasEnabled_);
  setAutocastDtype(device_, previousDtype_);
  at::autocast::set_autocast_cache_enabled(wasCaching_);
}

}  // namespace vbp
