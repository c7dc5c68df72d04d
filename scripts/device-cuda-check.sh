#!/usr/bin/env bash
# The GPU check (issue 10), on a machine with CUDA, CMake, ninja and a CUDA build of PyTorch 2.x but no
# Node.js and no network. Prepare on a machine with Node.js: `bash scripts/prepare-device-carry.sh`, then
# carry what it lists. This script unpacks node, builds the addon against the LibTorch inside that PyTorch
# by the README's own route (PYTHON=python3, torch.utils.cmake_prefix_path), and runs
# dist/scripts/cuda-check.js. Logs, the JSON report and its Markdown table go to $OUT.
# scripts/device-dry-run.sh runs it here first, against the CUDA wheel of the local mirror and without a GPU
# (CHECK_DEVICE=cpu CHECK_ARGS=--quick), with its build in VBP_BUILD_DIR and VBP_ADDON_DIR.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/vbp-cuda-check}
CHECK_TIMEOUT=${CHECK_TIMEOUT:-420}
CHECK_DEVICE=${CHECK_DEVICE:-cuda}
BUILD_DIR=${VBP_BUILD_DIR:-/tmp/vbp-build}
ADDON_DIR=${VBP_ADDON_DIR:-$PWD/build/Release}
# A CUDA LibTorch's CMake config needs the toolkit (README, "Building against your LibTorch").
if [ -z "${CUDA_HOME:-}" ] && [ -x /usr/local/cuda/bin/nvcc ]; then export CUDA_HOME=/usr/local/cuda; fi
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
step() { echo "== $(date +%T) $*"; }

step "unpacking node"
mkdir -p /tmp/vbp-node
xz -dc .device/node.xz > /tmp/vbp-node/node && chmod +x /tmp/vbp-node/node || { echo "no .device/node.xz: run scripts/prepare-device-carry.sh first"; exit 2; }
export PATH=/tmp/vbp-node:$PATH
export PYTHON=${PYTHON:-python3}
echo "node $(node --version)"
"$PYTHON" -c 'import torch, numpy; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(), "numpy", numpy.__version__)' || { echo "python3 lacks torch or numpy"; exit 2; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
[ -f test/fixtures/.stamp ] || { echo "test/fixtures was not carried"; exit 2; }

step "building the addon against the PyTorch wheel's LibTorch"
generator=$(command -v ninja >/dev/null && echo Ninja || echo "Unix Makefiles")
start=$(date +%s)
echo "CUDA_HOME=${CUDA_HOME:-(unset)}"
cmake -S . -B "$BUILD_DIR" -G "$generator" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_JS_INC="$PWD/node_modules/node-api-headers/include" \
  -DCMAKE_LIBRARY_OUTPUT_DIRECTORY="$ADDON_DIR" >"$OUT/cmake.log" 2>&1 || { echo "cmake configure failed"; tail -40 "$OUT/cmake.log"; exit 1; }
grep "torch-vbp: " "$OUT/cmake.log"
cmake --build "$BUILD_DIR" -j "$(nproc)" >>"$OUT/cmake.log" 2>&1 || { echo "build failed"; grep -m20 -B2 -A6 "error" "$OUT/cmake.log"; exit 1; }
export TORCH_VBP_ADDON=$ADDON_DIR/torch_vbp.node
echo "build took $(( $(date +%s) - start )) s, $(grep -c "warning:" "$OUT/cmake.log") compiler warning(s): $(ls -la "$TORCH_VBP_ADDON")"
ldd "$TORCH_VBP_ADDON" | grep -E "libtorch|libc10|libcud|libnvrtc" | tee "$OUT/ldd.txt"
node -e 'const v = require("./dist/lib").versionInfo(); console.log("addon:", JSON.stringify(v))' || { echo "the addon does not load"; exit 1; }

step "cuda-check"
VBP_PYTHON=$PYTHON timeout "$CHECK_TIMEOUT" node dist/scripts/cuda-check.js --fixtures test/fixtures --device "$CHECK_DEVICE" \
  --work /tmp/vbp-check --out "$OUT/cuda-results.json" ${CHECK_ARGS:-} >"$OUT/cuda-check.stdout"
status=$?
cat "$OUT/cuda-results.md" 2>/dev/null
step "cuda-check exit code $status"
exit $status
