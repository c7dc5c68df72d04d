#include "core/precision.h"

#include <ATen/Context.h>

namespace vbp {

Tf32Settings tf32Settings() { return {at::globalContext().allowTF32CuBLAS(), at::globalContext().allowTF32CuDNN()}; }

void setTf32Settings(const Tf32Settings& settings) {
  at::globalContext().setAllowTF32CuBLAS(settings.matmul);
  at::globalContext().setAllowTF32CuDNN(settings.cudnn);
}

}  // namespace vbp
