// Mixed precision as torch.autocast does it: inside a scope, the ops autocast lists for the device run in
// bfloat16 or float16 (matmuls, linear layers), the rest in float32; the weights stay float32. Autocast state is
// per thread, so a scope covers the work of the thread that opened it.
#pragma once

#include <c10/core/DeviceType.h>
#include <c10/core/ScalarType.h>

#include <string>

namespace vbp {

enum class Precision { Float32, BFloat16, Float16 };

// 'fp32', 'bf16' or 'fp16'; anything else is INVALID_ARGUMENT.
Precision parsePrecision(const std::string& text);
const char* precisionName(Precision precision);
// Throws INVALID_ARGUMENT when autocast has no such precision on this device (fp16 is CUDA's: on the CPU, bf16).
void checkPrecisionForDevice(Precision precision, c10::DeviceType device);

class AutocastScope {
 public:
  // Float32 opens no scope.
  AutocastScope(c10::DeviceType device, Precision precision);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  c10::DeviceType device_;
  bool active_ = false;
  bool wasEnabled_ = false;
  c10::ScalarType previousDtype_ = c10::ScalarType::Float;
  bool wasCaching_ = true;
};

}  // namespace vbp
