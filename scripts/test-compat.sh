#!/usr/bin/env bash
# The builds against other LibTorch versions than Debian's (npm run test:compat; .ci/run runs it after the
# README's two commands). For each PyTorch of the local wheel mirror (scripts/compat-venv.sh, venvs cached
# between runs):
#   cpu2.13   torch 2.13.0+cpu, by the README's PYTHON= route;
#   cuda2.14  torch 2.14.1 with CUDA 13 and nvcc 13 (CUDA_HOME).
# Each is built, its libraries checked (only the wheel's LibTorch linked and found: NEEDED, RPATH, ldd without
# LD_LIBRARY_PATH), loaded (a CUDA build without a GPU says what was compiled and what is present), and runs
# the documented part of the suite (VBP_COMPAT_TESTS) on the CPU, with the fixtures Debian's torch made (files
# saved by 1.13 load in 2.x) and the references the tests compute as they run (torch.jit.load of what we save, the
# fine-tuning steps) made by that venv's own torch (VBP_PYTHON); cuda2.14 also runs timm's real models
# (test/compat/timm.test.ts), exported and checked by that venv's torch 2.14.1 and timm 1.0.29.
# Each build has its folder under build-compat/ (with its fixtures). `test-compat.sh cpu2.13` runs one.
# Where the machine has no wheel mirror (no torch 2.x to install), it says so and stops without failing:
# these builds are checked on the machines that have one.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
flavours=("$@")
[ ${#flavours[@]} -gt 0 ] || flavours=(cpu2.13 cuda2.14)
cuda_home=${CUDA_HOME:-/usr/local/cuda-13.0}
# The part of the suite that runs on every build: loading, the native runtime and its errors, the model,
# statistics and pruning paths, saved models as PyTorch sees them, fine-tuning step for step against that torch.
compat_tests=${VBP_COMPAT_TESTS:-test/native test/model test/pruning test/recovery test/errors.test.ts test/written-models.test.ts}
say() { printf '[test-compat] %s\n' "$*"; }
log() { say "$(date +%T) $*"; }

# The libraries a build links and finds: LibTorch's only from the requested torch, none of Debian's.
check_libraries() {
  local addon=$1 torch_lib=$2
  local needed rpath found
  needed=$(readelf -d "$addon" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
  rpath=$(readelf -d "$addon" | sed -n 's/.*R\(UN\)\{0,1\}PATH).*\[\(.*\)\]/\2/p')
  say "NEEDED: $needed"
  say "RPATH: $rpath"
  case ":$rpath:" in *:/usr/lib/x86_64-linux-gnu:* | *:/usr/lib:*)
    say "FAIL: the RPATH names a system folder"; return 1 ;;
  esac
  found=$(env -u LD_LIBRARY_PATH ldd "$addon")
  if grep -q "not found" <<<"$found"; then
    say "FAIL: a library is not found without LD_LIBRARY_PATH:"; grep "not found" <<<"$found"; return 1
  fi
  local wrong
  wrong=$(grep -E "lib(torch|c10)[^ ]*\.so" <<<"$found" | grep -v "=> $torch_lib/" || true)
  if [ -n "$wrong" ]; then say "FAIL: LibTorch libraries from elsewhere than $torch_lib:"; echo "$wrong"; return 1; fi
  say "every LibTorch library resolves to $torch_lib"
}

run_flavour() {
  local flavour=$1 python build torch_lib addon start
  log "== $flavour: venv"
  python=$(bash scripts/compat-venv.sh "$flavour")
  torch_lib=$("$python" -c 'import os, torch; print(os.path.realpath(os.path.join(os.path.dirname(torch.__file__), "lib")))')
  build="$repo/build-compat/$flavour"
  mkdir -p "$repo/build-compat"
  addon="$build/Release/torch_vbp.node"
  local build_env=(PYTHON="$python")
  if [ "$flavour" = cuda2.14 ]; then build_env+=(CUDA_HOME="$cuda_home"); fi
  log "== $flavour: building against $("$python" -c 'import torch; print("torch", torch.__version__)') (${build_env[*]})"
  start=$(date +%s)
  env "${build_env[@]}" npx cmake-js build --out "$build" >"$build.log" 2>&1 || {
    tail -40 "$build.log"; say "FAIL: $flavour build (log: $build.log)"; return 1
  }
  local warnings
  warnings=$(grep -c "warning:" "$build.log" || true)
  log "built in $(($(date +%s) - start)) s, $warnings compiler warning(s): $(grep -m1 'torch-vbp: C++' "$build.log" | sed 's/.*torch-vbp: //')"
  check_libraries "$addon" "$torch_lib"

  # References made while the tests run come from the same torch as the LibTorch under test.
  local test_env=(TORCH_VBP_ADDON="$addon" VBP_PYTHON="$python" VBP_FIXTURE_PYTHON=/usr/bin/python3)
  env "${test_env[@]}" node bin/vbp.js --version | sed 's/^/[test-compat]   /'
  if [ "$flavour" = cuda2.14 ]; then
    env "${test_env[@]}" node bin/vbp.js --version | grep -q "CUDA 13.*no GPU visible" || {
      say "FAIL: the CUDA build does not say it was compiled with CUDA 13 and sees no GPU"; return 1
    }
  fi
  log "== $flavour: $compat_tests"
  # shellcheck disable=SC2086 # a list of test paths
  env "${test_env[@]}" npx jest --ci $compat_tests
  if [ "$flavour" = cuda2.14 ]; then
    log "== $flavour: timm's DeiT-S, ViT-S and Swin-T"
    env "${test_env[@]}" VBP_TIMM_PYTHON="$python" npx jest --ci test/compat
  fi
}

if ! bash scripts/compat-venv.sh --check >/dev/null 2>&1; then
  say "SKIPPED: this machine has no local wheel mirror with torch 2.x (scripts/compat-venv.sh --check); the LibTorch 2.x builds were not tested here"
  exit 0
fi
for flavour in "${flavours[@]}"; do run_flavour "$flavour"; done
log "all compatibility builds passed: ${flavours[*]}"
