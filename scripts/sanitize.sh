#!/usr/bin/env bash
# The sanitizer suite (npm run test:sanitize; .ci/run runs it after the README's two commands): the addon
# built with AddressSanitizer and UndefinedBehaviorSanitizer (build-asan/), loaded in place of the normal
# build (TORCH_VBP_ADDON) with the sanitizer runtime preloaded into Node.js, runs the suites that feed the
# native code damaged files, bad inputs and load/dispose cycles. Any report fails the run.
#
# LeakSanitizer runs at the exit of each child process those suites start (halt on the first report);
# test/support/lsan.supp lists what it may not count: allocations Node.js, V8 and LibTorch make once per
# process and keep until exit (static registries, thread pools), never ours.
#   scripts/sanitize.sh [jest test paths...]
set -euo pipefail
cd "$(dirname "$0")/.."

libasan=$(g++ -print-file-name=libasan.so)
libubsan=$(g++ -print-file-name=libubsan.so)
[ -f "$libasan" ] && [ -f "$libubsan" ] || { echo "sanitize: libasan/libubsan not found (g++'s libgcc-12-dev)" >&2; exit 2; }

echo "sanitize: building the addon with -fsanitize=address,undefined (build-asan/)"
npx --no-install cmake-js build --out build-asan --log-level warn \
  --CDCMAKE_BUILD_TYPE=RelWithDebInfo \
  "--CDCMAKE_CXX_FLAGS=-fsanitize=address,undefined -fno-sanitize=vptr -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
  "--CDCMAKE_SHARED_LINKER_FLAGS=-fsanitize=address,undefined" >/tmp/torch-vbp-asan-build.log 2>&1 || {
  cat /tmp/torch-vbp-asan-build.log
  exit 1
}

suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(test/hardening.test.ts test/bad-input.test.ts test/fuzz.test.ts test/leaks.test.ts test/errors.test.ts)

export TORCH_VBP_ADDON="$PWD/build-asan/Release/torch_vbp.node"
export LD_PRELOAD="$libasan $libubsan"
# Node.js itself is not instrumented: only the addon's accesses are checked. Leaks are looked for in the
# child processes the suites start (each ends normally), with the suppressions above.
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:exitcode=86:detect_odr_violation=0:alloc_dealloc_mismatch=0:allocator_may_return_null=1"
export LSAN_OPTIONS="suppressions=$PWD/test/support/lsan.supp:print_suppressions=0:exitcode=87"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=88"
# The jest process itself loads the addon too; its own exit (with workers, V8 and LibTorch alive) is not a
# leak check, so jest runs without LeakSanitizer and the children it starts (child_process) run with it.
export VBP_SANITIZE=1
echo "sanitize: ${suites[*]}"
ASAN_OPTIONS="${ASAN_OPTIONS/detect_leaks=1/detect_leaks=0}" VBP_CHILD_ASAN_OPTIONS="$ASAN_OPTIONS" \
  npx --no-install jest --runInBand "${suites[@]}"
