// libFuzzer target: an archive as the native loader's pre-checks read it (scripts/fuzz.sh builds and runs it).
#include "fuzz/fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vbp::fuzz::checkArchive(data, size);
  return 0;
}
