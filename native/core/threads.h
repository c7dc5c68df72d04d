// Intra-op thread count: LibTorch's and, where LibTorch's BLAS is OpenBLAS, OpenBLAS's own (Debian's
// OpenBLAS ignores torch's setting and would otherwise use every core).
#pragma once

namespace vbp {

void setThreadCount(int threads);

// Gives the calling thread the count last set. LibTorch applies a count to each thread once, when the thread
// first runs a parallel op (OpenMP keeps it per thread), so pool threads that ran work before a later
// setThreadCount() keep the old count unless told again: every job calls this first.
void applyThreadCount();

// OpenBLAS's thread count, or -1 where LibTorch does not use OpenBLAS.
int blasThreadCount();

}  // namespace vbp
