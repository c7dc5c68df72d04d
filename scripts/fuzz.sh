#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer, with AddressSanitizer and UndefinedBehaviorSanitizer) of the archive
# checks that run before LibTorch reads a model: native/core/zip_directory.cc and pickle_scan.cc.
#   scripts/fuzz.sh [SECONDS]      run each target for SECONDS (default 60) on the committed corpus;
#                                  a crash fails with the input saved under build-fuzz/crashes/
#   scripts/fuzz.sh --update [S]   also merge the new inputs that add coverage into native/fuzz/corpus/
# Needs clang-14 and libclang-rt-14-dev (Debian); CI installs them (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

update=0
if [ "${1:-}" = "--update" ]; then update=1; shift; fi
seconds="${1:-60}"
clang="$(command -v clang++-14 || command -v clang++ || true)"
if [ -z "$clang" ]; then
  echo "fuzz: clang++ not found (apt-get install clang-14 libclang-rt-14-dev)" >&2
  exit 2
fi

out=build-fuzz
mkdir -p "$out/crashes" "$out/new"
flags=(-std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Inative)
common=(native/fuzz/fuzz_targets.cc native/core/zip_directory.cc native/core/pickle_scan.cc)
status=0
for target in archive pickle; do
  "$clang" "${flags[@]}" "native/fuzz/${target}_fuzzer.cc" "${common[@]}" -o "$out/${target}_fuzzer"
  corpus="native/fuzz/corpus/$target"
  rm -rf "$out/new/$target" && mkdir -p "$out/new/$target"
  echo "fuzz: $target for ${seconds} s on $(ls "$corpus" | wc -l) seed inputs"
  if ! "$out/${target}_fuzzer" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
      -artifact_prefix="$out/crashes/${target}-" -print_final_stats=1 "$out/new/$target" "$corpus" >"$out/${target}.log" 2>&1; then
    tail -n 40 "$out/${target}.log" >&2
    echo "fuzz: $target found a failure; the input is in $out/crashes/" >&2
    status=1
    continue
  fi
  grep -E "^(stat::number_of_executed_units|stat::new_units_added|#[0-9]+ +DONE)" "$out/${target}.log" | tr '\n' ' ' && echo
  if [ "$update" = 1 ]; then
    "$out/${target}_fuzzer" -merge=1 "$corpus" "$out/new/$target" >/dev/null 2>&1
    echo "fuzz: $corpus now holds $(ls "$corpus" | wc -l) inputs"
  fi
done
exit "$status"
