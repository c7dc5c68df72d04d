#!/usr/bin/env bash
# The sanitizer suite (npm run test:sanitize; .ci/run runs it after the README's two commands): the addon
# built with AddressSanitizer and UndefinedBehaviorSanitizer (build-asan/), loaded in place of the normal
# build (TORCH_VBP_ADDON) with the sanitizer runtime preloaded into Node.js, runs the suites that feed the
# native code damaged files, bad inputs and load/dispose cycles. Any report fails the run.
#
# LeakSanitizer runs at the exit of every process; scripts/sanitizer-report.js counts the leaks that are
# ours (allocated by the addon, or by LibTorch for it) less what test/support/lsan.supp keeps on purpose.
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
# Node.js itself is not instrumented: only the addon's accesses are checked. Every process (jest's and the
# children the suites start) writes its reports to a log of its own; LeakSanitizer's run at each exit, and
# scripts/sanitizer-report.js then fails on any error and on every leak of ours (see there).
logs=$(mktemp -d /tmp/torch-vbp-sanitize-XXXXXX)
export ASAN_OPTIONS="detect_leaks=1:quarantine_size_mb=32:halt_on_error=1:exitcode=86:detect_odr_violation=0:alloc_dealloc_mismatch=0:log_path=$logs/asan"
export LSAN_OPTIONS="exitcode=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=88:log_path=$logs/ubsan"
echo "sanitize: ${suites[*]} (logs in $logs)"
status=0
LD_PRELOAD="$libasan $libubsan" npx --no-install jest --runInBand "${suites[@]}" || status=$?
unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
node scripts/sanitizer-report.js "$logs" || status=1
exit "$status"
