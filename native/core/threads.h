// Intra-op thread count: LibTorch's and, where LibTorch's BLAS is OpenBLAS, OpenBLAS's own (Debian's
// OpenBLAS ignores torch's setting and would otherwise use every core).
#pragma once

namespace vbp {

void setThreadCount(int threads);

// OpenBLAS's thread count, or -1 where LibTorch does not use OpenBLAS.
int blasThreadCount();

}  // namespace vbp
