// X^T X of [rows, cols] matrices, accumulated: the per-batch product of the covariance statistics. On the
// CPU it uses the BLAS symmetric rank-k update (syrk: half the multiplications of a general product, and it
// adds into the running sum without a temporary) when LibTorch's BLAS exports it (OpenBLAS, as Debian's
// LibTorch links); elsewhere, and on GPUs, at::addmm.
#pragma once

#include <ATen/ATen.h>

namespace vbp {

// accumulator (float64 [cols, cols]) += X^T X, with X float32 or float64. Only the upper triangle of the
// accumulator is kept up to date (the product is symmetric); see symmetricFromUpper().
void addGram(at::Tensor& accumulator, const at::Tensor& x);

// The full symmetric matrix whose upper triangle is `upper`'s.
at::Tensor symmetricFromUpper(const at::Tensor& upper);

// Whether addGram() finds a BLAS syrk for this dtype on the CPU (for benchmarks and diagnostics).
bool gramUsesSyrk(at::ScalarType dtype);

}  // namespace vbp
