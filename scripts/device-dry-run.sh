#!/usr/bin/env bash
# The GPU check's dry run (issue 23): scripts/device-cuda-check.sh as the device machine runs it, here, before
# any GPU sees it. What the device gets is staged in a fresh folder (the working tree's files that git tracks
# or does not ignore, plus the carry of scripts/prepare-device-carry.sh); the script then unpacks its own node,
# builds with plain CMake against the CUDA LibTorch of torch 2.14.1 (the local wheel mirror's, a venv made by
# scripts/compat-venv.sh, whose python is python3 as on the device) and nvcc 13 (CUDA_HOME), loads the addon
# without a GPU, and runs every section of the check on the CPU (--quick), its Python references on that
# torch 2.14.1. npm run test:device-dry; results in $OUT (default build-compat/device-dry/out).
# Without the wheel mirror it says so and stops without failing.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
say() { printf '[device-dry-run] %s\n' "$*"; }
if ! bash scripts/compat-venv.sh --check >/dev/null 2>&1; then
  say "SKIPPED: this machine has no local wheel mirror with torch 2.x (scripts/compat-venv.sh --check)"
  exit 0
fi
python=$(bash scripts/compat-venv.sh cuda2.14)
work="$repo/build-compat/device-dry"
stage="$work/tree"
out=${OUT:-$work/out}
# A fresh build, as on the device: the staged files keep their own times, which a kept build folder would
# compare against objects built later from older sources (stale objects, mixed layouts).
rm -rf "$stage" "$out" "$work/cmake" "$work/addon"
mkdir -p "$stage" "$out"

say "preparing the carry"
bash scripts/prepare-device-carry.sh >"$work/prepare.log" 2>&1 || { cat "$work/prepare.log"; exit 1; }
carry=$(sed -n 's/^carry: \[\(.*\)\]$/\1/p' "$work/prepare.log" | tr -d '",')
say "carry: $carry"
# What the device's copy holds: files git tracks or does not ignore, then the carried ignored paths.
# (node_modules only as the carry names it: a node_modules that is a link would otherwise come whole.)
git ls-files -co --exclude-standard -z -- . ':!node_modules' | tar --null -T - -cf - | tar -xf - -C "$stage"
for path in $carry; do
  mkdir -p "$stage/$(dirname "$path")"
  cp -rL "$path" "$stage/$(dirname "$path")/"
done
say "staged $(du -sh "$stage" | cut -f1) in $stage"

# The device's python3 is a CUDA torch 2.x: the venv's, first on PATH.
say "running scripts/device-cuda-check.sh (torch 2.14.1 CUDA wheel, no GPU: --device cpu --quick)"
start=$(date +%s)
status=0
(cd "$stage" && env PATH="$(dirname "$python"):$PATH" PYTHON=python3 CUDA_HOME="${CUDA_HOME:-/usr/local/cuda-13.0}" \
  OUT="$out" VBP_BUILD_DIR="$work/cmake" VBP_ADDON_DIR="$work/addon" CHECK_DEVICE=cpu CHECK_ARGS=--quick \
  bash scripts/device-cuda-check.sh >/dev/null) || status=$?
say "device-cuda-check.sh exit code $status after $(($(date +%s) - start)) s (log: $out/log.txt)"
if [ $status -ne 0 ]; then tail -40 "$out/log.txt"; exit $status; fi
grep -E "^(torch|node|CUDA_HOME|build took|addon:|torch-vbp: )" "$out/log.txt" | sed 's/^/[device-dry-run]   /'
node -e '
  const r = require(process.argv[1]);
  if (!r.passed) { console.error("[device-dry-run] FAIL:", JSON.stringify(r.failures)); process.exit(1); }
  console.log(`[device-dry-run] every section passed on torch ${r.environment.pytorch.torch}`);
' "$out/cuda-results.json"
