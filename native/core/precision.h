// TF32 on NVIDIA GPUs (Ampere and later): whether float32 matmuls (cuBLAS) and convolutions (cuDNN) may
// round inputs to TF32. Process-wide LibTorch settings, the same flags as torch.backends.cuda.matmul.allow_tf32
// and torch.backends.cudnn.allow_tf32 (defaults: matmul off, cuDNN on). Plain flags on a CPU-only LibTorch.
#pragma once

namespace vbp {

struct Tf32Settings {
  bool matmul;
  bool cudnn;
};

Tf32Settings tf32Settings();
void setTf32Settings(const Tf32Settings& settings);

}  // namespace vbp
