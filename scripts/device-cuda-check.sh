#!/usr/bin/env bash
# Runs on a GPU machine that has CUDA, CMake, ninja and a CUDA build of PyTorch 2.x but no Node.js and no
# network: builds the addon against the LibTorch inside that PyTorch and runs scripts/cuda-check.js.
# Prepare on a machine with Node.js: `bash scripts/prepare-device-carry.sh` (writes .device/), then carry
# .device, dist, node_modules/node-addon-api, node_modules/node-api-headers and node_modules/node-gyp-build.
# Logs and the JSON report go to $OUT (default /tmp/vbp-cuda-check).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/vbp-cuda-check}
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1

mkdir -p /tmp/vbp-node
xz -dc .device/node.xz > /tmp/vbp-node/node && chmod +x /tmp/vbp-node/node
export PATH=/tmp/vbp-node:$PATH
echo "node $(node --version); $(python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.is_available())')"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true

python3 test/python/make_fixtures.py --out /tmp/vbp-fixtures >"$OUT/fixtures.log" 2>&1 || { echo "fixture generation failed"; tail -20 "$OUT/fixtures.log"; exit 1; }

prefix=$(python3 -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')
generator=$(command -v ninja >/dev/null && echo Ninja || echo "Unix Makefiles")
start=$(date +%s)
cmake -S . -B /tmp/vbp-build -G "$generator" -DCMAKE_BUILD_TYPE=Release \
  -DTorch_DIR="$prefix/Torch" \
  -DCMAKE_JS_INC="$PWD/node_modules/node-api-headers/include" \
  -DCMAKE_LIBRARY_OUTPUT_DIRECTORY="$PWD/build/Release" >"$OUT/cmake.log" 2>&1 || { echo "cmake configure failed"; tail -40 "$OUT/cmake.log"; exit 1; }
cmake --build /tmp/vbp-build -j "$(nproc)" >>"$OUT/cmake.log" 2>&1 || { echo "build failed"; grep -m20 -B2 -A6 "error" "$OUT/cmake.log"; exit 1; }
echo "build took $(( $(date +%s) - start )) s: $(ls -la build/Release/torch_vbp.node)"

node scripts/cuda-check.js /tmp/vbp-fixtures --out "$OUT/cuda-check.json"
status=$?
echo "cuda-check exit code $status"
exit $status
