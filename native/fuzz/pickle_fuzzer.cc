// libFuzzer target: one pickle through the shadow unpickler (scripts/fuzz.sh builds and runs it).
#include "fuzz/fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vbp::fuzz::scanPickle(data, size);
  return 0;
}
