#include "core/allocator.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace vbp {

bool keepLargeAllocations(size_t bytes) {
#if defined(__GLIBC__)
  // Setting either value also turns off glibc's own adjustment of them.
  return mallopt(M_MMAP_THRESHOLD, static_cast<int>(bytes)) == 1 && mallopt(M_TRIM_THRESHOLD, static_cast<int>(2 * bytes)) == 1;
#else
  (void)bytes;
  return false;
#endif
}

}  // namespace vbp
