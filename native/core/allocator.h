// The C allocator's handling of large blocks. LibTorch allocates every activation tensor afresh; with
// glibc's defaults, blocks of a few MB are mmap-ed and unmapped (or trimmed) on every forward, and each
// one is faulted in page by page again: a batch-256 forward of the bundled model measured 120-250 ms that
// way against 53 ms with large blocks kept. Keeping them costs resident memory up to the working set.
#pragma once

#include <cstddef>

namespace vbp {

// Keeps freed blocks up to `bytes` in the allocator (M_MMAP_THRESHOLD, M_TRIM_THRESHOLD = 2 x bytes).
// Process-wide; returns false where the C library has no such settings (non-glibc).
bool keepLargeAllocations(size_t bytes);

}  // namespace vbp
